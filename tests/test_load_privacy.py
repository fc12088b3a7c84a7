"""Concurrency, a long soak, and privacy: what a Space used by strangers, many at once, must survive."""

import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from bench.frames import place
from bench.load import run_load
from fer import FER2013_CLASSES, Faces, FaceTracker, FrameResult, SessionLog

MEDIA = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".webm", ".mp4", ".avi", ".mov", ".y4m"}


def test_concurrent_clients_get_their_own_answers(app_server, tmp_path):
    result = run_load(app_server.url, app_server.process.pid, clients=8, frames=4, folder=tmp_path, timeout_s=300)
    print(f"\nload: {result}")
    assert result["failed"] == 0, result["failures"]
    assert result["isolated"]  # every client's session holds exactly the frames it sent
    assert result["requests"] == 32
    assert result["rss_growth_mb"] < 200
    assert app_server.alive()


def test_three_hour_soak_stays_bounded_and_exports_every_frame(tmp_path):
    """3 hours at 2 fps through the tracker and the session log: 21,600 frames of a 25-student gallery."""
    import pickle

    rng = np.random.default_rng(0)
    tracker, log = FaceTracker(), SessionLog(FER2013_CLASSES, max_rows=2000)
    seats = np.array([[c * 200 + 20, r * 140 + 20, c * 200 + 120, r * 140 + 120] for r in range(5) for c in range(5)], np.float32)
    sizes = {}
    for i in range(21_600):
        present = rng.random(25) > 0.1  # students come and go
        boxes = seats[present] + rng.normal(0, 2, (present.sum(), 4)).astype(np.float32)
        probs = rng.dirichlet(np.ones(7), present.sum()).astype(np.float32)
        faces = Faces(boxes, np.ones(len(boxes)), np.zeros((len(boxes), 5, 2)), probs)
        log.add(FrameResult(tracker.update(faces, i * 0.5), FER2013_CLASSES, 1280, 720, i * 0.5))
        if i + 1 in (10_500, 21_000):  # ~1.5 h and ~3 h in, at the same point of the log's 500-frame compaction cycle
            sizes[i + 1] = len(pickle.dumps((log, tracker)))  # everything the session holds
    assert sizes[21_000] < 1.1 * sizes[10_500], sizes  # twice the class, not twice the memory
    assert len(log.rows) <= 2000 and len(tracker.active_ids) <= 25
    table = log.to_frame()
    assert table["frames"].sum() == 21_600
    exported = log.export_csv(tmp_path / "soak.csv")
    import pandas as pd

    back = pd.read_csv(exported, keep_default_na=False)
    assert back["frames"].sum() == 21_600 and back["end"].iloc[-1] == pytest.approx(10_799.5)


def _media_files(roots, since, skip):
    found = []
    for root in roots:
        for path in Path(root).rglob("*"):
            try:
                if path.suffix.lower() in MEDIA and path.is_file() and path.stat().st_mtime >= since and not any(
                    str(path).startswith(str(s)) for s in skip
                ):
                    found.append(path)
            except OSError:
                continue
    return found


def test_a_full_session_leaves_no_image_outside_gradios_temp_area(app_server, astronaut, tmp_path):
    import gradio as gr

    started = time.time() - 1
    client = Client(app_server.url, verbose=False)
    photo = tmp_path / "photo.png"
    Image.fromarray(astronaut).save(photo)
    client.predict(handle_file(photo), api_name="/analyze_image")
    for i in range(3):
        frame = tmp_path / f"frame{i}.png"
        Image.fromarray(place(astronaut, 640, 480, 240, x=100 + 5 * i, y=100)).save(frame)
        client.predict(handle_file(frame), api_name="/analyze_frame")
    import cv2

    video = tmp_path / "lecture.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for i in range(10):
        writer.write(cv2.cvtColor(place(astronaut, 640, 480, 240, x=100 + 5 * i, y=100), cv2.COLOR_RGB2BGR))
    writer.release()
    client.predict(handle_file(video), 5.0, api_name="/analyze_video")
    root = Path(__file__).resolve().parents[1]
    skip = [Path(gr.utils.get_upload_folder()), tmp_path.parent.parent, root / "artifacts"]
    leftovers = _media_files(["/tmp", root, Path.home()], started, skip)
    assert leftovers == []


