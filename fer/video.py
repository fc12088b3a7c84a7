"""Read a recorded video at a chosen sampling rate, run the pipeline, and write an annotated copy."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer.annotate import annotate
from fer.images import InputError
from fer.pipeline import Pipeline
from fer.session import SessionLog
from fer.stream import ClassStream

__all__ = ["ACCEPTED_CONTAINERS", "DEFAULT_SAMPLE_FPS", "SAMPLE_FPS_RANGE", "DecodeCount", "VideoInfo", "VideoReport", "analyze_video", "check_sample_fps", "iter_frames",
           "VideoProgress", "analyze_video_steps", "probe_video", "video_container"]

logger = logging.getLogger(__name__)

#: Frames analysed per second of video, by default: a class's mood changes over seconds, and 2/s
#: keeps a 1-hour lecture at about 10 minutes on 2 CPU cores. The app's slider and API share it.
DEFAULT_SAMPLE_FPS = 2.0
#: The accepted range of ``sample_fps``, in frames per second of video.
SAMPLE_FPS_RANGE = (0.1, 30.0)


def check_sample_fps(sample_fps: object) -> float:
    """``sample_fps`` as a float, or :class:`InputError` if it is not a finite number in :data:`SAMPLE_FPS_RANGE`.

    Example:
        >>> check_sample_fps("2")
        2.0
    """
    low, high = SAMPLE_FPS_RANGE
    try:
        value = float(sample_fps)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"frames analysed per second must be a number from {low:g} to {high:g}, got {sample_fps!r}") from None
    if not np.isfinite(value) or not low <= value <= high:
        raise InputError(f"frames analysed per second must be from {low:g} to {high:g}, got {sample_fps!r}")
    return value


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


#: Undecodable frames in a row after which a video of unknown length is taken to have ended.
MAX_BAD_RUN = 250

#: Containers accepted, recognised by their first bytes (never by the file name): their FFmpeg
#: demuxers read the one file they are given. Playlists (HLS ``.m3u8``, concat lists, SDP...) name
#: other files or URLs for FFmpeg to open, so anything else is refused before FFmpeg sees it.
ACCEPTED_CONTAINERS = "MP4 / MOV, WebM / Matroska, AVI"


def video_container(head: bytes) -> str | None:
    """The container named by a file's first bytes, or ``None`` when it is not one we accept.

    Example:
        >>> video_container(b"\\x1aE\\xdf\\xa3" + bytes(8))
        'webm'
    """
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mp4"
    if head[:4] == b"\x1aE\xdf\xa3":
        return "webm"
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return "avi"
    return None


def _open_capture(path: Path) -> cv2.VideoCapture:
    """OpenCV's FFmpeg reader on an accepted container, allowed to read local files only."""
    with path.open("rb") as handle:
        head = handle.read(16)
    if video_container(head) is None:
        raise InputError(f"{path.name} is not a video in an accepted format ({ACCEPTED_CONTAINERS})")
    # FFmpeg options for this capture: no network or pipe protocol, whatever the file says.
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "protocol_whitelist;file"
    return cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)


