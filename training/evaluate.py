"""Evaluate a classifier on FER-2013's PrivateTest and PublicTest splits, against two truths.

* **FER-2013**: the dataset's own single label per face.
* **FER+**: the majority of 10 annotators (``--votes ferplus_votes.npz``), on the faces whose
  majority is one of the 7 classes (3,519 of PrivateTest's 3,589). It disagrees with FER-2013 on a
  third of the faces and is the better truth.

For each: accuracy, macro-F1, per-class precision / recall, the share of faces predicted as each
class beside its true share, the expected calibration error (ECE, 15 equal-width confidence bins)
and the confusion matrix, with and without horizontal-flip test-time augmentation; and how many
faces per second it scored. Faces go through the classifier's ``predict``
(:func:`fer.preprocess.faces_to_tensor` and the checkpoint's calibration), exactly as in the app,
with any backend: ``torch``, ``onnx``, ``onnx-int8`` or a transformers model folder.

Example:
    python -m training.evaluate fer/weights/fer_deit_tiny --data ../shared/data/fer2013.npz --out eval/
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from fer.classification import BACKENDS, Classifier, load_classifier
from training.data import load_fer2013

__all__ = ["classification_report", "expected_calibration_error", "score_split", "main"]

logger = logging.getLogger(__name__)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE: the face-weighted mean gap between confidence and accuracy over equal-width confidence bins."""
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(error)


def classification_report(labels: np.ndarray, predictions: np.ndarray, class_names: tuple[str, ...],
                          probabilities: np.ndarray | None = None) -> dict:
    """Accuracy, macro-F1, per-class precision / recall / F1 / predicted and true share, the
    confusion matrix (rows: truth) and, given probabilities, the ECE."""
    k = len(class_names)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    precision = np.divide(true_positive, confusion.sum(0), out=np.zeros(k), where=confusion.sum(0) > 0)
    recall = np.divide(true_positive, confusion.sum(1), out=np.zeros(k), where=confusion.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    total = max(1, confusion.sum())
    report = {
        "accuracy": float(true_positive.sum() / total),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(confusion[i].sum()),
                   "true_share": float(confusion[i].sum() / total), "predicted_share": float(confusion[:, i].sum() / total)}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": confusion.tolist(),
    }
    if probabilities is not None:
        report["ece"] = expected_calibration_error(probabilities, labels)
    return report


def score_split(classifier: Classifier, pixels: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, float]:
    """Probabilities without and with flip TTA for ``(N, 48, 48)`` faces, and faces per second (no TTA).

    Faces go through the classifier's own ``predict``, the path the app uses.
    """
    plain, flipped, seconds = [], [], 0.0
    for start in range(0, len(pixels), batch_size):
        batch = pixels[start : start + batch_size]
        began = time.perf_counter()
        plain.append(classifier.predict(batch))
        seconds += time.perf_counter() - began
        flipped.append(classifier.predict(np.ascontiguousarray(batch[:, :, ::-1])))
    plain_probs = np.concatenate(plain)
    return plain_probs, (plain_probs + np.concatenate(flipped)) / 2, len(pixels) / max(seconds, 1e-9)


