"""The checkpoint folder: timm's hub layout (``config.json`` + ``model.safetensors``).

The config carries everything needed to rebuild the model and its preprocessing, so nothing is
guessed from file names or constants::

    {
      "architecture": "deit_tiny_patch16_224",
      "num_classes": 7,
      "label_names": ["Angry", ...],
      "model_args": {"img_size": 112},
      "pretrained_cfg": {"input_size": [3, 112, 112], "mean": [...], "std": [...], ...},
      "fer": {"grayscale": true, "face_size": 48}
    }

``timm.create_model("local-dir:FOLDER")`` and ``transformers.pipeline("image-classification",
model=FOLDER)`` read the same folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
from safetensors.torch import load_file, save_file

from fer.calibration import Calibration
from fer.labels import FER2013_CLASSES
from fer.preprocess import PreprocessConfig

__all__ = ["ModelConfig", "build_model", "save_checkpoint", "load_checkpoint", "CONFIG_NAME", "WEIGHTS_NAME"]

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass(frozen=True)
class ModelConfig:
    """What a checkpoint folder says about its model.

    Attributes:
        architecture: timm model name, e.g. ``"deit_tiny_patch16_224"``.
        label_names: class names in output order.
        preprocess: input size, mean / std, grayscale flag, face size.
        model_args: extra ``timm.create_model`` keyword arguments (``img_size`` for a ViT).
        extra: other keys kept verbatim (e.g. training metrics).
    """

    architecture: str
    label_names: tuple[str, ...] = FER2013_CLASSES
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model_args: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def calibration(self) -> Calibration:
        """The logit bias, temperature and uncertainty threshold fitted for these weights (``fer.calibration``)."""
        return Calibration.from_json(self.extra.get("calibration"))

    def to_json(self) -> dict[str, Any]:
        """The ``config.json`` content, in timm's hub format plus our ``fer`` section."""
        p = self.preprocess
        pretrained_cfg = {
            "architecture": self.architecture,
            "num_classes": self.num_classes,
            "input_size": [3, p.input_size, p.input_size],
            "fixed_input_size": True,
            "interpolation": "bilinear",
            "crop_pct": 1.0,
            "crop_mode": "center",
            "mean": list(p.mean),
            "std": list(p.std),
            "label_names": list(self.label_names),
        }
        return {
            "architecture": self.architecture,
            "num_classes": self.num_classes,
            "label_names": list(self.label_names),
            "model_args": dict(self.model_args),
            "pretrained_cfg": pretrained_cfg,
            "fer": {"grayscale": p.grayscale, "face_size": p.face_size, **self.extra},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelConfig:
        """Read a ``config.json`` written by :meth:`to_json` (or a plain timm hub config)."""
        if "architecture" not in data:
            raise ValueError(f"config has no 'architecture' key (keys: {sorted(data)})")
        cfg = data.get("pretrained_cfg", {})
        fer = dict(data.get("fer", {}))
        input_size = cfg.get("input_size", [3, 224, 224])
        preprocess = PreprocessConfig(
            input_size=int(input_size[-1]),
            mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
            std=tuple(cfg.get("std", (0.229, 0.224, 0.225))),
            face_size=int(fer.pop("face_size", 48)),
            grayscale=bool(fer.pop("grayscale", True)),
        )
        labels = data.get("label_names") or cfg.get("label_names")
        if labels is None:
            labels = [f"class_{i}" for i in range(int(data.get("num_classes", 7)))]
        return cls(
            architecture=data["architecture"],
            label_names=tuple(labels),
            preprocess=preprocess,
            model_args=dict(data.get("model_args", {})),
            extra=fer,
        )


def build_model(config: ModelConfig, pretrained_file: str | Path | None = None, pretrained: bool = False) -> torch.nn.Module:
    """Create the timm model a config describes.

    Args:
        config: architecture, classes and ``model_args``.
        pretrained_file: local ImageNet weights (safetensors) to start from; the head is replaced
            and a ViT's position embedding resampled to ``img_size`` by timm's own loader.
        pretrained: with no file, fetch timm's Hub weights for ``architecture`` (needs internet).
    """
    kwargs: dict[str, Any] = dict(config.model_args)
    if pretrained_file is not None:
        kwargs["pretrained_cfg_overlay"] = {"file": str(pretrained_file)}
        pretrained = True
    return timm.create_model(config.architecture, pretrained=pretrained, num_classes=config.num_classes, **kwargs)


def save_checkpoint(model: torch.nn.Module, config: ModelConfig, folder: str | Path, half: bool = False) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (fp16 when ``half``) to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
    (folder / CONFIG_NAME).write_text(json.dumps(config.to_json(), indent=2) + "\n")
    return folder


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, ModelConfig]:
    """Rebuild the model of a checkpoint folder, in eval mode, as float32 on ``device``."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not config_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(f"{folder} is not a checkpoint folder: expected {CONFIG_NAME} and {WEIGHTS_NAME}")
    config = ModelConfig.from_json(json.loads(config_path.read_text()))
    model = build_model(config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(weights_path)).items()}
    model.load_state_dict(state, strict=True)
    logger.info("loaded %s (%d classes, %d px) from %s", config.architecture, config.num_classes, config.preprocess.input_size, folder)
    return model.to(device).eval(), config
