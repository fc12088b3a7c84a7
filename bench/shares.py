"""How truthful the class chart is: synthetic classes of real faces with known FER+ labels.

A class is 25 PrivateTest faces in a 1280x720 call gallery (5x5 tiles), drawn to a known mix of
FER+ majority labels: a calm class (80% Neutral, 15% Happy, 5% other), a mixed class and an
unhappy class. Each gallery goes through the whole pipeline (detection, crops, calibrated
classifier). The chart's 7 shares are computed two ways over the faces found, and compared with
the class's true mix by the mean absolute error over the 7 classes:

* ``prior_corrected``: the mix re-estimated from the probabilities, corrected for the class mix the
  classifier was calibrated on (:func:`fer.session.expression_shares`);
* ``top1``: the share of faces whose top label is each class (what a teacher counts);
* ``mean_probability``: the mean of the faces' calibrated probabilities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.frames import centers_inside, gallery, padded
from fer import Pipeline
from fer.session import SHARE_METHODS, expression_shares

__all__ = ["CLASS_MIXES", "bench_shares", "draw_class"]

#: Faces per label in each synthetic class of 25 (FER-2013 class names).
CLASS_MIXES: dict[str, dict[str, int]] = {
    "calm": {"Neutral": 20, "Happy": 4, "other": 1},
    "mixed": {"Neutral": 7, "Happy": 6, "Surprise": 3, "Sad": 3, "Angry": 3, "Fear": 2, "Disgust": 1},
    "unhappy": {"Sad": 8, "Angry": 6, "Fear": 4, "Neutral": 5, "Disgust": 1, "Happy": 1},
}


def draw_class(mix: dict[str, int], majority: np.ndarray, class_names: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """Row indices of one synthetic class: ``mix[name]`` faces whose FER+ majority is ``name``
    (``"other"``: any class not named in the mix), shuffled into tile order."""
    rows = []
    named = {class_names.index(n) for n in mix if n != "other"}
    for name, count in mix.items():
        pool = np.flatnonzero(~np.isin(majority, list(named)) & (majority >= 0)) if name == "other" \
            else np.flatnonzero(majority == class_names.index(name))
        rows.extend(rng.choice(pool, count, replace=False))
    return rng.permutation(np.asarray(rows))


def bench_shares(pipeline: Pipeline, data_path: Path, votes_path: Path, trials: int = 30, seed: int = 0) -> dict:
    """Mean absolute error of the chart's 7 shares per synthetic class and share method."""
    from training.data import load_fer2013  # the training package only when the benchmark runs

    if not data_path.exists() or not votes_path.exists():
        return {"skipped": f"{data_path} or {votes_path} not present"}
    private = load_fer2013(data_path, votes_path).split("PrivateTest")
    names = pipeline.label_names
    rng = np.random.default_rng(seed)
    results = {}
    for mix_name, mix in CLASS_MIXES.items():
        errors = {method: [] for method in SHARE_METHODS}
        found = []
        for _ in range(trials):
            rows = draw_class(mix, private.ferplus_majority, names, rng)
            frame, tiles = gallery([padded(private.pixels[r]) for r in rows], 5, 5, 1280, 720, face_fraction=0.95)
            truth = np.bincount(private.ferplus_majority[rows], minlength=len(names)) / len(rows)
            faces = pipeline.analyze(frame).faces
            # Only boxes on a tile count (a stray box would be a phantom student, measured elsewhere).
            faces = faces.select(centers_inside(faces.boxes, tiles).any(0))
            found.append(len(faces))
            for method in SHARE_METHODS:
                prior = pipeline.classifier.calibration.class_prior
                errors[method].append(np.abs(expression_shares(faces.probabilities, method, prior) - truth).mean())
        results[mix_name] = {"faces_found_mean": round(float(np.mean(found)), 2), "trials": trials,
                             **{f"mae_{method}": round(float(np.mean(errors[method])), 4) for method in SHARE_METHODS},
                             **{f"mae_{method}_worst": round(float(np.max(errors[method])), 4) for method in SHARE_METHODS}}
    return results
