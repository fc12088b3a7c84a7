"""Benchmarks: ``python -m bench [all|pipeline|gallery|sweep|crops|classifier|shares|video|coldstart|app] [--smoke] [--out FILE]``.

Every figure is the median and p90 of repeated runs after warm-up, printed with the torch thread
count and the machine's core count, and written as JSON. ``--smoke`` runs each benchmark once on
small frames so the test suite can check that none of them has rotted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch

from bench.frames import PADDING, centers_inside, face_free_photos, gallery, padded, place
from bench.shares import bench_shares
from fer import (
    AlignSettings,
    DetectorSettings,
    FaceDetector,
    FaceTracker,
    Pipeline,
    PipelineSettings,
    align_faces,
    analyze_video,
    default_checkpoint,
    load_classifier,
)
from fer.classification import BACKENDS
from fer.tracking import box_iou
from fer.types import Faces

ROOT = Path(__file__).resolve().parents[1]
#: Command-line name -> section title, in the order they run.
BENCHMARKS = {"pipeline": "pipeline latency", "gallery": "gallery accuracy", "sweep": "detector thresholds", "crops": "crop settings",
              "classifier": "classifier throughput", "shares": "class shares",
              "video": "video", "coldstart": "cold start", "app": "app memory"}
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fer2013.npz"
DEFAULT_VOTES = ROOT.parent / "shared" / "data" / "ferplus_votes.npz"


def stats(samples_ms: list[float]) -> dict:
    values = np.asarray(samples_ms, np.float64)
    return {"median_ms": round(float(np.median(values)), 2), "p90_ms": round(float(np.percentile(values, 90)), 2), "runs": len(values)}


def timed(fn, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def private_faces(data_path: Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    if not data_path.exists():
        return None
    from training.data import load_fer2013

    private = load_fer2013(data_path).split("PrivateTest")
    if limit:
        return private.pixels[:limit], private.labels[:limit]
    return private.pixels, private.labels


def fer_galleries(pixels: np.ndarray):
    """PrivateTest faces 30 to a 1280x720 gallery frame (5x6 tiles): yields each frame and its tiles' face boxes."""
    for start in range(0, len(pixels), 30):
        yield gallery([padded(f) for f in pixels[start : start + 30]], 5, 6, 1280, 720, face_fraction=0.95)


def bench_pipeline(pipeline: Pipeline, args) -> dict:
    astronaut = skimage.data.astronaut()
    head = astronaut[30:230, 125:325]  # head and shoulders, as a video-call tile shows a student
    scale = 0.5 if args.smoke else 1.0
    w1, h1 = int(640 * scale), int(480 * scale)
    w2, h2 = int(1280 * scale), int(720 * scale)
    cases = {
        "640x480, 1 face": place(astronaut, w1, h1, int(240 * scale)),
        "1280x720, 5 faces": gallery([head], 1, 5, w2, h2)[0],
        "1280x720 gallery, 30 faces": gallery([head], 5, 6, w2, h2)[0],
    }
    fer = private_faces(args.data, 30)
    if fer is not None:
        cases["1280x720 gallery, 30 FER faces"] = gallery([padded(f) for f in fer[0]], 5, 6, w2, h2, face_fraction=0.95)[0]
    results = {}
    for name, frame in cases.items():
        found = len(pipeline.analyze(frame).faces)
        samples = timed(lambda frame=frame: pipeline.analyze(frame), args.repeats, args.warmup)
        entry = {**stats(samples), "faces": found}
        entry["faces_per_second"] = round(found / (entry["median_ms"] / 1000), 1) if found else 0.0
        results[name] = entry
    # A stream: the same face drifting, detection every k-th frame, tracking in between.
    stream = [place(astronaut, w1, h1, int(240 * scale), x=int((40 + 4 * i) * scale), y=int(100 * scale)) for i in range(args.repeats * 2)]
    for every in (1, 2, 3):
        streaming = Pipeline(pipeline.detector, pipeline.classifier, replace(pipeline.settings, detect_every=every))
        tracker = FaceTracker()
        for i in range(args.warmup):
            streaming.analyze(stream[i], tracker, i * 0.25, i)
        samples = []
        for i, frame in enumerate(stream):
            began = time.perf_counter()
            streaming.analyze(frame, tracker, (i + args.warmup) * 0.25, i + args.warmup)
            samples.append((time.perf_counter() - began) * 1000)
        entry = stats(samples)
        entry["mean_ms"] = round(float(np.mean(samples)), 2)
        results[f"640x480 stream, detect every {every}"] = entry
    return results


