"""Concurrent gradio_client users against a running app on loopback: latency, isolation, memory.

``python -m bench.load [--clients 8] [--frames 50]`` starts a real ``python app.py`` on 127.0.0.1,
sends each client's frames through ``/analyze_frame``, checks every client sees only its own
session, and prints p50 / p95 latency and the server's memory before and after.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import psutil
import skimage.data
from gradio_client import Client, handle_file

from bench.frames import place
from bench.server import AppServer

__all__ = ["run_load", "main"]


def _client_run(url: str, frame_paths: list[Path], deadline: float) -> dict:
    client = Client(url, verbose=False)
    latencies, failures = [], []
    for path in frame_paths:
        if time.monotonic() > deadline:
            failures.append("deadline reached")
            break
        began = time.perf_counter()
        try:
            answer = client.predict(handle_file(path), api_name="/analyze_frame")
            if answer["num_faces"] != 1:
                failures.append(f"expected 1 face, got {answer['num_faces']}")
        except Exception as error:  # noqa: BLE001 - every failure is counted and reported
            failures.append(repr(error))
        latencies.append((time.perf_counter() - began) * 1000)
    summary = client.predict(api_name="/session_summary")
    return {"latencies": latencies, "failures": failures, "frames_seen_by_server": summary["frames"], "frames_sent": len(frame_paths)}


def run_load(url: str, pid: int, clients: int, frames: int, folder: Path, timeout_s: float = 600) -> dict:
    """``clients`` concurrent sessions, ``frames`` frames each, bounded by ``timeout_s`` in total."""
    astronaut = skimage.data.astronaut()
    paths = []
    for i in range(min(frames, 10)):
        path = folder / f"frame{i}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(place(astronaut, 640, 480, 240, x=80 + 6 * i, y=100), cv2.COLOR_RGB2BGR))
        paths.append(path)
    frame_paths = [paths[i % len(paths)] for i in range(frames)]
    process = psutil.Process(pid)
    # Warm up once so the baseline includes loaded models and first-call allocations.
    _client_run(url, frame_paths[:2], time.monotonic() + 120)
    rss_before = process.memory_info().rss / 2**20
    deadline = time.monotonic() + timeout_s
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        runs = list(pool.map(lambda _: _client_run(url, frame_paths, deadline), range(clients)))
    wall = time.perf_counter() - began
    rss_after = process.memory_info().rss / 2**20
    latencies = np.concatenate([r["latencies"] for r in runs])
    return {
        "clients": clients, "frames_per_client": frames, "requests": int(len(latencies)),
        "failed": sum(len(r["failures"]) for r in runs), "failures": [f for r in runs for f in r["failures"]][:5],
        "isolated": all(r["frames_seen_by_server"] == r["frames_sent"] for r in runs),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1), "p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "throughput_fps": round(len(latencies) / wall, 2), "wall_s": round(wall, 1),
        "rss_before_mb": round(rss_before, 1), "rss_after_mb": round(rss_after, 1), "rss_growth_mb": round(rss_after - rss_before, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        server = AppServer([], Path(folder) / "app.log")
        try:
            result = run_load(server.url, server.process.pid, args.clients, args.frames, Path(folder), args.timeout)
        finally:
            server.stop()
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
