"""Every benchmark runs once in smoke mode, so none of them can rot."""

from bench.__main__ import main


def test_every_benchmark_runs_in_smoke_mode(tiny_checkpoint, capsys):
    results = main(["all", "--smoke", "--checkpoint", str(tiny_checkpoint)])
    benchmarks = results["benchmarks"]
    assert set(benchmarks) == {"pipeline latency", "gallery accuracy", "detector thresholds", "crop settings", "classifier throughput",
                               "class shares", "video", "cold start", "app memory"}
    assert benchmarks["pipeline latency"]["640x480, 1 face"]["faces"] == 1
    assert benchmarks["pipeline latency"]["640x480, 1 face"]["median_ms"] > 0
    sweep = benchmarks["detector thresholds"]
    if "skipped" not in sweep:  # needs ../shared/data/fer2013.npz
        assert len(sweep) == 2 and all(0 <= entry["recall"] <= 1 and entry["false_faces"] >= 0 for entry in sweep.values())
    crops = benchmarks["crop settings"]
    if "skipped" not in crops:
        assert crops["faces"] > 0 and 0 <= crops["margin -0.1, 48 px (default)"] <= 1
    assert benchmarks["classifier throughput"]["batch 8"]["faces_per_second"] > 0
    assert benchmarks["classifier throughput"]["alone vs batch of 64"]["max_probability_change"] < 1e-4  # torch: batch-independent
    shares = benchmarks["class shares"]
    if "skipped" not in shares:  # needs the FER-2013 and FER+ files
        assert set(shares) == {"calm", "mixed", "unhappy"}
        assert all(0 <= entry["mae_top1"] <= 1 and 0 <= entry["mae_mean_probability"] <= 1 for entry in shares.values())
    assert all(entry["frames"] == 20 for entry in benchmarks["video"].values())
    assert benchmarks["cold start"]["process_to_first_frame_s"] > 0
    assert benchmarks["app memory"]["peak_rss_mb"] > 0
    printed = capsys.readouterr().out
    assert "torch threads" in printed and "| 640x480, 1 face |" in printed