def bench_gallery(pipeline: Pipeline, args) -> dict:
    """Gallery frames of PrivateTest faces: fraction detected, pipeline accuracy vs classifier-only."""
    fer = private_faces(args.data, 60 if args.smoke else None)
    if fer is None:
        return {"skipped": f"{args.data} not present"}
    pixels, labels = fer
    classifier_only = pipeline.classifier.predict(list(pixels)).argmax(1)
    detected = correct_on_detected = 0
    for start, (frame, boxes) in zip(range(0, len(pixels), 30), fer_galleries(pixels)):
        truth = labels[start : start + 30]
        boxes = np.asarray(boxes[: len(truth)], np.float32)
        result = pipeline.analyze(frame)
        if len(result.faces):
            predicted = result.faces.probabilities.argmax(1)
            # The face sits in the middle of its padded tile: match detections by centre-in-tile.
            inside_tiles = centers_inside(result.faces.boxes, boxes)
            overlap = box_iou(boxes, result.faces.boxes)
            for tile in range(len(truth)):
                inside = np.flatnonzero(inside_tiles[tile])
                if inside.size:
                    best = inside[np.argmax(overlap[tile, inside])]
                    detected += 1
                    correct_on_detected += int(predicted[best] == truth[tile])
    return {
        "faces": int(len(pixels)),
        "detected_fraction": round(detected / len(pixels), 4),
        "pipeline_accuracy_all_faces": round(correct_on_detected / len(pixels), 4),
        "pipeline_accuracy_detected_faces": round(correct_on_detected / max(detected, 1), 4),
        "classifier_only_accuracy": round(float((classifier_only == labels).mean()), 4),
    }


#: Crop settings compared by ``python -m bench crops`` (name -> AlignSettings keyword arguments).
CROPS = {"margin 0, 96 px (before)": {"margin": 0.0, "crop_size": 96}, "margin 0, 48 px": {"margin": 0.0},
         "margin -0.1, 96 px": {"margin": -0.1, "crop_size": 96}, "margin -0.1, 48 px (default)": {},
         "margin -0.2, 48 px": {"margin": -0.2}, "margin +0.1, 48 px": {"margin": 0.1}, "default, never rotated": {"rotate": False}}


def bench_crops(pipeline: Pipeline, args) -> dict:
    """Accuracy on the faces detected in PrivateTest galleries, per crop setting, beside the dataset's own crops.

    "tile face box" crops each face with the box it was pasted at (the framing the dataset gives),
    so the gap between that row and classifier-only is what the resampling costs, and the gap
    between it and a crop setting is what the detector's framing costs.
    """
    fer = private_faces(args.data, 60 if args.smoke else None)
    if fer is None:
        return {"skipped": f"{args.data} not present"}
    pixels, labels = fer
    found, indices, tiles = [], [], []
    for start, (frame, boxes) in zip(range(0, len(pixels), 30), fer_galleries(pixels)):
        faces = pipeline.detector.detect(frame, pipeline.settings.detector)
        inside_tiles = centers_inside(faces.boxes, boxes)
        for tile, (x1, y1, x2, y2) in enumerate(boxes[: len(pixels) - start]):
            inside = np.flatnonzero(inside_tiles[tile])
            if inside.size:
                pick = inside[:1]
                found.append((frame, Faces(faces.boxes[pick], faces.scores[pick], faces.landmarks[pick])))
                indices.append(start + tile)
                inset = (x2 - x1) * (1 - 1 / (1 + 2 * PADDING)) / 2  # the face inside its gray border
                tiles.append(np.array([[x1 + inset, y1 + inset, x2 - inset, y2 - inset]], np.float32))
    truth = labels[indices]
    def accuracy(crops: list[np.ndarray]) -> float:
        return round(float((pipeline.classifier.predict(crops).argmax(1) == truth).mean()), 4)
    results = {"classifier only, same faces": accuracy(list(pixels[indices]))}
    results["tile face box"] = accuracy([align_faces(frame, replace(faces, boxes=tile), AlignSettings(margin=0.0, rotate=False))[0]
                                         for (frame, faces), tile in zip(found, tiles)])
    for name, kwargs in CROPS.items():
        settings = AlignSettings(**kwargs)
        results[name] = accuracy([align_faces(frame, faces, settings)[0] for frame, faces in found])
    return {"faces": len(indices), **results}


