"""Classroom expression monitor: the Gradio app (Hugging Face Spaces entry point).

This file only wires the UI: every computation lives in ``fer/``. Models load once in
:func:`main` (never at import) and are shared read-only; everything that belongs to one user
(the session log and the face tracker) lives in ``gr.State``.

Run locally:  python app.py [--host 127.0.0.1] [--port 7860] [--share] [--checkpoint FOLDER]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import gradio as gr
import numpy as np
import pandas as pd
import torch
from starlette.middleware import Middleware

from fer import (
    EXPRESSION_COLORS,
    FaceDetector,
    FrameResult,
    InputError,
    Pipeline,
    PipelineSettings,
    as_rgb,
    default_checkpoint,
    load_classifier,
    load_image,
    load_image_with_notes,
)
from fer.classification import BACKENDS
from fer.detection import DetectorSettings
from fer.http_limits import BodyLimit
from fer.policy import OutputPolicy
from fer.stream import ClassStream
from fer.video import DEFAULT_SAMPLE_FPS, analyze_video_steps, check_sample_fps

logger = logging.getLogger("app")

RESPONSIBLE_USE = """
**Responsible use.** Expressions are not feelings: a "Sad" face may be a tired or concentrating one.
The model is weakest on *Sad* and *Fear*, and *Disgust* rests on few examples (see the model card); a label with a
question mark is a guess. Uploads and the images shown here pass through Gradio's temporary folder and are deleted
within 90 minutes; the analysis itself keeps no frame. Emotion recognition of students is
**prohibited in education institutions in the EU** (AI Act, Art. 5(1)(f)); use the class-only view
(aggregates, no per-face labels) and tell your class before you run it.
"""

# Streaming choices, deliberately:
# - STREAM_EVERY 0.25 s: 4 frames/s is plenty for a class's mood (which changes over seconds) and
#   leaves headroom on 2 CPU cores (~60-100 ms per frame) for several concurrent users.
# - STREAM_TIME_LIMIT 3 h: a class session; the log lives in gr.State, so a restarted stream
#   continues the same session.
# - STREAM_CONCURRENCY 4: at most 4 streams are processed at once; more users queue rather than
#   slow everyone down (torch already uses both cores for one frame).
STREAM_EVERY = 0.25
STREAM_TIME_LIMIT = 3 * 60 * 60
STREAM_CONCURRENCY = 4
CHART_REFRESH_SECONDS = 1.0
# Annotated images longer than this are shrunk for display (WebP, which Gradio serves, stops at
# 16,383 px; a scrolling screenshot of a gallery can be 16,400 px tall). The JSON keeps full-size boxes.
MAX_DISPLAY_SIDE = 8192
# A video analysis hands control back to Gradio this often, so a cancelled job stops within it.
VIDEO_PULSE_SECONDS = 0.25
MAX_FILE_SIZE = "200mb"
# Request bodies other than file uploads (JSON event payloads, API calls) are refused above this:
# a 30 MB JSON body cost the server about 1.5 GB of memory to parse.
MAX_BODY_SIZE = "4mb"


def gpu(fn):
    """Wrap GPU-using functions with ``spaces.GPU`` on Hugging Face ZeroGPU; unchanged elsewhere."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return fn
    return spaces.GPU(fn)


def _output_dir(prefix: str) -> Path:
    """A fresh folder inside Gradio's own temporary area (cleaned by ``delete_cache``), never elsewhere."""
    root = Path(gr.utils.get_upload_folder())
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def _payload_path(payload: Any, what: str) -> str:
    """The server-side path of an uploaded file, from a raw (not preprocessed) Gradio payload."""
    if payload is None:
        raise InputError(f"no {what} was given")
    path = payload.get("path") if isinstance(payload, dict) else str(payload)
    if not path:
        raise InputError(f"the {what} upload has no file")
    return path


def _faces_table(result_json: dict) -> pd.DataFrame:
    """One row per face; with no face (or in the class-only view) the same columns and no rows."""
    columns = ["face", "expression", "confidence", "box", *result_json["labels"]]
    rows = [
        {"face": i + 1, "expression": f["label"] + ("?" if f.get("uncertain") else ""), "confidence": f["confidence"],
         "box": ", ".join(f"{v:.0f}" for v in f["box"]), **{k: v for k, v in f["scores"].items()}}
        for i, f in enumerate(result_json["faces"])
    ]
    return pd.DataFrame(rows, columns=columns)


