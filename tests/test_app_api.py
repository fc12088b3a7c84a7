"""The real app (``python app.py`` on loopback) through gradio_client: endpoints, bad input, sessions."""

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from bench.frames import gallery, place
from fer import FER2013_CLASSES


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


def save(path, array, **kwargs):
    Image.fromarray(array).save(path, **kwargs)
    return path


def assert_face_json(face, width, height):
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert len(face["landmarks"]) == 5 and all(len(point) == 2 for point in face["landmarks"])
    assert face["label"] in FER2013_CLASSES
    assert set(face["scores"]) == set(FER2013_CLASSES)
    assert sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-3)
    assert face["confidence"] == pytest.approx(max(face["scores"].values()), abs=1e-4)


def test_analyze_image_returns_faces_as_json(client, astronaut, tmp_path):
    result = client.predict(handle_file(save(tmp_path / "astronaut.png", astronaut)), api_name="/analyze_image")
    assert result["num_faces"] == 1 and result["width"] == 512 and result["height"] == 512
    assert_face_json(result["faces"][0], 512, 512)
    assert result["faces"][0]["label"] == "Happy"  # she is smiling
    assert result["labels"] == list(FER2013_CLASSES)


def test_analyze_image_finds_every_face_of_a_gallery(client, astronaut, tmp_path):
    frame, _ = gallery([astronaut], 2, 3, 1280, 720)
    result = client.predict(handle_file(save(tmp_path / "gallery.jpg", frame, quality=92)), api_name="/analyze_image")
    assert result["num_faces"] == 6
    for face in result["faces"]:
        assert_face_json(face, 1280, 720)


def _truncated_jpeg(astronaut):
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, format="JPEG")
    return buffer.getvalue()[:3000]


BAD_IMAGES = {
    "renamed.jpg": (lambda a: b"%PDF-1.4 this is a document, not a photo", "not an image"),
    "empty.png": (lambda a: b"", "empty"),
    "truncated.jpg": (_truncated_jpeg, "truncated|corrupt|not an image"),
    "huge.png": (None, "too large"),
}


@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_bad_images_get_a_clear_error_and_the_server_keeps_serving(client, app_server, astronaut, tmp_path, name):
    make, message = BAD_IMAGES[name]
    path = tmp_path / name
    if make is None:
        Image.new("L", (20000, 20000)).save(path)
    else:
        path.write_bytes(make(astronaut))
    with pytest.raises(Exception, match=message):
        client.predict(handle_file(path), api_name="/analyze_image")
    assert app_server.alive()
    ok = client.predict(handle_file(save(tmp_path / "ok.png", astronaut)), api_name="/analyze_image")
    assert ok["num_faces"] == 1


@pytest.mark.parametrize("kind", ["gray", "rgba", "16bit"])
def test_unusual_pixel_formats_still_work(client, astronaut, tmp_path, kind):
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    array = {"gray": gray, "rgba": np.dstack([astronaut, np.full(gray.shape, 255, np.uint8)]),
             "16bit": gray.astype(np.uint16) * 257}[kind]
    result = client.predict(handle_file(save(tmp_path / f"{kind}.png", array)), api_name="/analyze_image")
    assert result["num_faces"] == 1


def test_tiny_and_faceless_images_are_an_honest_empty_result(client, tmp_path):
    for name, array in {"one_pixel.png": np.zeros((1, 1, 3), np.uint8), "wall.png": np.full((480, 640, 3), 180, np.uint8)}.items():
        result = client.predict(handle_file(save(tmp_path / name, array)), api_name="/analyze_image")
        assert result["num_faces"] == 0 and result["faces"] == []
        assert "No face" in result["message"]