#: Detector settings compared by ``python -m bench sweep``: (P-, R-, O-Net thresholds), min_score.
SWEEP = (((0.6, 0.7, 0.7), 0.9), ((0.5, 0.5, 0.5), 0.8), ((0.5, 0.3, 0.5), 0.7), ((0.5, 0.3, 0.5), 0.6),
         ((0.45, 0.3, 0.5), 0.6), ((0.5, 0.3, 0.5), 0.5), ((0.5, 0.25, 0.5), 0.6), ((0.4, 0.2, 0.4), 0.7),
         ((0.3, 0.3, 0.3), 0.8))


def sweep_setting(text: str) -> tuple[tuple[float, float, float], float]:
    """``"0.5,0.3,0.5/0.7"`` -> ``((0.5, 0.3, 0.5), 0.7)``."""
    try:
        stages, min_score = text.split("/")
        thresholds = tuple(float(v) for v in stages.split(","))
        if len(thresholds) != 3:
            raise ValueError
        return thresholds, float(min_score)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected P,R,O/MIN such as 0.5,0.3,0.5/0.7, got {text!r}") from None


def bench_sweep(detector: FaceDetector, args) -> dict:
    """Recall on FER gallery frames, false faces on face-free photos and detection time, per setting."""
    fer = private_faces(args.data, 60 if args.smoke else None)
    if fer is None:
        return {"skipped": f"{args.data} not present"}
    frames = list(fer_galleries(fer[0]))
    photos = face_free_photos()
    astronaut = skimage.data.astronaut()
    head = astronaut[30:230, 125:325]
    # Galleries of one known face: every box beyond one per tile is a false face (the suit, the flag).
    known = [gallery([astronaut], r, c, 1280, 720) for r, c in ((2, 2), (2, 3), (3, 4))] + [gallery([head], 5, 6, 1280, 720)]
    base = DetectorSettings(detect_size=args.detect_size, min_face_size=args.min_face_size)
    results = {}
    candidates = args.sweep or (SWEEP[:2] if args.smoke else SWEEP)
    for thresholds, min_score in candidates:
        settings = replace(base, thresholds=thresholds, min_score=min_score)
        found = stray = 0
        samples = []
        for frame, boxes in frames:
            began = time.perf_counter()
            faces = detector.detect(frame, settings)
            samples.append((time.perf_counter() - began) * 1000)
            inside = centers_inside(faces.boxes, boxes)
            found += int(inside.any(axis=1).sum())
            stray += int((~inside.any(axis=0)).sum())
        false = {name: detector.detect(photo, settings).scores for name, photo in photos.items()}
        extra = sum(max(0, len(detector.detect(frame, settings)) - len(boxes)) for frame, boxes in known)
        false_scores = np.concatenate(list(false.values()))
        default = (thresholds, min_score) == (DetectorSettings.thresholds, DetectorSettings.min_score)
        results[f"{thresholds} / {min_score}" + (" (default)" if default else "")] = {
            "recall": round(found / (30 * len(frames)), 4),
            "stray_boxes_in_galleries": stray,
            "extra_faces_in_astronaut_galleries": extra,
            "false_faces": len(false_scores),
            "photos_with_false_faces": sum(len(s) > 0 for s in false.values()),
            "top_false_score": round(float(false_scores.max()), 3) if len(false_scores) else 0.0,
            "detect_median_ms": stats(samples)["median_ms"],
        }
    return results


