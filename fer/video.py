"""Read a recorded video at a chosen sampling rate, run the pipeline, and write an annotated copy."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer.annotate import annotate
from fer.images import InputError
from fer.pipeline import Pipeline
from fer.session import SessionLog
from fer.tracking import FaceTracker

__all__ = ["VideoInfo", "probe_video", "iter_frames", "analyze_video", "VideoReport"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds: ``fps`` (frames per second), ``frames`` (count, 0 if unknown), size."""

    fps: float
    frames: int
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0


def probe_video(path: str | Path) -> VideoInfo:
    """Open a video and read its header; :class:`InputError` if it cannot be read or has no frame."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise InputError(f"{path.name} is missing or empty")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise InputError(f"{path.name} is not a video OpenCV can read (MP4, WebM, AVI, MOV...)")
        ok, frame = capture.read()
        if not ok or frame is None:
            raise InputError(f"{path.name} has no decodable frame")
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = fps if np.isfinite(fps) and 0 < fps < 1000 else 25.0
        return VideoInfo(fps, max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))), frame.shape[1], frame.shape[0])
    finally:
        capture.release()


def _sampling_step(info: VideoInfo, sample_fps: float | None, every: int) -> int:
    """Analyse every n-th frame: from a target rate when given, else ``every``."""
    return max(1, round(info.fps / sample_fps)) if sample_fps else max(1, every)


def iter_frames(path: str | Path, sample_fps: float | None = None, every: int = 1) -> Iterator[tuple[float, int, np.ndarray]]:
    """Yield ``(time_s, frame_index, RGB frame)`` for sampled frames.

    Args:
        path: the video file.
        sample_fps: frames per second to analyse (``None``: every ``every``-th frame).
        every: analyse every n-th frame when ``sample_fps`` is not given.
    """
    info = probe_video(path)
    step = _sampling_step(info, sample_fps, every)
    capture = cv2.VideoCapture(str(path))
    index = 0
    try:
        while True:
            if index % step == 0:
                ok, frame = capture.read()
                if not ok:
                    break
                yield index / info.fps, index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            elif not capture.grab():  # grab() skips decoding-to-RGB for frames we do not analyse
                break
            index += 1
    finally:
        capture.release()


@dataclass
class VideoReport:
    """The result of :func:`analyze_video`: the session log, frames analysed, and the annotated video path."""

    session: SessionLog
    analyzed_frames: int
    annotated_path: Path | None


def analyze_video(
    pipeline: Pipeline,
    path: str | Path,
    sample_fps: float | None = 5.0,
    every: int = 1,
    annotated_path: str | Path | None = None,
    show_labels: bool = True,
    session: SessionLog | None = None,
    progress: Callable[[float, str], None] | None = None,
    max_seconds: float | None = None,
) -> VideoReport:
    """Run the pipeline over a video, logging every sampled frame into a session.

    Args:
        pipeline: the shared detector + classifier.
        path: the video file.
        sample_fps: frames per second to analyse (``None`` with ``every`` for every n-th frame).
        every: analyse every n-th frame when ``sample_fps`` is ``None``.
        annotated_path: where to write an annotated WebM of the sampled frames (``None``: none).
        show_labels: per-face labels on the annotated video (``False``: class-only view).
        session: log to append to (a new one when ``None``).
        progress: called with ``(fraction, message)`` as frames are processed.
        max_seconds: stop after this much of the video.

    Raises:
        InputError: the file is not a video or has no decodable frame.
    """
    info = probe_video(path)
    session = session or SessionLog(pipeline.label_names)
    tracker = FaceTracker()
    writer = None
    step = _sampling_step(info, sample_fps, every)
    expected = max(1, info.frames // step) if info.frames else 0
    count = 0
    try:
        for time_s, index, frame in iter_frames(path, sample_fps, every):
            if max_seconds is not None and time_s > max_seconds:
                break
            result = pipeline.analyze(frame, tracker=tracker, timestamp=time_s, frame_index=count)
            session.add(result)
            if annotated_path is not None:
                if writer is None:
                    writer = cv2.VideoWriter(str(annotated_path), cv2.VideoWriter_fourcc(*"VP80"), info.fps / step, (frame.shape[1], frame.shape[0]))
                writer.write(cv2.cvtColor(annotate(frame, result, show_labels), cv2.COLOR_RGB2BGR))
            count += 1
            if progress is not None:
                progress(min(1.0, count / expected) if expected else 0.0, f"frame {index} ({time_s:.1f} s)")
    finally:
        if writer is not None:
            writer.release()
    if count == 0:
        raise InputError(f"{Path(path).name} has no decodable frame")
    return VideoReport(session, count, Path(annotated_path) if annotated_path is not None and writer is not None else None)
