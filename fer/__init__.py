"""fer: find every face in a frame, read its expression, track it, and log the class over a session.

The stages, one module each: :mod:`fer.detection` (MTCNN), :mod:`fer.alignment`,
:mod:`fer.classification` (timm checkpoint or transformers model), :mod:`fer.tracking`,
:mod:`fer.session`, :mod:`fer.annotate`, wired by :mod:`fer.pipeline`; :mod:`fer.calibration`
turns logits into calibrated probabilities, :mod:`fer.stream` holds one session's moving parts,
:mod:`fer.policy` decides what a result may show (class-only). Nothing heavy happens at import:
models load when you call :func:`load_classifier` / :class:`FaceDetector`.

Example:
    >>> from fer import FaceDetector, Pipeline, load_classifier, default_checkpoint
    >>> pipeline = Pipeline(FaceDetector(), load_classifier(default_checkpoint()))  # doctest: +SKIP
"""

from pathlib import Path

from fer.alignment import AlignSettings, align_faces
from fer.annotate import EXPRESSION_COLORS, annotate
from fer.checkpoint import ModelConfig, build_model, load_checkpoint, save_checkpoint
from fer.classification import ExpressionClassifier, TransformersClassifier, load_classifier
from fer.detection import DetectorSettings, FaceDetector
from fer.images import InputError, as_rgb, load_image, load_image_with_notes
from fer.labels import FER2013_CLASSES, canonical_label
from fer.pipeline import Pipeline, PipelineSettings
from fer.policy import OutputPolicy
from fer.preprocess import PreprocessConfig, faces_to_tensor
from fer.session import SessionLog
from fer.stream import ClassStream
from fer.tracking import FaceTracker, TrackerSettings
from fer.types import Faces, FrameResult
from fer.video import analyze_video, analyze_video_steps, probe_video

__all__ = [
    "AlignSettings", "ClassStream", "DetectorSettings", "EXPRESSION_COLORS", "ExpressionClassifier", "FER2013_CLASSES", "FaceDetector",
    "FaceTracker", "Faces", "FrameResult", "InputError", "ModelConfig", "OutputPolicy", "Pipeline", "PipelineSettings", "PreprocessConfig",
    "SessionLog", "TrackerSettings", "TransformersClassifier", "align_faces", "analyze_video", "annotate", "as_rgb",
    "build_model", "canonical_label", "default_checkpoint", "faces_to_tensor", "load_checkpoint", "load_classifier",
    "load_image", "load_image_with_notes", "analyze_video_steps", "probe_video", "save_checkpoint",
]


def default_checkpoint() -> Path:
    """The checkpoint folder shipped in this repository (trained by ``training/``, see MODEL_CARD.md)."""
    return Path(__file__).resolve().parent / "weights" / "fer_deit_tiny"