def bench_classifier(pipeline: Pipeline, args) -> dict:
    astronaut = skimage.data.astronaut()
    crop = astronaut[50:190, 160:290]
    results = {}
    for batch in (1, 8, 32):
        crops = [crop] * batch
        samples = timed(lambda crops=crops: pipeline.classifier.predict(crops), args.repeats, args.warmup)
        entry = stats(samples)
        entry["faces_per_second"] = round(batch / (entry["median_ms"] / 1000), 1)
        results[f"batch {batch}"] = entry
    # Batch independence: each face alone vs the same faces in one batch (must be ~0).
    faces = [cv2.resize(astronaut[y : y + side, x : x + side], (48, 48), interpolation=cv2.INTER_AREA)
             for side in (90, 120, 150, 180) for x in range(140, 220, 20) for y in range(20, 100, 20)]
    together = pipeline.classifier.predict(faces)
    alone = np.concatenate([pipeline.classifier.predict([face]) for face in faces])
    results[f"alone vs batch of {len(faces)}"] = {"max_probability_change": float(np.abs(together - alone).max()),
                                                  "labels_changed": int((together.argmax(1) != alone.argmax(1)).sum())}
    return results


def bench_video(pipeline: Pipeline, args) -> dict:
    astronaut = skimage.data.astronaut()
    frames = 20 if args.smoke else 250
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lecture.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 480))
        for i in range(frames):
            writer.write(cv2.cvtColor(place(astronaut, 640, 480, 240, x=40 + i % 200, y=100), cv2.COLOR_RGB2BGR))
        writer.release()
        results = {}
        for every in (1, 2):
            streaming = Pipeline(pipeline.detector, pipeline.classifier, replace(pipeline.settings, detect_every=every))
            began = time.perf_counter()
            report = analyze_video(streaming, path, sample_fps=None, every=1)
            seconds = time.perf_counter() - began
            results[f"every frame, detect every {every}"] = {"frames": report.analyzed_frames, "seconds": round(seconds, 2),
                                                             "fps": round(report.analyzed_frames / seconds, 1), "realtime_fps": 25}
    return results


def bench_coldstart(args) -> dict:
    """Process start -> models loaded -> first frame answered, in a fresh interpreter; its peak RSS."""
    code = (
        "import time; t0 = time.perf_counter()\n"
        "import resource, sys, json, skimage.data\n"
        "from fer import FaceDetector, Pipeline, load_classifier, default_checkpoint\n"
        "t1 = time.perf_counter()\n"
        "pipeline = Pipeline(FaceDetector(), load_classifier(sys.argv[1], backend=sys.argv[2]))\n"
        "t2 = time.perf_counter()\n"
        "pipeline.analyze(skimage.data.astronaut())\n"
        "t3 = time.perf_counter()\n"
        "print(json.dumps({'import_s': t1 - t0, 'load_s': t2 - t1, 'first_frame_s': t3 - t2, 'peak_rss_mb': int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))) / 1024}))\n"
    )
    runs = []
    for _ in range(1 if args.smoke else 3):
        began = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code, str(args.checkpoint), args.backend], capture_output=True, text=True, cwd=ROOT, check=True)
        total = time.perf_counter() - began
        entry = json.loads(out.stdout.strip().splitlines()[-1])
        entry["process_to_first_frame_s"] = total
        runs.append(entry)
    return {key: round(float(np.median([r[key] for r in runs])), 2) for key in runs[0]}


def bench_app_rss(args) -> dict:
    """Peak RSS of a real ``python app.py`` after answering frames through gradio_client."""
    import psutil
    from gradio_client import Client, handle_file

    from bench.server import AppServer

    with tempfile.TemporaryDirectory() as folder:
        server = AppServer(["--checkpoint", str(args.checkpoint), "--backend", args.backend], Path(folder) / "app.log")
        try:
            client = Client(server.url, verbose=False)
            frame_path = Path(folder) / "frame.jpg"
            cv2.imwrite(str(frame_path), cv2.cvtColor(gallery([skimage.data.astronaut()], 5, 6, 1280, 720)[0], cv2.COLOR_RGB2BGR))
            for _ in range(3 if args.smoke else 30):
                client.predict(handle_file(frame_path), api_name="/analyze_frame")
            process = psutil.Process(server.process.pid)
            status = Path(f"/proc/{server.process.pid}/status").read_text()
            peak = next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM")), process.memory_info().rss / 2**20)
            return {"rss_mb": round(process.memory_info().rss / 2**20, 1), "peak_rss_mb": round(peak, 1)}
        finally:
            server.stop()


