"""The real app in a real browser (headless Debian Chromium via Playwright)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from bench.frames import gallery, place
from browser import CHROMIUM, CHROMIUM_ARGS, chromium_available, write_y4m

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="Debian chromium is not installed")]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


def launch(playwright, tmp_path, extra_args=()):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args], headless=True)


def open_app(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(url, wait_until="load")
    page.get_by_role("tab", name="Live").wait_for(timeout=60_000)
    return page


def upload_and_run(browser, url, tab, input_id, path, button):
    """Open the app, go to ``tab``, upload ``path`` into ``#input_id`` and press ``button``."""
    page = open_app(browser, url)
    page.get_by_role("tab", name=tab).click()
    page.locator(f"#{input_id} input[type=file]").set_input_files(str(path))
    page.wait_for_timeout(2000)
    page.get_by_role("button", name=button).click()
    return page


def test_photo_view_shows_annotated_image_and_face_table(playwright_instance, app_server, astronaut, tmp_path):
    frame, _ = gallery([astronaut], 2, 3, 1280, 720)
    photo = tmp_path / "class.png"
    Image.fromarray(frame).save(photo)
    browser = launch(playwright_instance, tmp_path)
    try:
        page = upload_and_run(browser, app_server.url, "Photo", "photo-in", photo, "Analyze photo")
        page.locator("#photo-note").get_by_text("6 face(s)").wait_for(timeout=60_000)
        assert page.locator("#photo-out img").count() == 1
        table = page.locator("#photo-table")
        assert table.get_by_text("Happy").count() >= 1 or table.locator("td").count() >= 6
        ARTIFACTS.mkdir(exist_ok=True)
        page.wait_for_timeout(1500)  # let the output's update fade finish before the picture
        page.screenshot(path=str(ARTIFACTS / "photo_view.png"), full_page=True)
    finally:
        browser.close()


def test_live_webcam_stream_annotates_charts_and_exports(playwright_instance, app_server, astronaut, tmp_path):
    frames = [place(astronaut, 640, 480, 240, x=60 + 10 * i, y=100) for i in range(30)]
    frames += [np.full((480, 640, 3), 70, np.uint8)] * 5  # nobody in front of the camera
    camera = write_y4m(tmp_path / "class.y4m", frames)
    browser = launch(playwright_instance, tmp_path, ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                                                     f"--use-file-for-fake-video-capture={camera}"])
    try:
        page = open_app(browser, app_server.url)
        page.get_by_role("tab", name="Live").click()
        page.locator('[title="grant webcam access"] button').click()
        page.locator("button.capture-button").first.click(timeout=30_000)
        page.locator("#live-status").get_by_text("1 face(s)").wait_for(timeout=90_000)
        page.wait_for_timeout(6000)
        assert page.locator("#live-out img").count() == 1
        # The timeline has drawn lines: vega renders into a canvas or an svg.
        page.locator("#live-timeline canvas, #live-timeline svg").first.wait_for(timeout=30_000)  # vega draws asynchronously
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "live_view.png"), full_page=True)
        page.locator("#webcam button.capture-button, #webcam button[aria-label*=top]").first.click()  # stop streaming
        page.wait_for_timeout(2000)
        status = page.locator("#live-status").inner_text()
        logged = int(status.split("frames logged")[0].split(",")[-1])
        assert logged >= 5

        page.get_by_role("tab", name="Dashboard").click()
        page.get_by_role("button", name="Export CSV + JSON").click()
        link = page.locator("#export-csv a").first
        link.wait_for(timeout=30_000)
        csv = page.request.get(link.get_attribute("href")).text()
        lines = [line for line in csv.strip().splitlines()[1:]]
        frames_logged = sum(int(line.split(",")[2]) for line in lines)
        assert frames_logged >= logged  # every frame the stream sent is in the export
        assert any(line.split(",")[3] == "1.0" for line in lines)
    finally:
        browser.close()


def test_video_view_progress_charts_and_csv(playwright_instance, app_server, astronaut, tmp_path):
    clip = tmp_path / "lecture.webm"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"VP80"), 10, (640, 480))
    for i in range(40):
        writer.write(cv2.cvtColor(place(astronaut, 640, 480, 240, x=60 + 5 * i, y=100), cv2.COLOR_RGB2BGR))
    writer.release()
    browser = launch(playwright_instance, tmp_path)
    try:
        page = upload_and_run(browser, app_server.url, "Video", "video-in", clip, "Analyze video")
        page.locator(".progress-text, .eta-bar, .progress-level").first.wait_for(timeout=30_000)  # the progress bar shows
        link = page.locator("#video-csv a").first
        link.wait_for(timeout=120_000)
        assert page.locator(".progress-level").count() == 0  # and is gone when done
        csv = page.request.get(link.get_attribute("href")).text().strip().splitlines()
        assert csv[0].startswith("start,end,frames,faces") and len(csv) - 1 == 8  # 4 s at 2 frames/s
        page.locator("#video-timeline canvas, #video-timeline svg").first.wait_for(timeout=30_000)  # vega draws asynchronously
        assert page.locator("#video-summary").get_by_text("analyzed_frames").count() >= 1
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "video_view.png"), full_page=True)
    finally:
        browser.close()