def test_sessions_are_private_and_export_what_was_sent(app_server, astronaut, tmp_path):
    alice, bob = Client(app_server.url, verbose=False), Client(app_server.url, verbose=False)
    ids = set()
    for step in range(4):
        frame = place(astronaut, 640, 480, 220, x=100 + step * 6, y=80)
        answer = alice.predict(handle_file(save(tmp_path / f"f{step}.png", frame)), api_name="/analyze_frame")
        assert answer["num_faces"] == 1 and answer["frames_logged"] == step + 1
        ids.add(answer["faces"][0]["track_id"])
    assert len(ids) == 1  # the same face keeps its id across frames
    assert alice.predict(api_name="/session_summary")["frames"] == 4
    assert bob.predict(api_name="/session_summary")["frames"] == 0
    bob.predict(handle_file(save(tmp_path / "empty_room.png", np.full((480, 640, 3), 90, np.uint8))), api_name="/analyze_frame")
    assert bob.predict(api_name="/session_summary")["frames"] == 1
    assert alice.predict(api_name="/session_summary")["frames"] == 4
    csv_path, json_path = alice.predict(api_name="/export_session")
    import pandas as pd

    table = pd.read_csv(csv_path)
    assert table["frames"].sum() == 4 and list(table["faces"]) == [1, 1, 1, 1]
    alice.predict(api_name="/reset_session")
    assert alice.predict(api_name="/session_summary")["frames"] == 0


def _write_video(path, frames, fps=10):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_analyze_video_returns_summary_and_csv(client, astronaut, tmp_path):
    frames = [place(astronaut, 640, 480, 240, x=40 + 8 * i, y=100) for i in range(20)]
    frames += [np.full((480, 640, 3), 60, np.uint8)] * 10  # the student leaves
    video = _write_video(tmp_path / "lecture.avi", frames)
    summary, csv_path = client.predict(handle_file(video), 5.0, api_name="/analyze_video")
    assert summary["analyzed_frames"] == 15  # 30 frames at 10 fps, sampled at 5 fps
    import pandas as pd

    table = pd.read_csv(csv_path)
    assert table["frames"].sum() == 15
    assert list(table["faces"]) == [1] * 10 + [0] * 5
    assert summary["distribution"]["Happy"] > 0.5