def print_table(results: dict) -> None:
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads")
    settings = results["settings"]
    print(f"classifier: {settings['backend']}, detect_size {settings['detect_size']}, min_face_size {settings['min_face_size']}, "
          f"{settings['repeats']} runs after warm-up")
    for section, entries in results["benchmarks"].items():
        print(f"\n## {section}")
        if not isinstance(entries, dict) or not entries:
            continue
        if all(isinstance(v, dict) for v in entries.values()):
            keys = list(dict.fromkeys(k for v in entries.values() for k in v))
            print("| case | " + " | ".join(keys) + " |")
            print("|---" * (len(keys) + 1) + "|")
            for name, entry in entries.items():
                print(f"| {name} | " + " | ".join(str(entry.get(k, "")) for k in keys) + " |")
        else:
            print("| measure | value |\n|---|---|")
            for key, value in entries.items():
                print(f"| {key} | {value} |")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("which", nargs="*", help="all (default), " + ", ".join(BENCHMARKS))
    parser.add_argument("--smoke", action="store_true", help="one repetition on small frames (for the test suite)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--checkpoint", type=Path, default=default_checkpoint())
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--votes", type=Path, default=DEFAULT_VOTES, help="FER+ votes (the shares benchmark's truth)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto", help="classifier runtime (see fer.load_classifier)")
    parser.add_argument("--detect-size", type=int, default=DetectorSettings.detect_size)
    parser.add_argument("--min-face-size", type=int, default=DetectorSettings.min_face_size)
    parser.add_argument("--sweep", type=sweep_setting, action="append", metavar="P,R,O/MIN",
                        help="detector setting for the sweep benchmark, e.g. 0.5,0.3,0.5/0.7 (repeatable; default: SWEEP)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default: bench/results.json; smoke: none)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.repeats, args.warmup = 1, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    known = set(BENCHMARKS)
    which = known if not args.which or "all" in args.which else set(args.which)
    if which - known:
        parser.error(f"unknown benchmark(s) {sorted(which - known)}; choose from {sorted(known)} or all")
    settings = PipelineSettings(detector=DetectorSettings(detect_size=args.detect_size, min_face_size=args.min_face_size), align=AlignSettings())
    pipeline = Pipeline(FaceDetector(settings.detector), load_classifier(args.checkpoint, backend=args.backend), settings)
    results = {"machine": {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                           "python": platform.python_version()},
               "settings": {"backend": type(pipeline.classifier).__name__, "detect_size": args.detect_size, "min_face_size": args.min_face_size, "repeats": args.repeats,
                            "smoke": args.smoke, "checkpoint": str(args.checkpoint)},
               "benchmarks": {}}
    runners = {"pipeline": lambda: bench_pipeline(pipeline, args), "gallery": lambda: bench_gallery(pipeline, args),
               "sweep": lambda: bench_sweep(pipeline.detector, args),
               "crops": lambda: bench_crops(pipeline, args),
               "shares": lambda: bench_shares(pipeline, args.data, args.votes, trials=2 if args.smoke else 30),
               "classifier": lambda: bench_classifier(pipeline, args), "video": lambda: bench_video(pipeline, args),
               "coldstart": lambda: bench_coldstart(args), "app": lambda: bench_app_rss(args)}
    for key, title in BENCHMARKS.items():
        if key in which:
            results["benchmarks"][title] = runners[key]()
    results["peak_rss_mb_benchmark_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print_table(results)
    out = args.out or (None if args.smoke else ROOT / "bench" / "results.json")
    if out:
        Path(out).write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {out}")
    return results


if __name__ == "__main__":
    main()