class App:
    """The handlers behind the UI and the API; holds only the shared, read-only pipeline.

    Args:
        pipeline: the shared detector + classifier.
        class_only: force the class-only view for every user and every endpoint (``--class-only``).
    """

    def __init__(self, pipeline: Pipeline, class_only: bool = False) -> None:
        self.pipeline = pipeline
        self.class_only = class_only
        self.colors = {name: "#%02x%02x%02x" % EXPRESSION_COLORS.get(name, (128, 128, 128)) for name in pipeline.label_names}

    def policy(self, class_only: bool = False) -> OutputPolicy:
        """What may leave the server: the user's class-only choice, or the server's when forced."""
        return OutputPolicy(class_only=self.class_only or bool(class_only))

    def new_session(self) -> ClassStream:
        return ClassStream(self.pipeline)

    # -- photo -------------------------------------------------------------------------------
    def _analyze_file(self, payload: Any, class_only: bool = False) -> tuple[np.ndarray, FrameResult, dict]:
        try:
            image, notes = load_image_with_notes(_payload_path(payload, "image"))
            result = self.pipeline.analyze(image)
        except InputError as error:
            raise gr.Error(str(error)) from None
        result_json = self.policy(class_only).frame_json(result)
        if notes:
            result_json["notes"] = notes
        if result_json["num_faces"] == 0:
            result_json["message"] = "No face found. Faces smaller than the minimum face size are ignored."
        return image, result, result_json

    @gpu
    def analyze_image(self, payload: Any) -> dict:
        """API: image in, JSON out (per face: box, landmarks, label, confidence, scores)."""
        return self._analyze_file(payload)[2]

    @gpu
    def photo_view(self, payload: Any, class_only: bool):
        image, result, result_json = self._analyze_file(payload, class_only)
        annotated = _for_display(self.policy(class_only).annotated(image, result))
        table = _faces_table(result_json)  # class-only JSON has no faces: an empty table with its headers
        note = f"{result_json['num_faces']} face(s) in {result_json['timings_ms'].get('total', 0):.0f} ms"
        if "message" in result_json:
            note = result_json["message"]
        if "notes" in result_json:
            note += " (" + "; ".join(result_json["notes"]) + ")"
        return annotated, table, result_json, note

    # -- live --------------------------------------------------------------------------------
    def _frame(self, frame: Any, session: ClassStream) -> tuple[np.ndarray, Any]:
        image = as_rgb(np.asarray(frame))
        return image, session.step(image)

    @gpu
    def live_frame(self, frame: Any, session: ClassStream, class_only: bool):
        """Stream handler: annotated frame, and the charts about once a second."""
        if session is None:
            session = self.new_session()
        if frame is None:  # the browser sent no frame (camera starting or stopped): keep everything
            return gr.skip(), session, gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            image, result = self._frame(frame, session)
        except InputError as error:
            raise gr.Error(str(error)) from None
        annotated = self.policy(class_only).annotated(image, result)
        status = f"{len(result.faces)} face(s), {result.timings['total']:.0f} ms/frame, {session.log.frames} frames logged"
        if not session.due(CHART_REFRESH_SECONDS):
            return annotated, session, gr.skip(), gr.skip(), gr.skip(), status
        timeline, distribution, faces = self.charts(session, class_only)
        return annotated, session, timeline, distribution, faces, status

    @gpu
    def analyze_frame(self, payload: Any, session: ClassStream) -> tuple[dict, ClassStream]:
        """API: one live frame into this session's log (tracked, smoothed); JSON out."""
        if session is None:
            session = self.new_session()
        try:
            _, result = self._frame(load_image(_payload_path(payload, "frame")), session)
        except InputError as error:
            raise gr.Error(str(error)) from None
        return {**self.policy().frame_json(result), "timestamp": round(result.timestamp, 3), "frames_logged": session.log.frames}, session

    # -- dashboard ---------------------------------------------------------------------------
    def charts(self, session: ClassStream, class_only: bool = False):
        return session.log.timeline(), session.log.distribution(), self.policy(class_only).face_table(session.log)

    def dashboard(self, session: ClassStream, class_only: bool):
        session = session or self.new_session()
        timeline, distribution, faces = self.charts(session, class_only)
        return timeline, distribution, faces, session.log.summary()

    def session_summary(self, session: ClassStream) -> dict:
        """API: this session's summary (frames, duration, expression distribution)."""
        return (session or self.new_session()).log.summary()

    def export_session(self, session: ClassStream) -> tuple[str, str]:
        """API: the session log as CSV and JSON files (written only on request)."""
        return self.export_view(session, False)

    def export_view(self, session: ClassStream, class_only: bool) -> tuple[str, str]:
        """Button: the export, honouring the class-only view."""
        session = session or self.new_session()  # nothing recorded yet: an empty, well-formed export
        policy = self.policy(class_only)
        folder = _output_dir("fer_export_")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return (str(policy.export_csv(session.log, folder / f"class_session_{stamp}.csv")),
                str(policy.export_json(session.log, folder / f"class_session_{stamp}.json")))

    def reset_session(self, session: ClassStream) -> tuple[ClassStream, str]:
        session = session or self.new_session()
        session.reset()
        return session, "Session cleared."

    # -- video -------------------------------------------------------------------------------
    def _video(self, payload: Any, sample_fps: float, class_only: bool, annotated: bool, progress: gr.Progress):
        """Analyse a video, yielding ``None`` about every :data:`VIDEO_PULSE_SECONDS` while it works;
        returns ``(report, csv_path, summary)``. Gradio stops iterating a cancelled event (the
        client's ``job.cancel()`` or a closed tab), so the analysis stops with it."""
        try:
            path = _payload_path(payload, "video")
            sample_fps = check_sample_fps(sample_fps)
            out = _output_dir("fer_video_")
            policy = self.policy(class_only)
            # The class-only view shows no box, so it gets no annotated video.
            steps = analyze_video_steps(self.pipeline, path, sample_fps=sample_fps,
                                        annotated_path=out / "annotated.webm" if annotated and not policy.class_only else None)
            last_pulse = time.monotonic()
            while True:
                try:
                    where = next(steps)
                except StopIteration as finished:
                    report = finished.value
                    break
                progress(where.fraction, desc=f"frame {where.frame_index} ({where.time_s:.1f} s)")
                if time.monotonic() - last_pulse >= VIDEO_PULSE_SECONDS:
                    last_pulse = time.monotonic()
                    yield None
        except InputError as error:
            raise gr.Error(str(error)) from None
        csv_path = policy.export_csv(report.session, out / "video_session.csv")
        summary = {**report.session.summary(), "analyzed_frames": report.analyzed_frames, "sample_fps": sample_fps,
                   "undecodable_frames": report.undecodable_frames}
        if report.undecodable_frames:
            gr.Warning(f"{report.undecodable_frames} frame(s) of the video could not be decoded and were skipped.")
        return report, csv_path, summary

    @gpu
    def analyze_video_api(self, payload: Any, sample_fps: float = DEFAULT_SAMPLE_FPS, progress: gr.Progress = gr.Progress()):
        """API: video in; session summary JSON and the per-frame CSV out. Cancelling stops the work."""
        _, csv_path, summary = yield from _unchanged_while(self._video(payload, sample_fps, False, False, progress), 2)
        yield summary, str(csv_path)

    @gpu
    def video_view(self, payload: Any, sample_fps: float, class_only: bool, progress: gr.Progress = gr.Progress()):
        report, csv_path, summary = yield from _unchanged_while(self._video(payload, sample_fps, class_only, True, progress), 6)
        timeline, distribution = report.session.timeline(), report.session.distribution()
        faces = self.policy(class_only).face_table(report.session)
        video = str(report.annotated_path) if report.annotated_path else None
        yield video, timeline, distribution, faces, str(csv_path), summary


