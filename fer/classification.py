"""Expression classification: a timm checkpoint folder, or a transformers image-classification model."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from fer.calibration import Calibration
from fer.checkpoint import CONFIG_NAME, ModelConfig, load_checkpoint
from fer.labels import FER2013_CLASSES, canonical_label
from fer.onnx_backend import ONNX_INT8_NAME
from fer.preprocess import PreprocessConfig, faces_to_tensor, resize_gray, to_gray

__all__ = ["BACKENDS", "Classifier", "ExpressionClassifier", "TransformersClassifier", "load_classifier"]

logger = logging.getLogger(__name__)


class Classifier(Protocol):
    """What the pipeline needs from a classifier: calibrated probabilities in label order."""

    label_names: tuple[str, ...]
    calibration: Calibration

    def predict(self, crops: list[np.ndarray]) -> np.ndarray: ...


class ExpressionClassifier:
    """A timm model rebuilt from a checkpoint folder that carries its own config.

    Example:
        >>> classifier = ExpressionClassifier.from_pretrained("fer/weights/fer_deit_tiny")  # doctest: +SKIP
        >>> classifier.predict([face_crop]).sum(1)  # doctest: +SKIP
        array([1.], dtype=float32)
    """

    def __init__(self, model: torch.nn.Module, config: ModelConfig, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config = config
        self.label_names: tuple[str, ...] = config.label_names
        self.calibration: Calibration = config.calibration

    @classmethod
    def from_pretrained(cls, path_or_id: str | Path, device: str | torch.device = "cpu") -> ExpressionClassifier:
        """Load a local checkpoint folder, or ``hf-hub:<id>`` for a timm model on the Hugging Face Hub."""
        text = str(path_or_id)
        if Path(text).is_dir():
            model, config = load_checkpoint(text, device=device)
            return cls(model, config, device)
        if text.startswith("hf-hub:"):
            # The real Hub path (needs internet): timm reads the same config.json layout remotely.
            import timm

            model = timm.create_model(text, pretrained=True)
            cfg = model.pretrained_cfg
            config = ModelConfig(
                architecture=cfg.get("architecture", text),
                label_names=tuple(cfg.get("label_names") or FER2013_CLASSES),
                preprocess=PreprocessConfig(input_size=int(cfg["input_size"][-1]), mean=tuple(cfg["mean"]), std=tuple(cfg["std"])),
            )
            return cls(model, config, device)
        raise FileNotFoundError(f"{text} is neither a checkpoint folder nor an 'hf-hub:' model id")

    @torch.inference_mode()
    def logits(self, crops: list[np.ndarray]) -> np.ndarray:
        """Raw logits ``(N, C)`` for ``N`` face crops (any size, RGB or gray), one batch."""
        if len(crops) == 0:
            return np.zeros((0, len(self.label_names)), np.float32)
        batch = faces_to_tensor(crops, self.config.preprocess).to(self.device)
        return self.model(batch).float().cpu().numpy()

    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        """Calibrated probabilities ``(N, C)`` for ``N`` face crops (see :mod:`fer.calibration`)."""
        return self.calibration.probabilities(self.logits(crops))


class TransformersClassifier:
    """A Hugging Face ``transformers`` image-classification model, mapped onto the 7 FER classes.

    The model's label names (``id2label``) are matched to FER-2013 classes by name
    (``happiness`` -> ``Happy``...); labels with no counterpart are dropped and the rest
    renormalised. Faces are fed as FER-2013 looks: grayscale, reduced to 48 px.
    """

    def __init__(self, model, processor, device: str | torch.device = "cpu", face_size: int = 48) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.face_size = face_size
        self.calibration = Calibration()  # a foreign model carries no calibration of ours
        id2label = {int(k): v for k, v in model.config.id2label.items()}
        self.label_names: tuple[str, ...] = FER2013_CLASSES
        self._columns = []  # (model column, FER column)
        for column in range(model.config.num_labels):
            name = canonical_label(id2label.get(column, ""))
            if name is not None:
                self._columns.append((column, FER2013_CLASSES.index(name)))
        if not self._columns:
            raise ValueError(f"none of the model's labels {sorted(id2label.values())} match {FER2013_CLASSES}")

    @classmethod
    def from_pretrained(cls, path_or_id: str | Path, device: str | torch.device = "cpu") -> TransformersClassifier:
        """Load a local folder or a Hub id (e.g. a ViT fine-tuned on FER-2013)."""
        from transformers import AutoImageProcessor, AutoModelForImageClassification, ViTImageProcessor

        model = AutoModelForImageClassification.from_pretrained(str(path_or_id))
        try:
            processor = AutoImageProcessor.from_pretrained(str(path_or_id))
        except (OSError, ValueError):
            size = getattr(model.config, "image_size", 224)
            logger.info("no image processor saved with %s: using ViT defaults at %d px", path_or_id, size)
            processor = ViTImageProcessor(size={"height": size, "width": size})
        return cls(model, processor, device)

    @torch.inference_mode()
    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        """Probabilities ``(N, 7)`` in FER-2013 order for ``N`` face crops."""
        if len(crops) == 0:
            return np.zeros((0, len(FER2013_CLASSES)), np.float32)
        gray = [resize_gray(to_gray(np.asarray(c)), self.face_size) for c in crops]
        inputs = self.processor(images=[np.repeat(g[..., None], 3, axis=2) for g in gray], return_tensors="pt")
        logits = self.model(pixel_values=inputs["pixel_values"].to(self.device)).logits.float()
        probs = logits.softmax(-1).cpu().numpy()
        out = np.zeros((len(crops), len(FER2013_CLASSES)), np.float32)
        for column, fer_column in self._columns:
            out[:, fer_column] += probs[:, column]
        total = out.sum(1, keepdims=True)
        return np.divide(out, total, out=np.full_like(out, 1 / len(FER2013_CLASSES)), where=total > 0)


def _load_auto(text: str, device: str | torch.device) -> Classifier:
    if torch.device(device).type == "cpu" and (Path(text) / ONNX_INT8_NAME).is_file():
        try:
            from fer.onnx_backend import OnnxClassifier, StaleExportError

            return OnnxClassifier.from_pretrained(text, int8=True)
        except (ImportError, StaleExportError) as error:
            logger.warning("using the torch classifier: %s", error)
    return load_classifier(text, device, "torch")


#: Accepted ``backend`` values of :func:`load_classifier`.
BACKENDS = ("auto", "torch", "onnx", "onnx-int8")


def load_classifier(path_or_id: str | Path, device: str | torch.device = "cpu", backend: str = "torch") -> Classifier:
    """Pick the classifier from what ``path_or_id`` holds.

    A folder whose ``config.json`` has ``architecture`` is a timm checkpoint; one with
    ``model_type`` is a transformers model; ``hf-hub:<id>`` is a timm Hub model; any other
    string is tried as a transformers Hub id.

    Args:
        backend: ``"torch"``; or ``"onnx"`` / ``"onnx-int8"`` to run a timm checkpoint folder's
            exported ``model.onnx`` / ``model.int8.onnx`` with ONNX Runtime on the CPU
            (see :mod:`fer.onnx_backend`); ``"auto"``: ``onnx-int8`` on the CPU when the folder
            has an up-to-date export and onnxruntime is installed (2.5x faster for one face,
            -0.09 points on PrivateTest for the shipped model), else ``torch``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    text = str(path_or_id)
    if backend == "auto":
        return _load_auto(text, device)
    if backend != "torch":
        if torch.device(device).type != "cpu":
            raise ValueError(f"the {backend} backend runs on the CPU only, got device {device}")
        from fer.onnx_backend import OnnxClassifier

        return OnnxClassifier.from_pretrained(text, int8=backend == "onnx-int8")
    folder = Path(text)
    if folder.is_dir():
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}")
        config = json.loads(config_path.read_text())
        if "model_type" in config:
            return TransformersClassifier.from_pretrained(folder, device)
        return ExpressionClassifier.from_pretrained(folder, device)
    if text.startswith("hf-hub:"):
        return ExpressionClassifier.from_pretrained(text, device)
    return TransformersClassifier.from_pretrained(text, device)
