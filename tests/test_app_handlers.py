"""The app's frame handlers called directly (fast): what the live stream does with odd frames."""

import gradio as gr
import numpy as np
import pytest

from app import App
from fer import ClassStream
from fer import Pipeline, load_classifier


@pytest.fixture(scope="module")
def app(tiny_checkpoint, detector):
    return App(Pipeline(detector, load_classifier(tiny_checkpoint)))


def test_a_none_stream_frame_keeps_the_session_and_changes_nothing(app, astronaut):
    session = None
    annotated, session, *_ = app.live_frame(astronaut, session, False)
    assert isinstance(session, ClassStream) and session.log.frames == 1
    assert annotated.shape == astronaut.shape and not np.array_equal(annotated, astronaut)  # a box was drawn
    outputs = app.live_frame(None, session, False)
    assert outputs[1] is session and session.log.frames == 1  # nothing lost, nothing added
    assert all(isinstance(value, type(gr.skip())) for i, value in enumerate(outputs) if i != 1)
    app.live_frame(astronaut, session, False)
    assert session.log.frames == 2


@pytest.mark.parametrize("frame", [np.zeros((1, 1, 3), np.uint8), np.zeros((480, 640), np.uint8), np.zeros((480, 640, 4), np.uint8),
                                   (np.random.default_rng(0).random((64, 64, 3)) * 65535).astype(np.uint16)])
def test_odd_stream_frames_are_analysed_not_crashed_on(app, frame):
    annotated, session, *_, status = app.live_frame(frame, None, True)
    assert annotated.ndim == 3 and annotated.shape[2] == 3
    assert "0 face(s)" in status and session.log.frames == 1


def test_class_only_view_hides_per_face_labels(app, astronaut):
    _, session, _, _, faces, _ = app.live_frame(astronaut, None, True)
    assert faces.empty  # no per-face table in the class-only view
    assert session.log.frames == 1


def test_class_only_faces_table_keeps_its_headers_and_no_face(app, astronaut):
    _, session, _, _, faces, _ = app.live_frame(astronaut, None, True)
    assert faces.empty and list(faces.columns)[:2] == ["face", "first_seen_s"]


def test_class_only_video_gives_no_annotated_video_and_no_per_face_column(app, astronaut, tmp_path):
    import cv2
    import pandas as pd

    path = tmp_path / "lecture.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 240))
    for i in range(5):
        writer.write(cv2.cvtColor(np.roll(cv2.resize(astronaut, (320, 240)), i, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    quiet = lambda *args, **kwargs: None  # noqa: E731  (gr.Progress outside a server)
    for class_only, has_tracks in ((False, True), (True, False)):
        video, _, _, faces, csv_path, summary = list(app.video_view({"path": str(path)}, 5.0, class_only, quiet))[-1]
        assert summary["analyzed_frames"] == 5
        assert ("tracks" in pd.read_csv(csv_path).columns) is has_tracks
        assert (video is None) is class_only and faces.empty is class_only
