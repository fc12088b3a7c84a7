"""The data that flows between the pipeline's stages: one dataclass of numpy arrays per frame."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["Faces", "FrameResult"]


@dataclass(frozen=True)
class Faces:
    """Every face found in one frame, as parallel arrays (row ``i`` is face ``i``).

    Attributes:
        boxes: ``(N, 4)`` float32 ``x1, y1, x2, y2`` in frame pixels.
        scores: ``(N,)`` float32 detector confidence in [0, 1].
        landmarks: ``(N, 5, 2)`` float32 ``(x, y)`` of left eye, right eye, nose, mouth left,
            mouth right (left / right as seen in the image).
        probabilities: ``(N, C)`` float32 expression probabilities, rows sum to 1; ``C == 0``
            before classification.
        smoothed: ``(N, C)`` float32 probabilities smoothed over time by the tracker (equal to
            ``probabilities`` for untracked faces).
        track_ids: ``(N,)`` int64 stable id per face across frames, ``-1`` when untracked.

    Example:
        >>> Faces.empty().boxes.shape
        (0, 4)
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray
    probabilities: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    smoothed: np.ndarray | None = None
    track_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.boxes)
        object.__setattr__(self, "boxes", np.asarray(self.boxes, np.float32).reshape(-1, 4))
        object.__setattr__(self, "scores", np.asarray(self.scores, np.float32).reshape(-1))
        object.__setattr__(self, "landmarks", np.asarray(self.landmarks, np.float32).reshape(-1, 5, 2))
        probabilities = np.asarray(self.probabilities, np.float32)
        if probabilities.size == 0 and not (probabilities.ndim == 2 and len(probabilities) == n):
            probabilities = np.zeros((n, 0), np.float32)
        object.__setattr__(self, "probabilities", probabilities)
        smoothed = probabilities if self.smoothed is None else np.asarray(self.smoothed, np.float32)
        object.__setattr__(self, "smoothed", smoothed)
        track_ids = np.full(n, -1, np.int64) if self.track_ids is None else np.asarray(self.track_ids, np.int64)
        object.__setattr__(self, "track_ids", track_ids)
        for name, value, shape in (
            ("scores", self.scores, (n,)),
            ("landmarks", self.landmarks, (n, 5, 2)),
            ("track_ids", self.track_ids, (n,)),
        ):
            if value.shape != shape:
                raise ValueError(f"Faces.{name} must have shape {shape} for {n} boxes, got {value.shape}")
        if self.probabilities.shape[0] != n or self.smoothed.shape != self.probabilities.shape:
            raise ValueError(
                f"Faces.probabilities and .smoothed must be ({n}, C) alike, got {self.probabilities.shape} and {self.smoothed.shape}"
            )

    @classmethod
    def empty(cls, num_classes: int = 0) -> Faces:
        """No faces (never ``None``)."""
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)), np.zeros((0, num_classes), np.float32))

    def __len__(self) -> int:
        return len(self.boxes)

    def with_probabilities(self, probabilities: np.ndarray) -> Faces:
        """A copy with classifier output (smoothing reset to the raw probabilities)."""
        return replace(self, probabilities=probabilities, smoothed=None)

    def select(self, keep: np.ndarray) -> Faces:
        """The faces at the indices or boolean mask ``keep``."""
        return Faces(self.boxes[keep], self.scores[keep], self.landmarks[keep], self.probabilities[keep],
                     self.smoothed[keep], self.track_ids[keep])

    def reading_order(self) -> np.ndarray:
        """Indices that put the faces in reading order: rows top to bottom, each left to right.

        Two faces share a row when their centres are less than half the smaller face's height
        apart vertically, as the tiles of a call gallery do.
        """
        if len(self) == 0:
            return np.zeros(0, np.int64)
        centers = (self.boxes[:, :2] + self.boxes[:, 2:]) / 2
        heights = self.boxes[:, 3] - self.boxes[:, 1]
        by_y = np.argsort(centers[:, 1], kind="stable")
        rows, row = [], [by_y[0]]
        for i in by_y[1:]:
            anchor = row[0]
            if centers[i, 1] - centers[anchor, 1] < 0.5 * min(heights[i], heights[anchor]):
                row.append(i)
            else:
                rows.append(row)
                row = [i]
        rows.append(row)
        return np.asarray([i for r in rows for i in sorted(r, key=lambda j: centers[j, 0])], np.int64)

    def top(self, label_names: tuple[str, ...], smoothed: bool = True) -> tuple[list[str], np.ndarray]:
        """Top label and its confidence per face (from the smoothed probabilities by default)."""
        probs = self.smoothed if smoothed else self.probabilities
        if probs.shape[1] == 0:
            return [], np.zeros(0, np.float32)
        index = probs.argmax(1)
        return [label_names[i] for i in index], probs[np.arange(len(index)), index]


@dataclass(frozen=True)
class FrameResult:
    """The pipeline's answer for one frame.

    Attributes:
        faces: detected, classified (and, for streams, tracked) faces.
        label_names: the classifier's class names, in probability-column order.
        width: frame width in pixels.
        height: frame height in pixels.
        timestamp: seconds since the session started (0 for single images).
        timings: milliseconds per stage (``detect``, ``classify``, ``track``, ``total``).
        uncertain_below: the classifier's calibrated confidence under which a face's label is
            shown as uncertain (0: never; see :mod:`fer.calibration`).
    """

    faces: Faces
    label_names: tuple[str, ...]
    width: int
    height: int
    timestamp: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    uncertain_below: float = 0.0

    def uncertain(self, confidences: np.ndarray | None = None) -> np.ndarray:
        """``(N,)`` bool: faces whose top confidence is under :attr:`uncertain_below`.

        Args:
            confidences: the faces' top confidences when the caller already has them from
                :meth:`Faces.top` (saves computing them again per frame).
        """
        if confidences is None:
            _, confidences = self.faces.top(self.label_names)
        if len(confidences) != len(self.faces):
            return np.zeros(len(self.faces), bool)
        return confidences < self.uncertain_below

    def to_json(self, include_landmarks: bool = True) -> dict:
        """A JSON-serialisable summary: one entry per face with box, landmarks, label and scores.

        ``uncertain`` is true where the calibrated confidence is under :attr:`uncertain_below`: the
        label is more likely wrong than right, and the views mute it.
        """
        labels, confidences = self.faces.top(self.label_names)
        uncertain = self.uncertain(confidences)
        faces = []
        for i in range(len(self.faces)):
            entry = {
                "box": [round(float(v), 1) for v in self.faces.boxes[i]],
                "detection_score": round(float(self.faces.scores[i]), 4),
                "label": labels[i] if labels else None,
                "confidence": round(float(confidences[i]), 4) if labels else None,
                "uncertain": bool(uncertain[i]),
                "scores": {n: round(float(p), 4) for n, p in zip(self.label_names, self.faces.smoothed[i])},
            }
            if include_landmarks:
                entry["landmarks"] = [[round(float(x), 1), round(float(y), 1)] for x, y in self.faces.landmarks[i]]
            if self.faces.track_ids[i] >= 0:
                entry["track_id"] = int(self.faces.track_ids[i])
            faces.append(entry)
        return {"width": self.width, "height": self.height, "num_faces": len(faces), "faces": faces,
                "labels": list(self.label_names), "uncertain_below": round(float(self.uncertain_below), 4),
                "timings_ms": {k: round(v, 1) for k, v in self.timings.items()}}
