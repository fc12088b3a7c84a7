"""Face detection with facenet-pytorch's MTCNN (weights ship inside its wheel)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import detect_face

from fer.types import Faces

__all__ = ["DetectorSettings", "FaceDetector"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorSettings:
    """MTCNN settings.

    Attributes:
        detect_size: frames whose longer side exceeds this are detected on a downscaled copy of
            that size and the boxes mapped back (full-size MTCNN on 640x480 costs ~60 ms here,
            ~25 ms at 320). ``0`` detects at full size.
        min_face_size: the smallest face to find, in pixels of the original frame.
        thresholds: MTCNN's three stage thresholds (P-Net, R-Net, O-Net).
        factor: the image-pyramid scale step.
        min_score: faces below this final confidence are dropped (0.9: at 0.7, JPEG artefacts on a
            spacesuit gave a 0.88 false face; FER-gallery recall gains only 2 points).
    """

    detect_size: int = 640
    min_face_size: int = 40
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709
    min_score: float = 0.9

    def __post_init__(self) -> None:
        if self.detect_size and self.detect_size < 64:
            raise ValueError(f"detect_size must be 0 or >= 64, got {self.detect_size}")
        if self.min_face_size < 12:
            raise ValueError(f"min_face_size must be >= 12 pixels, got {self.min_face_size}")


class FaceDetector:
    """Finds every face in an RGB frame.

    Example:
        >>> detector = FaceDetector()  # doctest: +SKIP
        >>> faces = detector.detect(skimage.data.astronaut())  # doctest: +SKIP
        >>> len(faces)  # doctest: +SKIP
        1
    """

    def __init__(self, settings: DetectorSettings | None = None, device: str | torch.device = "cpu") -> None:
        self.settings = settings or DetectorSettings()
        self.device = torch.device(device)
        # keep_all, no post-processing: we only use MTCNN's three networks through detect_face.
        self._mtcnn = MTCNN(keep_all=True, device=self.device).eval()

    def detect(self, image: np.ndarray, settings: DetectorSettings | None = None) -> Faces:
        """Detect faces.

        Args:
            image: ``(H, W, 3)`` RGB uint8.
            settings: overrides this detector's settings for one call (safe across users: the
                shared networks are never mutated).

        Returns:
            Faces with boxes (clipped to the frame), scores and landmarks in frame pixels,
            largest first; :meth:`Faces.empty` when there is none.
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        settings = settings or self.settings
        height, width = image.shape[:2]
        scale = 1.0
        small = image
        if settings.detect_size and max(height, width) > settings.detect_size:
            scale = settings.detect_size / max(height, width)
            small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
        if min(small.shape[:2]) < 12:
            return Faces.empty()
        min_size = max(12.0, settings.min_face_size * scale)
        with torch.inference_mode():
            boxes, points = detect_face(
                np.ascontiguousarray(small), min_size, self._mtcnn.pnet, self._mtcnn.rnet, self._mtcnn.onet,
                list(settings.thresholds), settings.factor, self.device,
            )
        # detect_face returns object arrays per image; unwrap the single image explicitly.
        boxes = np.asarray(boxes[0], dtype=np.float32).reshape(-1, 5)
        points = np.asarray(points[0], dtype=np.float32).reshape(-1, 5, 2)
        keep = boxes[:, 4] >= settings.min_score
        boxes, points = boxes[keep], points[keep]
        if len(boxes) == 0:
            return Faces.empty()
        xyxy = boxes[:, :4] / scale
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, width)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, height)
        valid = (xyxy[:, 2] - xyxy[:, 0] >= 2) & (xyxy[:, 3] - xyxy[:, 1] >= 2)
        order = np.argsort(-((xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])))
        order = order[valid[order]]
        return Faces(xyxy[order], boxes[order, 4], points[order] / scale)
