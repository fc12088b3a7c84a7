"""Keep a stable id per face across frames and smooth its probabilities so labels do not flicker."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from fer.types import Faces

__all__ = ["TrackerSettings", "FaceTracker", "box_iou"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``(len(a), len(b))`` of ``x1, y1, x2, y2`` boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def _center_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise centre distance ``(len(a), len(b))`` in units of the larger box side of the pair."""
    if len(a) == 0 or len(b) == 0:
        return np.full((len(a), len(b)), np.inf, np.float32)
    center_a = (a[:, :2] + a[:, 2:]) / 2
    center_b = (b[:, :2] + b[:, 2:]) / 2
    side_a = np.maximum(a[:, 2] - a[:, 0], a[:, 3] - a[:, 1])
    side_b = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    distance = np.linalg.norm(center_a[:, None] - center_b[None], axis=-1)
    return distance / np.maximum(np.maximum(side_a[:, None], side_b[None]), 1e-9)


@dataclass(frozen=True)
class TrackerSettings:
    """Tracking settings.

    Attributes:
        iou_threshold: the least IoU for a detection to continue a track.
        max_center_shift: a detection whose IoU is too low still continues a track when its centre
            moved less than this many box sides (small faces that move fast overlap little).
        max_missed_seconds: a track not seen for longer than this expires.
        half_life_seconds: the exponential moving average halves an old reading's weight in
            this long (time-based, so smoothing does not depend on the frame rate).
        confirm_score: a detection scoring below this starts a *tentative* track, shown and logged
            only once a second detection continues it. The detector keeps faces down to 0.6 to
            find hard faces in galleries (``python -m bench sweep``); in a stream this keeps a
            one-frame box on a poster or a hand out of the chart, at the price of showing a
            low-scored real face one frame later.
    """

    iou_threshold: float = 0.3
    max_center_shift: float = 0.6
    max_missed_seconds: float = 2.0
    half_life_seconds: float = 1.0
    confirm_score: float = 0.9


@dataclass
class _Track:
    track_id: int
    box: np.ndarray
    smoothed: np.ndarray
    last_seen: float
    landmarks: np.ndarray
    score: float
    confirmed: bool = True


@dataclass
class FaceTracker:
    """IoU tracker with time-based exponential smoothing; one per session (not thread-shared).

    Example:
        >>> tracker = FaceTracker()
        >>> tracked = tracker.update(faces, timestamp=0.0)  # doctest: +SKIP
    """

    settings: TrackerSettings = field(default_factory=TrackerSettings)
    _tracks: dict[int, _Track] = field(default_factory=dict)
    _next_id: int = 1

    @property
    def active_ids(self) -> list[int]:
        """Ids of the confirmed tracks that have not expired."""
        return sorted(tid for tid, track in self._tracks.items() if track.confirmed)

    def reset(self) -> None:
        self._tracks.clear()
        self._next_id = 1

    def update(self, faces: Faces, timestamp: float) -> Faces:
        """Match ``faces`` to tracks, smooth their probabilities, expire stale tracks.

        Args:
            faces: classified detections of the current frame.
            timestamp: seconds (monotonic within the session).

        Returns:
            ``faces`` with ``track_ids`` and ``smoothed`` filled in, without the detections that
            only started a tentative track (see :attr:`TrackerSettings.confirm_score`).
        """
        ids = np.full(len(faces), -1, np.int64)
        smoothed = faces.probabilities.copy()
        track_list = list(self._tracks.values())
        track_boxes = np.array([t.box for t in track_list], np.float32).reshape(-1, 4)
        iou = box_iou(faces.boxes, track_boxes)
        shift = _center_shift(faces.boxes, track_boxes)
        # Greedy matching on one score (IoU, or a little below any IoU match for a near centre),
        # best first: enough for faces, which rarely cross each other.
        score = np.where(iou >= self.settings.iou_threshold, 1 + iou,
                         np.where(shift <= self.settings.max_center_shift, 1 - shift / max(self.settings.max_center_shift, 1e-9), 0))
        pairs = np.argwhere(score > 0)
        pairs = pairs[np.argsort(-score[pairs[:, 0], pairs[:, 1]], kind="stable")] if len(pairs) else pairs
        used_faces, used_tracks = set(), set()
        for face_index, track_index in pairs:
            if face_index in used_faces or track_index in used_tracks:
                continue
            used_faces.add(face_index)
            used_tracks.add(track_index)
            track = track_list[track_index]
            dt = max(0.0, timestamp - track.last_seen)
            keep = 0.5 ** (dt / self.settings.half_life_seconds) if self.settings.half_life_seconds > 0 else 0.0
            if track.smoothed.shape == faces.probabilities[face_index].shape:
                track.smoothed = keep * track.smoothed + (1 - keep) * faces.probabilities[face_index]
            else:
                track.smoothed = faces.probabilities[face_index].copy()
            track.box, track.last_seen = faces.boxes[face_index].copy(), timestamp
            track.landmarks, track.score = faces.landmarks[face_index].copy(), float(faces.scores[face_index])
            track.confirmed = True
            ids[face_index], smoothed[face_index] = track.track_id, track.smoothed
        for face_index in range(len(faces)):
            if face_index in used_faces:
                continue
            score = float(faces.scores[face_index])
            track = _Track(self._next_id, faces.boxes[face_index].copy(), faces.probabilities[face_index].copy(), timestamp,
                           faces.landmarks[face_index].copy(), score, confirmed=score >= self.settings.confirm_score)
            self._tracks[track.track_id] = track
            self._next_id += 1
            if track.confirmed:
                ids[face_index] = track.track_id
        expired = [tid for tid, t in self._tracks.items() if timestamp - t.last_seen > self.settings.max_missed_seconds]
        for tid in expired:
            del self._tracks[tid]
        shown = ids >= 0
        tracked = replace(faces, track_ids=ids, smoothed=smoothed)
        return tracked if shown.all() else tracked.select(shown)

    def predict(self, timestamp: float, num_classes: int) -> Faces:
        """The live tracks as faces, for frames where detection is skipped (boxes held in place)."""
        live = [t for t in self._tracks.values() if t.confirmed and timestamp - t.last_seen <= self.settings.max_missed_seconds]
        if not live:
            return Faces.empty(num_classes)
        smoothed = np.stack([t.smoothed for t in live])
        return Faces(np.stack([t.box for t in live]), np.array([t.score for t in live]), np.stack([t.landmarks for t in live]),
                     smoothed, smoothed, np.array([t.track_id for t in live]))