def probe_video(path: str | Path) -> VideoInfo:
    """Open a video and read its header and first decodable frame.

    Raises:
        InputError: the file cannot be read, or none of its frames decodes.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise InputError(f"{path.name} is missing or empty")
    capture = _open_capture(path)
    try:
        if not capture.isOpened():
            raise InputError(f"{path.name} is not a video OpenCV can read (MP4, WebM, AVI, MOV...)")
        declared = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        frame = None
        for _ in range(declared or MAX_BAD_RUN):  # corrupt leading frames are skipped, not fatal
            ok, frame = capture.read()
            if ok and frame is not None:
                break
            frame = None
        if frame is None:
            raise InputError(f"{path.name} has no decodable frame")
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = fps if np.isfinite(fps) and 0 < fps < 1000 else 25.0
        return VideoInfo(fps, max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))), frame.shape[1], frame.shape[0])
    finally:
        capture.release()


def _sampling_step(info: VideoInfo, sample_fps: float | None, every: int) -> int:
    """Analyse every n-th frame: from a target rate when given, else ``every``."""
    return max(1, round(info.fps / sample_fps)) if sample_fps else max(1, every)


@dataclass
class DecodeCount:
    """Frames that could not be decoded while reading a video (filled in by :func:`iter_frames`)."""

    undecodable: int = 0


def iter_frames(path: str | Path, sample_fps: float | None = None, every: int = 1,
                count: DecodeCount | None = None) -> Iterator[tuple[float, int, np.ndarray]]:
    """Yield ``(time_s, frame_index, RGB frame)`` for sampled frames.

    A frame that does not decode is skipped and counted in ``count``; reading goes on to the
    declared end of the video (or, when the length is unknown, until :data:`MAX_BAD_RUN`
    undecodable frames in a row). A failed read still consumes its frame, so time stays right.

    Args:
        path: the video file.
        sample_fps: frames per second to analyse (``None``: every ``every``-th frame).
        every: analyse every n-th frame when ``sample_fps`` is not given.
        count: receives the number of undecodable frames.
    """
    info = probe_video(path)
    step = _sampling_step(info, sample_fps, every)
    count = count if count is not None else DecodeCount()
    capture = _open_capture(Path(path))
    index, bad_run = 0, 0
    try:
        while not info.frames or index < info.frames:
            if index % step == 0:
                ok, frame = capture.read()
                ok = ok and frame is not None
            else:
                ok, frame = capture.grab(), None  # grab() skips decoding-to-RGB for frames we do not analyse
            if ok:
                bad_run = 0
                if frame is not None:
                    yield index / info.fps, index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            else:
                bad_run += 1
                if not info.frames and bad_run >= MAX_BAD_RUN:
                    break
                count.undecodable += 1
            index += 1
    finally:
        capture.release()
    if not info.frames:
        count.undecodable = max(0, count.undecodable - bad_run)  # the tail of an unknown-length video is its end


@dataclass
class VideoReport:
    """The result of :func:`analyze_video`: the session log, frames analysed, and the annotated video path."""

    session: SessionLog
    analyzed_frames: int
    annotated_path: Path | None
    undecodable_frames: int = 0


@dataclass(frozen=True)
class VideoProgress:
    """Where :func:`analyze_video_steps` has got to: ``done`` of about ``expected`` sampled frames
    (0 when the length is unknown), the last frame's index and time in seconds."""

    done: int
    expected: int
    frame_index: int
    time_s: float

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.expected) if self.expected else 0.0


def analyze_video(
    pipeline: Pipeline,
    path: str | Path,
    sample_fps: float | None = DEFAULT_SAMPLE_FPS,
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
        InputError: the file is not a video or has no decodable frame, or ``sample_fps`` is out of range.
    """
    steps = analyze_video_steps(pipeline, path, sample_fps, every, annotated_path, show_labels, session, max_seconds)
    while True:
        try:
            where = next(steps)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress(where.fraction, f"frame {where.frame_index} ({where.time_s:.1f} s)")


def analyze_video_steps(
    pipeline: Pipeline,
    path: str | Path,
    sample_fps: float | None = DEFAULT_SAMPLE_FPS,
    every: int = 1,
    annotated_path: str | Path | None = None,
    show_labels: bool = True,
    session: SessionLog | None = None,
    max_seconds: float | None = None,
) -> Generator[VideoProgress, None, VideoReport]:
    """:func:`analyze_video` one frame at a time: yields a :class:`VideoProgress` after each
    analysed frame and returns the :class:`VideoReport`.

    A caller that stops iterating stops the work at once (and the annotated video is closed): this
    is how a cancelled request or a closed browser tab stops costing CPU.
    """
    if sample_fps is not None:
        sample_fps = check_sample_fps(sample_fps)
    info = probe_video(path)
    stream = ClassStream(pipeline, log=session)
    writer = None
    step = _sampling_step(info, sample_fps, every)
    expected = max(1, info.frames // step) if info.frames else 0
    count = 0
    decode = DecodeCount()
    try:
        for time_s, index, frame in iter_frames(path, sample_fps, every, decode):
            if max_seconds is not None and time_s > max_seconds:
                break
            result = stream.step(frame, timestamp=time_s)
            if annotated_path is not None:
                if writer is None:
                    writer = cv2.VideoWriter(str(annotated_path), cv2.VideoWriter_fourcc(*"VP80"), info.fps / step, (frame.shape[1], frame.shape[0]))
                writer.write(cv2.cvtColor(annotate(frame, result, show_labels), cv2.COLOR_RGB2BGR))
            count += 1
            yield VideoProgress(count, expected, index, time_s)
    finally:
        if writer is not None:
            writer.release()
    if count == 0:
        raise InputError(f"{Path(path).name} has no decodable frame")
    if decode.undecodable:
        logger.warning("%s: %d undecodable frame(s) skipped", Path(path).name, decode.undecodable)
    return VideoReport(stream.log, count, Path(annotated_path) if annotated_path is not None and writer is not None else None,
                       decode.undecodable)
