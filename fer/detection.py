"""Face detection with MTCNN: facenet-pytorch's trained networks (inside its wheel), our cascade runner."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN

from fer.mtcnn import MtcnnCascade
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
        min_score: faces below this final O-Net confidence are dropped.
        max_aspect: a frame longer than this many times its width (or wider than tall), such as a
            scrolling screenshot of a call gallery, is detected in overlapping tiles of
            ``tile_aspect`` along its long side, each at ``detect_size``, instead of being shrunk
            whole until its faces are too small to find.
        tile_aspect: the long-to-short side ratio of each tile.

    The thresholds are lower than MTCNN's usual (0.6, 0.7, 0.7) / 0.9, chosen with ``python -m
    bench sweep`` (3,589 FER-2013 PrivateTest faces in 1280x720 gallery frames, 18 face-free
    photos, this class's other defaults): the usual values find 88.1% of the faces; (0.5, 0.3,
    0.5) / 0.5 finds 95.4% (tilted heads, hands on faces, dim faces) at the same detection time,
    with no false face on the photos and no stray box in the galleries. Most of the faces it
    still misses are rejected by R-Net; lowering that stage to 0.2 put a false face on a photo,
    and lowering P-Net's threshold costs 20-60% more time for under a point.
    """

    detect_size: int = 640
    min_face_size: int = 40
    thresholds: tuple[float, float, float] = (0.45, 0.3, 0.5)
    factor: float = 0.709
    min_score: float = 0.6
    max_aspect: float = 2.5
    tile_aspect: float = 1.5

    def __post_init__(self) -> None:
        if self.detect_size and self.detect_size < 64:
            raise ValueError(f"detect_size must be 0 or >= 64, got {self.detect_size}")
        if self.min_face_size < 12:
            raise ValueError(f"min_face_size must be >= 12 pixels, got {self.min_face_size}")
        if not 1.0 <= self.tile_aspect < self.max_aspect:
            raise ValueError(f"need 1 <= tile_aspect < max_aspect, got {self.tile_aspect} and {self.max_aspect}")


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
        # Only MTCNN's three trained networks are used, through our cascade runner.
        nets = MTCNN(keep_all=True, device=self.device)
        self._cascade = MtcnnCascade(nets.pnet, nets.rnet, nets.onet, self.device)

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
        long_side, short_side = max(height, width), min(height, width)
        if not settings.detect_size or short_side == 0 or long_side / short_side <= settings.max_aspect:
            return self._detect_whole(image, settings)
        # A very long frame: overlapping tiles along the long side, a quarter of a tile apart.
        tile = int(short_side * settings.tile_aspect)
        stride = max(1, int(tile * 0.75))
        starts = list(range(0, long_side - tile, stride)) + [long_side - tile]
        parts = []
        for start in starts:
            window = image[start : start + tile] if height > width else image[:, start : start + tile]
            found = self._detect_whole(np.ascontiguousarray(window), settings)
            # A face cut by an inner tile edge is whole in the neighbouring tile (they overlap by
            # a quarter tile, more than a face's side): drop the cut copy.
            axis = 1 if height > width else 0
            low, high = found.boxes[:, axis], found.boxes[:, axis + 2]
            cut = ((start > 0) & (low <= 2)) | ((start + tile < long_side) & (high >= tile - 2))
            found = found.select(~cut)
            offset = np.array([0, start] if height > width else [start, 0], np.float32)
            parts.append(Faces(found.boxes + np.tile(offset, 2), found.scores, found.landmarks + offset))
        boxes = np.concatenate([f.boxes for f in parts])
        scores = np.concatenate([f.scores for f in parts])
        landmarks = np.concatenate([f.landmarks for f in parts])
        keep = _suppress_duplicates(boxes, scores)
        order = keep[np.argsort(-((boxes[keep, 2] - boxes[keep, 0]) * (boxes[keep, 3] - boxes[keep, 1])))]
        return Faces(boxes[order], scores[order], landmarks[order]) if len(order) else Faces.empty()

    def _detect_whole(self, image: np.ndarray, settings: DetectorSettings) -> Faces:
        """Detect on the whole frame (downscaled to ``detect_size`` on its long side)."""
        height, width = image.shape[:2]
        scale = 1.0
        small = image
        if settings.detect_size and max(height, width) > settings.detect_size:
            scale = settings.detect_size / max(height, width)
            small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
        if min(small.shape[:2]) < 12:
            return Faces.empty()
        min_size = max(12.0, settings.min_face_size * scale)
        found = self._cascade(small, min_size, settings.thresholds, settings.factor)
        keep = found.scores >= settings.min_score
        boxes, scores, points = found.boxes[keep], found.scores[keep], found.landmarks[keep]
        if len(boxes) == 0:
            return Faces.empty()
        xyxy = boxes / scale
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, width)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, height)
        valid = (xyxy[:, 2] - xyxy[:, 0] >= 2) & (xyxy[:, 3] - xyxy[:, 1] >= 2)
        order = np.argsort(-((xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])))
        order = order[valid[order]]
        return Faces(xyxy[order], scores[order], points[order] / scale)


def _suppress_duplicates(boxes: np.ndarray, scores: np.ndarray, overlap: float = 0.5) -> np.ndarray:
    """Indices of the boxes to keep when tiles overlap: of two boxes where one covers at least
    ``overlap`` of the other's area (the same face seen by two tiles, maybe cut by a tile's edge),
    the higher-scoring one."""
    order = np.argsort(-scores)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept: list[int] = []
    for i in order:
        x1 = np.maximum(boxes[i, 0], boxes[kept, 0])
        y1 = np.maximum(boxes[i, 1], boxes[kept, 1])
        x2 = np.minimum(boxes[i, 2], boxes[kept, 2])
        y2 = np.minimum(boxes[i, 3], boxes[kept, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        if not len(kept) or (inter / np.maximum(np.minimum(area[i], area[kept]), 1e-9)).max() < overlap:
            kept.append(int(i))
    return np.asarray(kept, np.int64)
