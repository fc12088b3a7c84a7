"""The per-session log of a class: bounded in memory for a 3-hour class, exported as CSV / JSON.

Each analysed frame adds a row (time, faces, the class's share of each expression, each track's
label). When the log is full, the oldest half is merged pairwise, so old history keeps its shape
at a coarser time resolution and memory stays bounded however long the class runs.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fer.types import FrameResult

__all__ = ["SHARE_METHODS", "SessionLog", "SessionRow", "expression_shares"]

#: How a frame's faces become the chart's shares:
#: ``"prior_corrected"`` re-estimates the frame's mix from the faces' calibrated probabilities,
#: undoing the pull towards the mix the classifier was calibrated on (3 EM steps, Saerens et al.
#: 2002); ``"top1"`` counts each face's top label; ``"mean_probability"`` averages the
#: probabilities. ``python -m bench shares`` compares them (README, "Class shares").
SHARE_METHODS = ("prior_corrected", "top1", "mean_probability")
_EM_STEPS = 3


def expression_shares(probabilities: np.ndarray, method: str = SHARE_METHODS[0], prior: np.ndarray | None = None) -> np.ndarray:
    """The share of a frame's faces showing each expression, ``(C,)`` summing to 1 (zeros with no face).

    Args:
        probabilities: ``(N, C)`` calibrated probabilities of the frame's faces.
        method: one of :data:`SHARE_METHODS`.
        prior: ``(C,)`` class mix the probabilities were calibrated on (``prior_corrected``
            only; none: uniform).

    Example:
        >>> expression_shares(np.array([[0.6, 0.4], [0.2, 0.8]]), "top1")
        array([0.5, 0.5])
    """
    if method not in SHARE_METHODS:
        raise ValueError(f"method must be one of {SHARE_METHODS}, got {method!r}")
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.ndim != 2:
        raise ValueError(f"expected (N, C) probabilities, got shape {probabilities.shape}")
    if len(probabilities) == 0 or probabilities.shape[1] == 0:
        return np.zeros(probabilities.shape[1])
    if method == "top1":
        return np.bincount(probabilities.argmax(1), minlength=probabilities.shape[1]) / len(probabilities)
    if method == "mean_probability":
        return probabilities.mean(0)
    k = probabilities.shape[1]
    prior = np.full(k, 1 / k) if prior is None or len(prior) != k else np.clip(np.asarray(prior, np.float64), 1e-6, None)
    shares = prior / prior.sum()
    for _ in range(_EM_STEPS):
        weighted = probabilities * (shares / prior)
        weighted /= np.maximum(weighted.sum(1, keepdims=True), 1e-12)
        shares = weighted.mean(0)
    return shares


@dataclass
class SessionRow:
    """One row of the log: one frame, or several merged frames.

    Attributes:
        start: seconds since the session started (first frame in the row).
        end: seconds of the last frame in the row.
        frames: number of frames merged into this row.
        faces: mean number of faces per frame.
        shares: share of faces showing each expression, in label order (zeros if no face), by the
            log's ``share_method``.
        tracks: ``track_id -> label`` for a single frame; ``{}`` once rows are merged.
    """

    start: float
    end: float
    frames: int
    faces: float
    shares: np.ndarray
    tracks: dict[int, str] = field(default_factory=dict)

    def merge(self, other: SessionRow) -> SessionRow:
        total = self.frames + other.frames
        return SessionRow(self.start, other.end, total, (self.faces * self.frames + other.faces * other.frames) / total,
                          (self.shares * self.frames + other.shares * other.frames) / total, {})


@dataclass
class _TrackSummary:
    first_seen: float
    last_seen: float
    frames: int = 0
    counts: Counter = field(default_factory=Counter)


class SessionLog:
    """What one browser session saw. Never shared between users (lives in ``gr.State``).

    Args:
        label_names: the classifier's classes.
        max_rows: rows kept before old rows are merged (memory bound).
        max_tracks: per-face summaries kept (the least recently seen are dropped beyond it).
        share_method: how a frame's faces become its expression shares (:data:`SHARE_METHODS`).
        prior: the class mix the classifier was calibrated on, for ``prior_corrected`` shares.

    Example:
        >>> log = SessionLog(("Happy", "Sad"))
        >>> log.frames
        0
    """

    def __init__(self, label_names: tuple[str, ...], max_rows: int = 2000, max_tracks: int = 500,
                 share_method: str = SHARE_METHODS[0], prior: tuple[float, ...] | None = None) -> None:
        if max_rows < 4:
            raise ValueError(f"max_rows must be >= 4, got {max_rows}")
        if share_method not in SHARE_METHODS:
            raise ValueError(f"share_method must be one of {SHARE_METHODS}, got {share_method!r}")
        self.share_method = share_method
        self.prior = None if not prior else np.asarray(prior, np.float64)
        self.label_names = tuple(label_names)
        self.max_rows = max_rows
        self.max_tracks = max_tracks
        self.rows: list[SessionRow] = []
        self.frames = 0
        self._tracks: dict[int, _TrackSummary] = {}
        self._totals = np.zeros(len(self.label_names), np.float64)  # face-frames per expression

    def add(self, result: FrameResult) -> None:
        """Record one analysed frame."""
        labels, _ = result.faces.top(self.label_names)
        shares = np.zeros(len(self.label_names), np.float64)
        if labels:
            shares = expression_shares(result.faces.smoothed, self.share_method, self.prior)
        self._totals += shares * len(labels)
        tracks = {int(t): label for t, label in zip(result.faces.track_ids, labels) if t >= 0}
        self.rows.append(SessionRow(result.timestamp, result.timestamp, 1, float(len(result.faces)), shares, tracks))
        self.frames += 1
        for track_id, label in tracks.items():
            summary = self._tracks.pop(track_id, None) or _TrackSummary(result.timestamp, result.timestamp)
            summary.last_seen, summary.frames = result.timestamp, summary.frames + 1
            summary.counts[label] += 1
            self._tracks[track_id] = summary  # re-inserted: dict order = least recently seen first
        while len(self._tracks) > self.max_tracks:
            del self._tracks[next(iter(self._tracks))]
        if len(self.rows) > self.max_rows:
            self._compact()

    def _compact(self) -> None:
        half = len(self.rows) // 2
        old, recent = self.rows[:half], self.rows[half:]
        merged = [old[i].merge(old[i + 1]) if i + 1 < len(old) else old[i] for i in range(0, len(old), 2)]
        self.rows = merged + recent

    def reset(self) -> None:
        self.rows.clear()
        self._tracks.clear()
        self._totals[:] = 0
        self.frames = 0

    # -- views -------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per log row: ``start, end, frames, faces, <share per class>, dominant, tracks``."""
        columns = ["start", "end", "frames", "faces", *self.label_names, "dominant", "tracks"]
        if not self.rows:
            return pd.DataFrame(columns=columns)
        records = []
        for row in self.rows:
            dominant = self.label_names[int(row.shares.argmax())] if row.shares.sum() > 0 else ""
            tracks = ";".join(f"{k}:{v}" for k, v in sorted(row.tracks.items()))
            records.append([round(row.start, 3), round(row.end, 3), row.frames, round(row.faces, 4),
                            *[round(float(s), 4) for s in row.shares], dominant, tracks])
        return pd.DataFrame(records, columns=columns)

    def timeline(self) -> pd.DataFrame:
        """Long format for a line plot: ``time`` (s), ``expression``, ``share`` (0..1)."""
        frame = self.to_frame()
        if frame.empty:
            return pd.DataFrame({"time": pd.Series(dtype=float), "expression": pd.Series(dtype=str), "share": pd.Series(dtype=float)})
        frame["time"] = (frame["start"] + frame["end"]) / 2
        return frame.melt(id_vars="time", value_vars=list(self.label_names), var_name="expression", value_name="share")

    def distribution(self) -> pd.DataFrame:
        """Overall share of each expression over all faces seen (each face-frame counts once): ``expression``, ``share``."""
        total = self._totals.sum()
        shares = self._totals / total if total > 0 else self._totals
        return pd.DataFrame({"expression": list(self.label_names), "share": [round(float(s), 4) for s in shares]})

    def face_table(self) -> pd.DataFrame:
        """Per tracked face: id, first / last seen, frames, most frequent label and its share."""
        rows = []
        for track_id, summary in sorted(self._tracks.items()):
            label, count = summary.counts.most_common(1)[0]
            rows.append({"face": track_id, "first_seen_s": round(summary.first_seen, 1), "last_seen_s": round(summary.last_seen, 1),
                         "frames": summary.frames, "usual_expression": label, "share": round(count / summary.frames, 3)})
        return pd.DataFrame(rows, columns=["face", "first_seen_s", "last_seen_s", "frames", "usual_expression", "share"])

    def summary(self) -> dict:
        """A JSON-serialisable summary of the session."""
        distribution = self.distribution()
        return {
            "frames": self.frames,
            "duration_s": round(self.rows[-1].end - self.rows[0].start, 3) if self.rows else 0.0,
            "mean_faces": round(float(np.average([r.faces for r in self.rows], weights=[r.frames for r in self.rows])), 3) if self.rows else 0.0,
            "distribution": dict(zip(distribution["expression"], distribution["share"])),
            "tracked_faces": len(self._tracks),
        }

    # -- export ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"labels": list(self.label_names), "summary": self.summary(), "rows": self.to_frame().to_dict(orient="records"),
                "faces": self.face_table().to_dict(orient="records")}

    def export_csv(self, path: str | Path) -> Path:
        path = Path(path)
        self.to_frame().to_csv(path, index=False)
        return path

    def export_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path
