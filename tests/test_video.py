"""Reading recorded videos: corrupt frames are skipped and counted, and the sampling rate is checked."""

import cv2
import numpy as np
import pytest

from fer import InputError, analyze_video, probe_video
from fer.video import DEFAULT_SAMPLE_FPS, check_sample_fps


def mjpeg_video(path, astronaut, frames=40, corrupt=()):
    """An MJPEG AVI of the astronaut sliding right, with the JPEG data of the ``corrupt`` frames zeroed."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(frames):
        frame = np.roll(cv2.resize(astronaut, (320, 240)), i * 2, axis=1)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i] == 0xFF and data[i + 1] == 0xD8 and data[i + 2] == 0xFF]
    assert len(starts) == frames
    for k in corrupt:
        data[starts[k] : starts[k] + 600] = bytes(600)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def pipeline(detector):
    from fer import Pipeline, default_checkpoint, load_classifier

    return Pipeline(detector, load_classifier(default_checkpoint(), backend="auto"))


def test_a_corrupt_frame_in_the_middle_is_skipped_not_the_end(pipeline, astronaut, tmp_path):
    path = mjpeg_video(tmp_path / "middle.avi", astronaut, frames=8, corrupt=(3,))
    report = analyze_video(pipeline, path, sample_fps=None, every=1)
    assert report.analyzed_frames == 7 and report.undecodable_frames == 1
    times = [row.start for row in report.session.rows]
    assert times[-1] == pytest.approx(0.7)  # the last frame keeps its own time


def test_corrupt_leading_frames_do_not_reject_the_video(pipeline, astronaut, tmp_path):
    path = mjpeg_video(tmp_path / "leading.avi", astronaut, frames=40, corrupt=range(9))
    assert probe_video(path).width == 320
    report = analyze_video(pipeline, path, sample_fps=None, every=1)
    assert report.analyzed_frames == 31 and report.undecodable_frames == 9


def test_a_video_with_no_decodable_frame_is_refused(pipeline, astronaut, tmp_path):
    path = mjpeg_video(tmp_path / "broken.avi", astronaut, frames=5, corrupt=range(5))
    with pytest.raises(InputError, match="no decodable frame"):
        analyze_video(pipeline, path)


@pytest.mark.parametrize("value", [0, -1, 1e9, float("inf"), float("nan"), "fast", None])
def test_sampling_rates_outside_the_range_are_refused_with_the_range(value):
    with pytest.raises(InputError, match="from 0.1 to 30"):
        check_sample_fps(value)


def test_the_default_sampling_rate_is_valid():
    assert check_sample_fps(DEFAULT_SAMPLE_FPS) == DEFAULT_SAMPLE_FPS == 2.0


def test_playlists_that_name_other_files_are_refused(pipeline, astronaut, tmp_path):
    secret = mjpeg_video(tmp_path / "secret.avi", astronaut, frames=5)
    for name in ("lecture.mp4", "lecture.m3u8"):  # a name that says video, and the playlist's own
        path = tmp_path / name
        path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{secret}\n#EXT-X-ENDLIST\n")
        with pytest.raises(InputError, match="accepted format"):
            analyze_video(pipeline, path)


@pytest.mark.parametrize("suffix,fourcc", [(".mp4", "mp4v"), (".webm", "VP80"), (".avi", "MJPG")])
def test_each_accepted_container_is_read(astronaut, tmp_path, suffix, fourcc):
    from fer.video import video_container

    path = tmp_path / f"clip{suffix}"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (320, 240))
    for i in range(5):
        writer.write(cv2.cvtColor(np.roll(cv2.resize(astronaut, (320, 240)), i, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    assert video_container(path.read_bytes()[:16]) is not None
    assert probe_video(path).width == 320
