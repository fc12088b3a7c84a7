"""An optional ONNX Runtime backend for the expression classifier, with static int8 quantization.

``python -m fer export-onnx FOLDER [--int8 --calibration-data fer2013.npz]`` writes ``model.onnx``
(and ``model.int8.onnx``) next to a checkpoint's ``config.json``; :func:`fer.load_classifier` with
``backend="onnx"`` or ``"onnx-int8"`` then runs that file with the same preprocessing
(:func:`faces_to_tensor`), the same labels and the same calibration, read from the same config.
Needs the ``onnx`` and ``onnxruntime`` packages.

Why static and not dynamic int8: dynamic quantization takes each activation's range from the whole
batch at run time, so a face's probabilities changed with the other faces in its batch (4% of
labels flipped between one batch and one-by-one on 198 real faces). A student's label must not
change because someone else joined the call. Static quantization fixes every range once, from
training faces, so a face gets the same answer alone or among 64 (tests/test_onnx_backend.py), for
about 10% more time than dynamic int8 at 32 faces (``python -m bench classifier``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch

from fer.checkpoint import CONFIG_NAME, WEIGHTS_NAME, ModelConfig, load_checkpoint
from fer.preprocess import faces_to_tensor

__all__ = ["ONNX_INT8_NAME", "ONNX_NAME", "OnnxClassifier", "StaleExportError", "export_onnx", "weights_digest"]

logger = logging.getLogger(__name__)

ONNX_NAME = "model.onnx"
ONNX_INT8_NAME = "model.int8.onnx"
_DIGEST_KEY = "fer.weights_sha256"


class StaleExportError(RuntimeError):
    """The ONNX file was exported from other weights than the folder's ``model.safetensors``."""


def weights_digest(folder: str | Path) -> str:
    """SHA-256 of a checkpoint folder's ``model.safetensors``: stamped into its ONNX exports."""
    return hashlib.sha256((Path(folder) / WEIGHTS_NAME).read_bytes()).hexdigest()


class _FaceBatches:
    """ONNX Runtime's calibration reader over ``(N, 48, 48)`` faces, 32 at a time."""

    def __init__(self, faces: np.ndarray, config: ModelConfig) -> None:
        self._batches = iter([{"pixels": faces_to_tensor(list(faces[i : i + 32]), config.preprocess).numpy()}
                              for i in range(0, len(faces), 32)])

    def get_next(self) -> dict | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # ORT calls it between calibration passes on some versions
        pass


def export_onnx(folder: str | Path, int8: bool = True, calibration_faces: np.ndarray | None = None, opset: int = 17) -> list[Path]:
    """Export a timm checkpoint folder's model to ONNX (dynamic batch), and an int8 copy.

    The int8 copy uses ONNX Runtime's static QDQ quantization: weights per channel, and every
    activation range fixed from ``calibration_faces`` (min / max), so a face's output never depends
    on the other faces in its batch. Each file is stamped with the SHA-256 of the weights it came
    from, so a retrained checkpoint is never served through an old export.

    Args:
        folder: the checkpoint folder; the files are written into it.
        int8: also write ``model.int8.onnx``.
        calibration_faces: ``(N, H, W)`` or ``(N, H, W, 3)`` uint8 real faces (a few hundred
            training faces), needed for ``int8``.

    Returns:
        The files written.
    """
    import tempfile
    import warnings

    if int8 and (calibration_faces is None or len(calibration_faces) == 0):
        raise ValueError("an int8 export needs calibration faces (e.g. 512 FER-2013 training faces): "
                         "pass --calibration-data fer2013.npz")

    folder = Path(folder)
    model, config = load_checkpoint(folder)
    size = config.preprocess.input_size
    example = torch.zeros(2, 3, size, size)
    target = folder / ONNX_NAME
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo, which needs onnxscript and
        # takes ~10x longer for the same graph; both give the same model for a plain ViT.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(target), input_names=["pixels"], output_names=["logits"],
                          dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset, dynamo=False)
    written = [target]
    if int8:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quantized = folder / ONNX_INT8_NAME
        with tempfile.TemporaryDirectory() as scratch:
            prepared = Path(scratch) / "prepared.onnx"
            quant_pre_process(str(target), str(prepared))
            quantize_static(str(prepared), str(quantized), _FaceBatches(np.asarray(calibration_faces), config),
                            quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
        written.append(quantized)
    import onnx

    digest = weights_digest(folder)
    for path in written:
        graph = onnx.load(str(path))
        onnx.helper.set_model_props(graph, {_DIGEST_KEY: digest})
        onnx.save(graph, str(path))
    logger.info("exported %s", ", ".join(str(p) for p in written))
    return written


class OnnxClassifier:
    """Runs an exported classifier with ONNX Runtime on the CPU.

    Example:
        >>> classifier = OnnxClassifier.from_pretrained("fer/weights/fer_deit_tiny", int8=True)  # doctest: +SKIP
        >>> classifier.predict([face_crop]).shape  # doctest: +SKIP
        (1, 7)
    """

    def __init__(self, model_path: str | Path, config: ModelConfig, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One pool the size of torch's, so the detector (torch) and the classifier share the cores.
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # No busy-waiting after a run: spinning workers would steal the cores from the detector
        # (torch) that runs next; on 2 cores it cost the detector ~50% (27 -> 41 ms per frame).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.config = config
        self.label_names: tuple[str, ...] = config.label_names
        self.calibration = config.calibration
        self.model_path = Path(model_path)

    @classmethod
    def from_pretrained(cls, folder: str | Path, int8: bool = True, threads: int | None = None) -> OnnxClassifier:
        """Load ``model.int8.onnx`` (or ``model.onnx``) and ``config.json`` from a checkpoint folder."""
        folder = Path(folder)
        path = folder / (ONNX_INT8_NAME if int8 else ONNX_NAME)
        if not path.is_file():
            flag = " --int8" if int8 else ""
            raise FileNotFoundError(f"{path} does not exist: run `python -m fer export-onnx {folder}{flag}` first")
        config = ModelConfig.from_json(json.loads((folder / CONFIG_NAME).read_text()))
        classifier = cls(path, config, threads)
        stamped = classifier.session.get_modelmeta().custom_metadata_map.get(_DIGEST_KEY)
        if (folder / WEIGHTS_NAME).is_file() and stamped != weights_digest(folder):
            raise StaleExportError(f"{path} was not exported from {folder / WEIGHTS_NAME}: "
                                   f"run `python -m fer export-onnx {folder}{' --int8' if int8 else ''}` again")
        return classifier

    def logits(self, crops: list[np.ndarray]) -> np.ndarray:
        """Raw logits ``(N, C)`` for ``N`` face crops (any size, RGB or gray), one batch."""
        if len(crops) == 0:
            return np.zeros((0, len(self.label_names)), np.float32)
        batch = faces_to_tensor(crops, self.config.preprocess).numpy()
        return self.session.run(None, {"pixels": batch})[0]

    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        """Calibrated probabilities ``(N, C)`` for ``N`` face crops (see :mod:`fer.calibration`)."""
        return self.calibration.probabilities(self.logits(crops))