def save_confusion_png(confusion: list[list[int]], class_names: tuple[str, ...], path: Path, title: str) -> None:
    """Row-normalised confusion matrix as a PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion, dtype=np.float64)
    normalised = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    figure, axis = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axis.set_yticks(range(len(class_names)), class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            colour = "white" if normalised[i, j] > 0.5 else "black"
            axis.text(j, i, f"{normalised[i, j]:.2f}\n({int(matrix[i, j])})", ha="center", va="center", fontsize=7, color=colour)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def markdown_tables(results: dict) -> str:
    """The evaluation as Markdown: a summary table per split and truth, and the per-class figures."""
    lines = ["| split | truth | faces | accuracy | accuracy, flip TTA | macro-F1 | ECE | faces/s (CPU) |", "|---|---|---|---|---|---|---|---|"]
    for split, report in results["splits"].items():
        for truth in _TRUTHS:
            if truth not in report:
                continue
            r = report[truth]
            lines.append(f"| {split} | {truth} | {r['faces']} | {r['no_tta']['accuracy'] * 100:.2f}% | {r['flip_tta']['accuracy'] * 100:.2f}% | "
                         f"{r['no_tta']['macro_f1']:.4f} | {r['no_tta']['ece']:.4f} | {report['faces_per_second']:.0f} |")
    for split, report in results["splits"].items():
        for truth in _TRUTHS:
            if truth not in report:
                continue
            lines += ["", f"Per class, {split}, {truth} truth (no TTA):", "",
                      "| class | support | precision | recall | F1 | true share | predicted share |", "|---|---|---|---|---|---|---|"]
            for name, v in report[truth]["no_tta"]["per_class"].items():
                lines.append(f"| {name} | {v['support']} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | "
                             f"{v['true_share']:.3f} | {v['predicted_share']:.3f} |")
    return "\n".join(lines)


_TRUTHS = ("fer2013", "ferplus")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Evaluate a classifier on FER-2013 against its own labels and the FER+ majority.")
    parser.add_argument("checkpoint", help="checkpoint folder (config.json + model.safetensors) or a transformers model folder")
    parser.add_argument("--data", default="../shared/data/fer2013.npz", help="fer2013.npz, fer2013.csv or image-folder root")
    parser.add_argument("--votes", default="../shared/data/ferplus_votes.npz",
                        help="ferplus_votes.npz for the FER+ truth ('' to skip; skipped with a warning if the file is missing)")
    parser.add_argument("--splits", nargs="+", default=["PrivateTest", "PublicTest"])
    parser.add_argument("--out", default=None, help="folder for metrics.json and confusion PNGs")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help="onnx / onnx-int8 need `python -m fer export-onnx` first")
    parser.add_argument("--markdown", action="store_true", help="also print the results as Markdown tables")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    classifier = load_classifier(args.checkpoint, device=args.device, backend=args.backend)
    config = getattr(classifier, "config", None)  # transformers models carry no ModelConfig
    names = classifier.label_names
    votes = args.votes if args.votes and Path(args.votes).is_file() else None
    if args.votes and votes is None:
        logger.warning("no FER+ votes at %s: reporting the FER-2013 labels only", args.votes)
    data = load_fer2013(args.data, votes)
    results: dict = {"checkpoint": str(args.checkpoint), "backend": args.backend, "classifier": type(classifier).__name__,
                     "architecture": getattr(config, "architecture", None),
                     "input_size": config.preprocess.input_size if config else None,
                     "calibration": classifier.calibration.to_json(), "splits": {}}
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    for split in args.splits:
        part = data.split(split)
        plain, tta, faces_per_second = score_split(classifier, part.pixels, args.batch_size)
        report: dict = {"faces": len(part), "faces_per_second": round(faces_per_second, 1)}
        truths = {"fer2013": (np.ones(len(part), bool), part.labels)}
        if part.ferplus_majority is not None:
            truths["ferplus"] = (part.ferplus_majority >= 0, part.ferplus_majority)
        for truth, (keep, labels) in truths.items():
            report[truth] = {
                "faces": int(keep.sum()),
                "no_tta": classification_report(labels[keep], plain[keep].argmax(1), names, plain[keep]),
                "flip_tta": classification_report(labels[keep], tta[keep].argmax(1), names, tta[keep]),
            }
            r = report[truth]["no_tta"]
            print(f"{split}, {truth} truth: accuracy {r['accuracy']:.4f} (flip TTA {report[truth]['flip_tta']['accuracy']:.4f}), "
                  f"macro-F1 {r['macro_f1']:.4f}, ECE {r['ece']:.4f}, {report[truth]['faces']} faces, {faces_per_second:.0f} faces/s")
            print("  recall: " + ", ".join(f"{n} {v['recall']:.2f}" for n, v in r["per_class"].items()))
            print("  predicted / true share: " + ", ".join(f"{n} {v['predicted_share']:.3f}/{v['true_share']:.3f}" for n, v in r["per_class"].items()))
            if out:
                save_confusion_png(r["confusion_matrix"], names, out / f"confusion_{split}_{truth}.png",
                                   f"{split}, {truth} truth: accuracy {r['accuracy']:.3f}")
        results["splits"][split] = report
    if out:
        (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        print(markdown_tables(results))
    return results


if __name__ == "__main__":
    main()