@pytest.mark.parametrize("name,content", [("no_frames.mp4", b""), ("not_a_video.mp4", b"\x00\x01garbage" * 100)])
def test_bad_videos_get_a_clear_error(client, app_server, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(Exception, match="empty|not a video|no decodable frame"):
        client.predict(handle_file(path), 5.0, api_name="/analyze_video")
    assert app_server.alive()


def test_a_video_whose_header_opens_but_holds_no_frame(client, tmp_path):
    path = tmp_path / "header_only.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    writer.release()
    with pytest.raises(Exception, match="empty|not a video|no decodable frame"):
        client.predict(handle_file(path), 5.0, api_name="/analyze_video")


def test_concurrent_first_frames_of_a_new_client_all_land_in_one_session(app_server, astronaut, tmp_path):
    client = Client(app_server.url, verbose=False)
    path = handle_file(save(tmp_path / "frame.jpg", place(astronaut, 320, 240, 120)))
    jobs = [client.submit(path, api_name="/analyze_frame") for _ in range(24)]
    answers = [job.result(timeout=300) for job in jobs]
    assert sorted(a["frames_logged"] for a in answers) == list(range(1, 25))  # each frame counted once, in turn
    assert client.predict(api_name="/session_summary")["frames"] == 24


@pytest.mark.parametrize("value", [0, -1, 1e9])  # NaN and Infinity: tests/test_video.py (JSON cannot carry them)
def test_video_sampling_rate_out_of_range_is_a_clear_error(client, app_server, astronaut, tmp_path, value):
    video = _write_video(tmp_path / "short.avi", [place(astronaut, 320, 240, 120)] * 3)
    with pytest.raises(Exception, match="from 0.1 to 30"):
        client.predict(handle_file(video), value, api_name="/analyze_video")
    assert app_server.alive()


def test_empty_photo_table_keeps_its_column_names(app_server, tmp_path):
    client = Client(app_server.url, verbose=False)
    path = handle_file(save(tmp_path / "wall.png", np.full((240, 320, 3), 90, np.uint8)))
    _, table, result, note = client.predict(path, False, api_name="/photo_view")
    assert result["num_faces"] == 0 and "No face" in note
    assert table["headers"][:4] == ["face", "expression", "confidence", "box"]


def test_cancelling_a_video_analysis_stops_the_work(app_server, astronaut, tmp_path):
    import time

    import psutil

    frames = [place(astronaut, 320, 240, 140, x=20 + i % 140, y=40) for i in range(600)]
    video = _write_video(tmp_path / "long_lecture.avi", frames, fps=30)  # 20 s, every frame analysed: ~15 s of work
    client = Client(app_server.url, verbose=False)
    server = psutil.Process(app_server.process.pid)

    def cpu_seconds():
        times = server.cpu_times()
        return times.user + times.system

    job = client.submit(handle_file(video), 30.0, api_name="/analyze_video")
    deadline = time.time() + 60
    while time.time() < deadline and (job.status().progress_data is None):
        time.sleep(0.2)  # wait until frames are being analysed
    time.sleep(1.0)
    job.cancel()
    time.sleep(1.0)
    before = cpu_seconds()
    time.sleep(3.0)
    assert cpu_seconds() - before < 0.6  # idle: the analysis stopped (it uses ~2 cores while it runs)
    summary, _ = client.predict(handle_file(_write_video(tmp_path / "short.avi", frames[:6], fps=30)), 30.0, api_name="/analyze_video")
    assert summary["analyzed_frames"] == 6  # the video slot is free again


def test_a_scrolling_screenshot_is_analysed_and_shown(app_server, astronaut, tmp_path):
    client = Client(app_server.url, verbose=False)
    frame, _ = gallery([astronaut[30:230, 125:325]], 16, 2, 1080, 16400, face_fraction=0.6)
    path = handle_file(save(tmp_path / "scrolling.png", frame))
    annotated, table, result, note = client.predict(path, False, api_name="/photo_view")
    assert result["num_faces"] == 32 and result["height"] == 16400
    assert len(table["data"]) == 32
    shown = np.asarray(Image.open(annotated))
    assert max(shown.shape[:2]) <= 8192 and shown.shape[0] > shown.shape[1]  # shrunk for display, not an error


@pytest.fixture(scope="module")
def class_only_server(tmp_path_factory):
    from bench.server import AppServer

    server = AppServer(["--class-only", "--max-file-size", "20mb"], tmp_path_factory.mktemp("class_only") / "app.log")
    yield server
    server.stop()


def test_a_class_only_server_lets_no_per_face_label_out(class_only_server, astronaut, tmp_path):
    """Every output a user or a program can get: photo view, API JSON, live-frame JSON, exports, video CSV."""
    import pandas as pd

    client = Client(class_only_server.url, verbose=False)
    frame, _ = gallery([astronaut[30:230, 125:325]], 1, 3, 960, 360)
    photo = handle_file(save(tmp_path / "class.png", frame))

    def assert_no_face_entries(result):
        assert result["num_faces"] == 3 and result["faces"] == [] and result["class_only"] is True
        assert sum(result["expression_counts"].values()) == 3  # the aggregate stays

    assert_no_face_entries(client.predict(photo, api_name="/analyze_image"))
    annotated, table, result, _ = client.predict(photo, False, api_name="/photo_view")  # the box unticked: still forced
    assert_no_face_entries(result)
    assert table["data"] == [] or table["data"] == [[""] * len(table["headers"])]
    shown = np.asarray(Image.open(annotated).convert("RGB")).astype(int)
    assert np.abs(shown - frame.astype(int)).mean() < 3  # no box or label drawn (WebP noise aside)
    for step in range(3):
        answer = client.predict(photo, api_name="/analyze_frame")
        assert_no_face_entries(answer)
        assert "track_id" not in str(answer)
    csv_path, json_path = client.predict(api_name="/export_session")
    exported = pd.read_csv(csv_path)
    assert "tracks" not in exported.columns and exported["faces"].tolist() == [3, 3, 3]
    session = json.loads(Path(json_path).read_text())
    assert session["faces"] == [] and all("tracks" not in row for row in session["rows"])
    video = _write_video(tmp_path / "class.avi", [frame] * 6, fps=6)
    summary, video_csv = client.predict(handle_file(video), 6.0, api_name="/analyze_video")
    assert summary["analyzed_frames"] == 6 and "tracks" not in pd.read_csv(video_csv).columns
    for label in FER2013_CLASSES:  # no per-face label anywhere in the exports
        assert f":{label}" not in Path(csv_path).read_text() + Path(json_path).read_text() + Path(video_csv).read_text()
