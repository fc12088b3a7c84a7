"""Command line: ``python -m fer image PATH... [--out DIR] [--json]``, ``python -m fer video PATH --csv OUT``
and ``python -m fer export-onnx [FOLDER] [--int8]``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fer import FaceDetector, InputError, Pipeline, PipelineSettings, analyze_video, annotate, default_checkpoint, load_classifier, load_image
from fer.classification import BACKENDS
from fer.detection import DetectorSettings

__all__ = ["main"]


def _build_pipeline(args: argparse.Namespace) -> Pipeline:
    settings = PipelineSettings(detector=DetectorSettings(detect_size=args.detect_size, min_face_size=args.min_face_size))
    return Pipeline(FaceDetector(settings.detector, device=args.device), load_classifier(args.checkpoint, device=args.device, backend=args.backend), settings)


def _image_command(args: argparse.Namespace) -> int:
    pipeline = _build_pipeline(args)
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    failures = 0
    results = {}
    for path in tqdm(args.paths, desc="images", disable=len(args.paths) < 2 or args.json):
        try:
            image = load_image(path)
        except InputError as error:
            print(f"{path}: {error}", file=sys.stderr)
            failures += 1
            continue
        result = pipeline.analyze(image)
        results[str(path)] = result.to_json()
        if out:
            target = out / f"{Path(path).stem}_annotated.png"
            cv2.imwrite(str(target), cv2.cvtColor(annotate(image, result), cv2.COLOR_RGB2BGR))
        if not args.json:
            labels, confidences = result.faces.top(result.label_names)
            faces = ", ".join(f"{label} {confidence:.0%}" for label, confidence in zip(labels, confidences)) or "no face"
            print(f"{path}: {len(result.faces)} face(s): {faces}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failures else 0


def _video_command(args: argparse.Namespace) -> int:
    pipeline = _build_pipeline(args)
    bar = tqdm(total=100, desc="video", unit="%")

    def progress(fraction: float, message: str) -> None:
        bar.n = round(fraction * 100)
        bar.set_postfix_str(message)
        bar.refresh()

    try:
        report = analyze_video(pipeline, args.path, sample_fps=args.fps, every=args.every,
                               annotated_path=args.annotated, progress=progress)
    except InputError as error:
        bar.close()
        print(f"{args.path}: {error}", file=sys.stderr)
        return 1
    bar.close()
    report.session.export_csv(args.csv)
    if args.json:
        report.session.export_json(args.json)
    summary = report.session.summary()
    top = max(summary["distribution"], key=summary["distribution"].get)
    print(f"{args.path}: {report.analyzed_frames} frames analysed, {summary['mean_faces']:.1f} faces/frame, "
          f"most common: {top} ({summary['distribution'][top]:.0%}) -> {args.csv}")
    return 0


def _calibration_faces(path: str, count: int = 512, seed: int = 0):
    """``count`` Training faces of a FER-2013 ``.npz`` (arrays ``pixels`` and ``usage``), a fixed random pick."""
    with np.load(path, allow_pickle=False) as archive:
        pixels, usage = archive["pixels"], archive["usage"]
    rows = np.flatnonzero(usage == 0)
    return pixels[np.sort(np.random.default_rng(seed).choice(rows, min(count, len(rows)), replace=False))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer", description="Facial-expression recognition for online classes.")
    parser.add_argument("--checkpoint", default=str(default_checkpoint()), help="checkpoint folder or model id")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="classifier runtime, as the app's (default auto: the int8 export on the CPU when current)")
    parser.add_argument("--detect-size", type=int, default=DetectorSettings.detect_size)
    parser.add_argument("--min-face-size", type=int, default=DetectorSettings.min_face_size)
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)
    image = commands.add_parser("image", help="analyse photos")
    image.add_argument("paths", nargs="+")
    image.add_argument("--out", help="folder for annotated copies")
    image.add_argument("--json", action="store_true", help="print JSON instead of a summary line per image")
    video = commands.add_parser("video", help="analyse a recorded video")
    video.add_argument("path")
    video.add_argument("--csv", required=True, help="where to write the per-frame session CSV")
    video.add_argument("--json", help="also write the session as JSON")
    video.add_argument("--annotated", help="also write an annotated WebM video")
    group = video.add_mutually_exclusive_group()
    group.add_argument("--every", type=int, default=1, help="analyse every N-th frame")
    group.add_argument("--fps", type=float, default=None, help="analyse this many frames per second of video")
    export = commands.add_parser("export-onnx", help="export a checkpoint folder's classifier to ONNX")
    export.add_argument("folder", nargs="?", default=None, help="checkpoint folder (default: --checkpoint)")
    export.add_argument("--int8", action="store_true", help="also write a static int8 copy (needs --calibration-data)")
    export.add_argument("--calibration-data", help="fer2013.npz: 512 of its Training faces fix the int8 activation ranges")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if args.command == "export-onnx":
        from fer.onnx_backend import export_onnx

        faces = _calibration_faces(args.calibration_data) if args.int8 and args.calibration_data else None
        for path in export_onnx(args.folder or args.checkpoint, int8=args.int8, calibration_faces=faces):
            print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return 0
    return _image_command(args) if args.command == "image" else _video_command(args)
