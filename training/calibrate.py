"""Fit a checkpoint's calibration on PublicTest with the FER+ votes, and write it into its config.

Three things are fitted, in this order, on PublicTest only (PrivateTest stays untouched for
``training.evaluate``):

1. **A per-class logit bias** (logit adjustment). Coordinate ascent over the 7 offsets maximises
   accuracy against the FER+ majority while every class keeps at least ``--recall-floor`` recall
   (``--rare-floor`` for classes with fewer than 2% of the faces, i.e. Disgust), Neutral at least
   ``--neutral-floor``, and no class is predicted more than ``--max-share-ratio`` times as often as
   it truly occurs. A model that never says Fear is as untruthful as one that always does.
2. **A temperature**, with the bias fixed. It changes how sure the probabilities are, never the top
   label. By default it minimises the negative log-likelihood of the FER+ *majority* label, so that
   a face shown at 80% matches the annotators' majority about 80% of the time; ``--temperature-target
   votes`` fits the vote distributions instead (then 80% means 80% of annotators would agree).
3. **The uncertainty threshold**: the calibrated confidence under which a face's label is right
   less often than not (a logistic fit of correctness on confidence, solved for 50%). The views
   show such faces as uncertain.

Example:
    python -m training.calibrate runs/ferplus_w10/best --data ../shared/data/fer2013.npz \
        --votes ../shared/data/ferplus_votes.npz
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from fer.calibration import Calibration
from fer.checkpoint import CONFIG_NAME, ModelConfig
from fer.classification import BACKENDS, load_classifier
from training.data import load_fer2013

__all__ = ["CalibrationTargets", "fit_class_bias", "fit_temperature", "uncertainty_threshold", "main"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CalibrationTargets:
    """What the class bias must keep true on the fitting split.

    Attributes:
        recall_floor: least recall of every class against the FER+ majority.
        rare_floor: least recall of a class with under ``rare_share`` of the faces.
        rare_share: share below which a class counts as rare (Disgust: 1% of PublicTest).
        neutral_floor: least recall of Neutral, the commonest state of a class.
        max_share_ratio: most a class may be predicted, as a multiple of its true share.
        penalty: weight of a missed floor against accuracy (a point of recall short costs
            ``penalty`` points of accuracy).
    """

    recall_floor: float = 0.55
    rare_floor: float = 0.45
    rare_share: float = 0.02
    neutral_floor: float = 0.87
    max_share_ratio: float = 1.4
    penalty: float = 2.0


def _objective(logits: np.ndarray, labels: np.ndarray, bias: np.ndarray, targets: CalibrationTargets,
               true_share: np.ndarray, floors: np.ndarray) -> float:
    predicted = (logits + bias).argmax(1)
    k = logits.shape[1]
    confusion_diag = np.bincount(labels[predicted == labels], minlength=k)
    support = np.bincount(labels, minlength=k)
    recall = confusion_diag / np.maximum(support, 1)
    share = np.bincount(predicted, minlength=k) / len(predicted)
    accuracy = confusion_diag.sum() / len(labels)
    short = np.maximum(0, floors - recall).sum()
    over = np.maximum(0, share - targets.max_share_ratio * true_share).sum()
    return accuracy - targets.penalty * (short + over)


def fit_class_bias(logits: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...],
                   targets: CalibrationTargets = CalibrationTargets(), sweeps: int = 4) -> np.ndarray:
    """Per-class logit offsets ``(C,)`` by coordinate ascent on a grid of -3..3 (step 0.05).

    Args:
        logits: ``(N, C)`` raw logits of the fitting split.
        labels: ``(N,)`` true class per row (FER+ majority).
    """
    k = logits.shape[1]
    true_share = np.bincount(labels, minlength=k) / len(labels)
    floors = np.where(true_share < targets.rare_share, targets.rare_floor, targets.recall_floor)
    if "Neutral" in class_names:
        floors[class_names.index("Neutral")] = max(floors[class_names.index("Neutral")], targets.neutral_floor)
    bias = np.zeros(k)
    grid = np.arange(-3.0, 3.0001, 0.05)
    best = _objective(logits, labels, bias, targets, true_share, floors)
    for _ in range(sweeps):
        improved = False
        for c in range(k):
            for value in grid:
                trial = bias.copy()
                trial[c] = value
                score = _objective(logits, labels, trial, targets, true_share, floors)
                if score > best + 1e-9:
                    best, bias, improved = score, trial, True
        if not improved:
            break
    return bias - bias.mean()  # only differences matter; centred for readability


def fit_temperature(logits: np.ndarray, soft_targets: np.ndarray) -> float:
    """The temperature minimising the cross-entropy against soft targets (golden-section search)."""
    def loss(t: float) -> float:
        z = logits / t
        z = z - z.max(1, keepdims=True)
        log_probs = z - np.log(np.exp(z).sum(1, keepdims=True))
        return float(-(soft_targets * log_probs).sum(1).mean())

    low, high = np.log(0.25), np.log(8.0)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if loss(np.exp(a)) < loss(np.exp(b)):
            high = b
        else:
            low = a
    return float(np.exp((low + high) / 2))


def uncertainty_threshold(confidence: np.ndarray, correct: np.ndarray) -> float:
    """The confidence at which a label is as likely wrong as right.

    A logistic regression of correctness on confidence (Newton's method), solved for 50%; more
    robust than the first crossing of a noisy running mean.
    """
    x = np.stack([np.ones(len(confidence)), np.asarray(confidence, np.float64)], 1)
    y = np.asarray(correct, np.float64)
    weights = np.zeros(2)
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ weights))
        gradient = x.T @ (y - p)
        hessian = (x * (p * (1 - p))[:, None]).T @ x + 1e-9 * np.eye(2)
        weights += np.linalg.solve(hessian, gradient)
    if weights[1] <= 0:
        return 0.0
    return float(round(np.clip(-weights[0] / weights[1], 0.0, 0.95), 2))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Fit a checkpoint's class bias, temperature and uncertainty threshold on PublicTest.")
    parser.add_argument("checkpoint", help="checkpoint folder (config.json + model.safetensors); its config.json is updated")
    parser.add_argument("--data", default="../shared/data/fer2013.npz", help="fer2013.npz or fer2013.csv")
    parser.add_argument("--votes", default="../shared/data/ferplus_votes.npz", help="ferplus_votes.npz, same row order")
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help="classifier runtime whose logits are fitted")
    parser.add_argument("--no-bias", action="store_true", help="fit the temperature only")
    parser.add_argument("--temperature-target", choices=("majority", "votes"), default="majority",
                        help="fit the temperature to the FER+ majority label (default) or to the vote distributions")
    for field in dataclasses.fields(CalibrationTargets):
        parser.add_argument("--" + field.name.replace("_", "-"), type=float, default=field.default)
    parser.add_argument("--dry-run", action="store_true", help="print the fit, leave config.json alone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    targets = CalibrationTargets(**{f.name: getattr(args, f.name) for f in dataclasses.fields(CalibrationTargets)})

    folder = Path(args.checkpoint)
    classifier = load_classifier(folder, backend=args.backend)
    public = load_fer2013(args.data, args.votes).split("PublicTest")
    logits = np.concatenate([classifier.logits(public.pixels[i : i + 256]) for i in range(0, len(public), 256)]).astype(np.float64)
    known = public.ferplus_majority >= 0
    names = classifier.label_names
    bias = np.zeros(len(names)) if args.no_bias else fit_class_bias(logits[known], public.ferplus_majority[known], names, targets)
    if args.temperature_target == "votes":
        rows = public.soft_labels.sum(1) > 0
        targets_for_t = public.soft_labels[rows]
    else:
        rows = known
        targets_for_t = np.eye(len(names))[public.ferplus_majority[known]]
    temperature = fit_temperature(logits[rows] + bias, targets_for_t)
    prior = np.bincount(public.ferplus_majority[known], minlength=len(names)) / known.sum()
    calibration = Calibration(temperature, tuple(bias.tolist()), 0.0,
                              f"PublicTest, FER+ {args.temperature_target} ({args.backend} logits)", tuple(prior.tolist()))
    probabilities = calibration.probabilities(logits)
    correct = probabilities.argmax(1)[known] == public.ferplus_majority[known]
    threshold = uncertainty_threshold(probabilities.max(1)[known], correct)
    calibration = dataclasses.replace(calibration, uncertain_below=threshold)
    accuracy_before = float((logits.argmax(1)[known] == public.ferplus_majority[known]).mean())
    from training.evaluate import expected_calibration_error

    report = {"calibration": calibration.to_json(), "public_ferplus_accuracy_raw": round(accuracy_before, 4),
              "public_ferplus_ece": round(expected_calibration_error(probabilities[known], public.ferplus_majority[known]), 4),
              "public_ferplus_accuracy_calibrated": round(float(correct.mean()), 4),
              "uncertain_share": round(float((probabilities.max(1) < threshold).mean()), 4)}
    print(json.dumps(report))
    if not args.dry_run:
        config_path = folder / CONFIG_NAME
        config = ModelConfig.from_json(json.loads(config_path.read_text()))
        config = dataclasses.replace(config, extra={**config.extra, "calibration": calibration.to_json()})
        config_path.write_text(json.dumps(config.to_json(), indent=2) + "\n")
        print(f"wrote the calibration into {config_path}")
    return report


if __name__ == "__main__":
    main()