def _for_display(image: np.ndarray) -> np.ndarray:
    """The image, shrunk to :data:`MAX_DISPLAY_SIDE` on its long side when it is longer."""
    long_side = max(image.shape[:2])
    if long_side <= MAX_DISPLAY_SIDE:
        return image
    scale = MAX_DISPLAY_SIDE / long_side
    return cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)


def _unchanged_while(work, outputs: int):
    """Run a pulsing generator, yielding "no change" to each of ``outputs`` components at each pulse; returns its result."""
    while True:
        try:
            next(work)
        except StopIteration as finished:
            return finished.value
        yield tuple(gr.skip() for _ in range(outputs))


#: Columns of a session's faces table (``SessionLog.face_table``), shown before any face is seen.
FACE_TABLE_HEADERS = ["face", "first_seen_s", "last_seen_s", "frames", "usual_expression", "share"]


def build_ui(app: App) -> gr.Blocks:
    """The Blocks layout: Live, Photo, Video and Dashboard tabs, plus named API endpoints."""
    labels = list(app.pipeline.label_names)
    plot_kwargs = {"color_map": app.colors, "height": 260}

    def line_plot(label: str, elem_id: str) -> gr.LinePlot:
        return gr.LinePlot(x="time", y="share", color="expression", label=label, x_title="seconds", y_title="share of faces",
                           y_lim=[0, 1], elem_id=elem_id, **plot_kwargs)

    def bar_plot(label: str, elem_id: str) -> gr.BarPlot:
        return gr.BarPlot(x="expression", y="share", color="expression", label=label, y_lim=[0, 1], sort=labels, elem_id=elem_id,
                          **plot_kwargs)

    # Uploads and exports live in Gradio's temporary folder; files older than an hour are removed.
    with gr.Blocks(title="Classroom expression monitor", delete_cache=(1800, 3600)) as demo:
        # One ClassStream per browser tab / gradio_client, made by Gradio when the session first
        # touches it (in the event loop, so concurrent first requests share one stream).
        session = gr.State(lambda: app.new_session())
        gr.Markdown("# Classroom expression monitor\nFinds every face in the class video, reads its expression, "
                    "and charts the class over the session.")
        gr.Markdown(RESPONSIBLE_USE)
        class_only = gr.Checkbox(label="Class-only view (aggregates only: no per-face label, box or number)"
                                 + (" - set for everyone by this server" if app.class_only else ""),
                                 value=app.class_only, interactive=not app.class_only, elem_id="class-only")

        with gr.Tab("Live"):
            with gr.Row():
                webcam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera", elem_id="webcam")
                live_out = gr.Image(label="Annotated", type="numpy", interactive=False, elem_id="live-out")
            live_status = gr.Markdown(elem_id="live-status")
            with gr.Row():
                live_timeline = line_plot("Class expressions over time", "live-timeline")
                live_distribution = bar_plot("Overall distribution", "live-distribution")
            live_faces = gr.Dataframe(label="Faces", interactive=False, elem_id="live-faces", headers=FACE_TABLE_HEADERS)

        with gr.Tab("Photo"):
            with gr.Row():
                photo_in = gr.Image(type="filepath", sources=["upload", "clipboard"], label="Photo or gallery screenshot", elem_id="photo-in")
                photo_out = gr.Image(label="Annotated", interactive=False, elem_id="photo-out")
            photo_button = gr.Button("Analyze photo", variant="primary")
            photo_note = gr.Markdown(elem_id="photo-note")
            photo_table = gr.Dataframe(label="Faces", interactive=False, elem_id="photo-table",
                                       headers=["face", "expression", "confidence", "box", *labels])
            with gr.Accordion("JSON", open=False):
                photo_json = gr.JSON()

        with gr.Tab("Video"):
            with gr.Row():
                video_in = gr.Video(sources=["upload"], label="Recorded lecture", elem_id="video-in")
                video_out = gr.Video(label="Annotated (sampled frames)", interactive=False, elem_id="video-out")
            sample_fps = gr.Slider(0.5, 10, value=DEFAULT_SAMPLE_FPS, step=0.5, label="Frames analysed per second of video")
            video_button = gr.Button("Analyze video", variant="primary")
            with gr.Row():
                video_timeline = line_plot("Class expressions over time", "video-timeline")
                video_distribution = bar_plot("Overall distribution", "video-distribution")
            video_faces = gr.Dataframe(label="Faces", interactive=False, elem_id="video-faces", headers=FACE_TABLE_HEADERS)
            with gr.Row():
                video_csv = gr.File(label="Per-frame CSV", elem_id="video-csv")
                video_summary = gr.JSON(label="Summary", elem_id="video-summary")

        with gr.Tab("Dashboard"):
            refresh = gr.Button("Refresh")
            with gr.Row():
                dash_timeline = line_plot("Class expressions over time (live session)", "dash-timeline")
                dash_distribution = bar_plot("Overall distribution", "dash-distribution")
            dash_faces = gr.Dataframe(label="Faces", interactive=False, elem_id="dash-faces", headers=FACE_TABLE_HEADERS)
            dash_summary = gr.JSON(label="Session summary", elem_id="dash-summary")
            with gr.Row():
                export_button = gr.Button("Export CSV + JSON")
                reset_button = gr.Button("Reset session", variant="stop")
            with gr.Row():
                export_csv = gr.File(label="CSV", elem_id="export-csv")
                export_json = gr.File(label="JSON", elem_id="export-json")
            reset_note = gr.Markdown()

        # Hidden components behind the API-only endpoints.
        with gr.Row(visible=False):
            api_image = gr.Image(type="filepath")
            api_json = gr.JSON()
            api_frame_json = gr.JSON()
            api_summary = gr.JSON()
            api_video = gr.Video()
            api_fps = gr.Number(value=DEFAULT_SAMPLE_FPS)
            api_video_summary = gr.JSON()
            api_video_csv = gr.File()
            api_trigger = gr.Button()

        webcam.stream(
            app.live_frame, [webcam, session, class_only],
            [live_out, session, live_timeline, live_distribution, live_faces, live_status],
            stream_every=STREAM_EVERY, time_limit=STREAM_TIME_LIMIT, concurrency_limit=STREAM_CONCURRENCY,
            api_name="live_stream", api_visibility="undocumented",
        )
        photo_button.click(app.photo_view, [photo_in, class_only], [photo_out, photo_table, photo_json, photo_note],
                           preprocess=False, api_name="photo_view", api_visibility="undocumented", concurrency_limit=4)
        video_button.click(app.video_view, [video_in, sample_fps, class_only],
                           [video_out, video_timeline, video_distribution, video_faces, video_csv, video_summary],
                           api_name="video_view", api_visibility="undocumented", concurrency_limit=1)
        refresh.click(app.dashboard, [session, class_only], [dash_timeline, dash_distribution, dash_faces, dash_summary],
                      api_name="dashboard", api_visibility="undocumented")
        export_button.click(app.export_view, [session, class_only], [export_csv, export_json], api_name="export_view",
                            api_visibility="undocumented")
        api_trigger.click(app.export_session, session, [export_csv, export_json], api_name="export_session")
        reset_button.click(app.reset_session, session, [session, reset_note], api_name="reset_session")

        api_trigger.click(app.analyze_image, api_image, api_json, preprocess=False, api_name="analyze_image", concurrency_limit=4)
        api_trigger.click(app.analyze_frame, [api_image, session], [api_frame_json, session], preprocess=False,
                          api_name="analyze_frame", concurrency_limit=4)
        api_trigger.click(app.session_summary, session, api_summary, api_name="session_summary")
        api_trigger.click(app.analyze_video_api, [api_video, api_fps], [api_video_summary, api_video_csv],
                          api_name="analyze_video", concurrency_limit=1)
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Classroom expression monitor (Gradio app)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", default=os.environ.get("GRADIO_SHARE", "").lower() in ("1", "true"))
    parser.add_argument("--checkpoint", default=os.environ.get("FER_CHECKPOINT", str(default_checkpoint())),
                        help="timm checkpoint folder, transformers model folder or Hub id")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    parser.add_argument("--backend", choices=BACKENDS, default=os.environ.get("FER_BACKEND", "auto"),
                        help="classifier runtime: auto (int8 ONNX on the CPU when exported), torch, onnx, onnx-int8")
    parser.add_argument("--detect-size", type=int, default=DetectorSettings.detect_size)
    parser.add_argument("--min-face-size", type=int, default=DetectorSettings.min_face_size)
    parser.add_argument("--detect-every", type=int, default=1, help="in streams, detect every k-th frame and track in between")
    parser.add_argument("--class-only", action="store_true", default=os.environ.get("FER_CLASS_ONLY", "") in ("1", "true"),
                        help="force the class-only view for every user and endpoint: no per-face label, box or track id "
                             "leaves the server (also FER_CLASS_ONLY=1; default off)")
    parser.add_argument("--max-file-size", default=os.environ.get("FER_MAX_FILE_SIZE", MAX_FILE_SIZE),
                        help=f"largest upload (photo or video), e.g. 200mb (default {MAX_FILE_SIZE})")
    parser.add_argument("--max-body-size", default=os.environ.get("FER_MAX_BODY_SIZE", MAX_BODY_SIZE),
                        help=f"largest request body other than uploads, e.g. 4mb (default {MAX_BODY_SIZE})")
    return parser.parse_args(argv)


def create_app(args: argparse.Namespace) -> tuple[gr.Blocks, App]:
    """Load the models once and build the UI (separate from launch so tests can reuse it)."""
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    settings = PipelineSettings(detector=DetectorSettings(detect_size=args.detect_size, min_face_size=args.min_face_size),
                                detect_every=args.detect_every)
    pipeline = Pipeline(FaceDetector(settings.detector, device=device), load_classifier(args.checkpoint, device=device, backend=args.backend), settings)
    logger.info("models loaded on %s from %s (%s classifier)", device, args.checkpoint, type(pipeline.classifier).__name__)
    app = App(pipeline, class_only=args.class_only)
    return build_ui(app), app


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    demo, _ = create_app(args)
    demo.queue(default_concurrency_limit=2)
    body_limit = Middleware(BodyLimit, max_bytes=gr.utils._parse_file_size(args.max_body_size),
                            upload_max_bytes=gr.utils._parse_file_size(args.max_file_size) + (1 << 20))  # + multipart framing
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size=args.max_file_size,
                show_error=True, app_kwargs={"middleware": [body_limit]})


if __name__ == "__main__":
    main()