@pytest.mark.parametrize("path", ["file=/etc/passwd", "gradio_api/file=/etc/passwd", "gradio_api/file=../../../../etc/passwd",
                                  "file=" + str(Path(__file__).resolve())])
def test_the_server_refuses_files_outside_its_temp_area(app_server, path):
    try:
        with urllib.request.urlopen(app_server.url + path, timeout=10) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    assert status in (403, 404) or (b"root:" not in body and b"def test_" not in body)
    assert b"root:x:0:0" not in body


def test_an_upload_over_the_size_limit_is_refused(app_server, tmp_path, astronaut):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"\0" * (21 * 2**20))  # the test server runs with --max-file-size 20mb
    client = Client(app_server.url, verbose=False)
    with pytest.raises(Exception, match="(?i)size|413|large"):
        client.predict(handle_file(big), api_name="/analyze_image")
    small = tmp_path / "ok.png"
    Image.fromarray(astronaut).save(small)
    assert client.predict(handle_file(small), api_name="/analyze_image")["num_faces"] == 1


def _post_raw(url: str, path: str, declared: int | None, body: bytes) -> bytes:
    """POST ``body`` over a raw socket (declared length, or chunked when ``declared`` is None); the reply's first bytes."""
    import socket
    from urllib.parse import urlparse

    where = urlparse(url)
    with socket.create_connection((where.hostname, where.port), timeout=60) as sock:
        length = f"Content-Length: {declared}" if declared is not None else "Transfer-Encoding: chunked"
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {where.hostname}\r\nContent-Type: application/json\r\n{length}\r\n\r\n".encode())
        try:
            if declared is not None:
                sock.sendall(body)
            else:
                for start in range(0, len(body), 1 << 20):
                    chunk = body[start : start + (1 << 20)]
                    sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading once it has refused
        return sock.recv(200)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_oversized_request_bodies_are_refused_and_the_server_keeps_serving(app_server, declared):
    body = b'{"data": ["' + b"x" * (30 << 20) + b'"]}'  # 30 MB of JSON
    head = body[: 1 << 20] if declared else body  # a declared 30 MB is refused before it is read
    reply = _post_raw(app_server.url, "/gradio_api/call/analyze_image", len(body) if declared else None, head)
    assert reply.startswith(b"HTTP/1.1 413"), reply
    assert app_server.alive()


def test_four_largest_images_at_once_stay_inside_the_memory_budget(app_server, tmp_path):
    """The worst case a stranger can send cheaply: small PNG files that decode to the pixel limit."""
    from concurrent.futures import ThreadPoolExecutor

    from fer.images import MAX_PIXELS

    width = 6000
    height = MAX_PIXELS // width
    path = tmp_path / "huge_but_small.png"
    Image.new("RGB", (width, height), (120, 110, 100)).save(path, optimize=True)
    assert path.stat().st_size < 1_000_000
    too_big = tmp_path / "too_big.png"
    Image.new("L", (width, height + 10), 100).save(too_big)

    def send(_):
        return Client(app_server.url, verbose=False).predict(handle_file(path), api_name="/analyze_image")

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, range(4)))
    assert all(answer["num_faces"] == 0 and answer["width"] == width for answer in answers)
    with pytest.raises(Exception, match="the limit is 24 MP"):
        Client(app_server.url, verbose=False).predict(handle_file(too_big), api_name="/analyze_image")
    status = Path(f"/proc/{app_server.process.pid}/status").read_text()
    peak_mb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")) / 1024
    print(f"\nserver peak RSS after 4 x {width}x{height}: {peak_mb:.0f} MB")
    assert peak_mb < 3000  # the budget the README states
    assert app_server.alive()
