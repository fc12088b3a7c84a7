"""One class session's moving parts in one object: tracker, log, clock and frame counter.

The live view, the ``/analyze_frame`` API and video analysis all feed frames through
:meth:`ClassStream.step`, so a frame is handled the same way wherever it comes from.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from fer.pipeline import Pipeline
from fer.session import SessionLog
from fer.tracking import FaceTracker
from fer.types import FrameResult

__all__ = ["ClassStream"]


class ClassStream:
    """A class session: frames in, tracked and classified faces out, every frame logged.

    Thread-safe: a server may hand two frames of the same session to two worker threads at once;
    they are analysed one after the other, so no frame is lost and the tracker sees them in order.

    Args:
        pipeline: the shared, read-only detector + classifier.
        clock: seconds, monotonic; frames without their own timestamp are stamped with the time
            since the stream started.
        log: the session log to fill (a new one when ``None``).

    Example:
        >>> stream = ClassStream(pipeline)  # doctest: +SKIP
        >>> stream.step(frame).faces.track_ids  # doctest: +SKIP
        array([1])
    """

    def __init__(self, pipeline: Pipeline, clock: Callable[[], float] = time.monotonic, log: SessionLog | None = None) -> None:
        self.pipeline = pipeline
        prior = pipeline.classifier.calibration.class_prior
        self.log = log if log is not None else SessionLog(pipeline.label_names, prior=prior)
        self.tracker = FaceTracker()
        self._clock = clock
        self._lock = threading.Lock()
        self.started = clock()
        self.frame_index = 0
        self._last_due = -np.inf

    def elapsed(self) -> float:
        """Seconds since the stream started (or was reset)."""
        return self._clock() - self.started

    def step(self, frame: np.ndarray, timestamp: float | None = None) -> FrameResult:
        """Analyse one RGB frame of the stream, track its faces and log it.

        Args:
            frame: ``(H, W, 3)`` RGB uint8.
            timestamp: the frame's time in seconds (a video's own clock); ``None``: now.
        """
        with self._lock:
            when = self.elapsed() if timestamp is None else float(timestamp)
            result = self.pipeline.analyze(frame, tracker=self.tracker, timestamp=when, frame_index=self.frame_index)
            self.frame_index += 1
            self.log.add(result)
            return result

    def due(self, interval: float) -> bool:
        """True at most once per ``interval`` seconds: for views that refresh slower than frames arrive."""
        with self._lock:
            now = self._clock()
            if now - self._last_due < interval:
                return False
            self._last_due = now
            return True

    def reset(self) -> None:
        """Forget everything: log, tracks, clock and frame count."""
        with self._lock:
            self.log.reset()
            self.tracker.reset()
            self.started = self._clock()
            self.frame_index = 0
            self._last_due = -np.inf

    def __deepcopy__(self, memo: dict) -> ClassStream:
        # Gradio deep-copies a gr.State's initial value once per browser session; the factory
        # already made this stream fresh for that session, and it holds a lock and the shared
        # models, neither of which may be copied.
        return self
