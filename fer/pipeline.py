"""The per-frame path: detect -> align -> classify (-> track), with per-stage timings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from fer.alignment import AlignSettings, align_faces
from fer.classification import Classifier
from fer.detection import DetectorSettings, FaceDetector
from fer.tracking import FaceTracker
from fer.types import FrameResult

__all__ = ["PipelineSettings", "Pipeline"]


@dataclass(frozen=True)
class PipelineSettings:
    """Settings of the whole per-frame path.

    Attributes:
        detector: MTCNN settings (detection size, minimum face size, thresholds).
        align: crop margin and size.
        detect_every: in streams, run the detector on every k-th frame and reuse the tracked
            boxes in between (classification still runs every frame). 1 = detect every frame.
    """

    detector: DetectorSettings = field(default_factory=DetectorSettings)
    align: AlignSettings = field(default_factory=AlignSettings)
    detect_every: int = 1


class Pipeline:
    """Detector + classifier, shared (read-only) by every user; per-user state lives in trackers.

    Example:
        >>> pipeline = Pipeline(FaceDetector(), load_classifier("fer/weights/fer_deit_tiny"))  # doctest: +SKIP
        >>> pipeline.analyze(skimage.data.astronaut()).faces.top(pipeline.label_names)  # doctest: +SKIP
        (['Happy'], array([0.93], dtype=float32))
    """

    def __init__(self, detector: FaceDetector, classifier: Classifier, settings: PipelineSettings | None = None) -> None:
        self.detector = detector
        self.classifier = classifier
        self.settings = settings or PipelineSettings()

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.classifier.label_names

    def analyze(self, image: np.ndarray, tracker: FaceTracker | None = None, timestamp: float = 0.0, frame_index: int = 0) -> FrameResult:
        """Find, classify and (with a tracker) track every face in one RGB frame.

        Args:
            image: ``(H, W, 3)`` RGB uint8.
            tracker: the session's tracker, for streams and videos; ``None`` for single photos.
            timestamp: seconds since the session started.
            frame_index: position in the stream, used by ``detect_every``.

        Returns:
            The frame's faces with probabilities (smoothed and with ids when tracked), and timings.
            Untracked (photo) faces come in reading order: rows top to bottom, each left to right.
        """
        began = time.perf_counter()
        skip_detection = tracker is not None and self.settings.detect_every > 1 and frame_index % self.settings.detect_every != 0
        if skip_detection:
            faces = tracker.predict(timestamp, len(self.label_names))
        else:
            faces = self.detector.detect(image, self.settings.detector)
        detected = time.perf_counter()
        if tracker is None:  # a photo: faces numbered in reading order, as the table lists them
            faces = faces.select(faces.reading_order())
        crops = align_faces(image, faces, self.settings.align)
        faces = faces.with_probabilities(self.classifier.predict(crops))
        classified = time.perf_counter()
        if tracker is not None:
            faces = tracker.update(faces, timestamp)
        done = time.perf_counter()
        timings = {"detect": (detected - began) * 1000, "classify": (classified - detected) * 1000,
                   "track": (done - classified) * 1000, "total": (done - began) * 1000}
        return FrameResult(faces, self.label_names, image.shape[1], image.shape[0], timestamp, timings,
                           self.classifier.calibration.uncertain_below)
