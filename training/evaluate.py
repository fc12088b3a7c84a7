"""Evaluate a checkpoint folder on FER-2013's PrivateTest and PublicTest splits.

Reports accuracy, macro-F1, per-class precision and recall and the confusion matrix, with and
without horizontal-flip test-time augmentation, and how many faces per second it scored. Faces go
through the classifier's ``predict`` (:func:`fer.preprocess.faces_to_tensor`), exactly as in the app,
with the torch backend or the exported ONNX (``--backend onnx-int8``).

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

__all__ = ["classification_report", "score_split", "main"]

logger = logging.getLogger(__name__)


def classification_report(labels: np.ndarray, predictions: np.ndarray, class_names: tuple[str, ...]) -> dict:
    """Accuracy, macro-F1, per-class precision / recall / F1 and the confusion matrix (rows: truth)."""
    k = len(class_names)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    precision = np.divide(true_positive, confusion.sum(0), out=np.zeros(k), where=confusion.sum(0) > 0)
    recall = np.divide(true_positive, confusion.sum(1), out=np.zeros(k), where=confusion.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    return {
        "accuracy": float(true_positive.sum() / max(1, confusion.sum())),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(confusion[i].sum())}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": confusion.tolist(),
    }


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
    """The evaluation as Markdown: a summary table per split, and per-class precision / recall."""
    lines = ["| split | faces | accuracy | accuracy, flip TTA | macro-F1 | macro-F1, flip TTA | faces/s (CPU) |", "|---|---|---|---|---|---|---|"]
    for split, report in results["splits"].items():
        lines.append(f"| {split} | {report['faces']} | {report['no_tta']['accuracy'] * 100:.2f}% | {report['flip_tta']['accuracy'] * 100:.2f}% | "
                     f"{report['no_tta']['macro_f1']:.4f} | {report['flip_tta']['macro_f1']:.4f} | {report['faces_per_second']:.0f} |")
    for split, report in results["splits"].items():
        lines += ["", f"Per class, {split} (no TTA):", "", "| class | support | precision | recall | F1 |", "|---|---|---|---|---|"]
        for name, values in report["no_tta"]["per_class"].items():
            lines.append(f"| {name} | {values['support']} | {values['precision']:.3f} | {values['recall']:.3f} | {values['f1']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Evaluate a checkpoint folder on FER-2013.")
    parser.add_argument("checkpoint", help="checkpoint folder (config.json + model.safetensors)")
    parser.add_argument("--data", default="../shared/data/fer2013.npz", help="fer2013.npz, fer2013.csv or image-folder root")
    parser.add_argument("--splits", nargs="+", default=["PrivateTest", "PublicTest"])
    parser.add_argument("--out", default=None, help="folder for metrics.json and confusion PNGs")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help="onnx / onnx-int8 need `python -m fer export-onnx` first")
    parser.add_argument("--markdown", action="store_true", help="also print the results as Markdown tables")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    classifier = load_classifier(args.checkpoint, device=args.device, backend=args.backend)
    config = classifier.config
    data = load_fer2013(args.data)
    results: dict = {"checkpoint": str(args.checkpoint), "backend": args.backend, "architecture": config.architecture,
                     "input_size": config.preprocess.input_size, "splits": {}}
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    for split in args.splits:
        part = data.split(split)
        plain, tta, faces_per_second = score_split(classifier, part.pixels, args.batch_size)
        report = {
            "faces": len(part),
            "faces_per_second": round(faces_per_second, 1),
            "no_tta": classification_report(part.labels, plain.argmax(1), config.label_names),
            "flip_tta": classification_report(part.labels, tta.argmax(1), config.label_names),
        }
        results["splits"][split] = report
        print(f"{split}: accuracy {report['no_tta']['accuracy']:.4f} (flip TTA {report['flip_tta']['accuracy']:.4f}), "
              f"macro-F1 {report['no_tta']['macro_f1']:.4f} (TTA {report['flip_tta']['macro_f1']:.4f}), "
              f"{len(part)} faces, {faces_per_second:.0f} faces/s")
        recalls = ", ".join(f"{n} {v['recall']:.2f}" for n, v in report["no_tta"]["per_class"].items())
        print(f"  recall: {recalls}")
        if out:
            save_confusion_png(report["no_tta"]["confusion_matrix"], config.label_names, out / f"confusion_{split}.png",
                               f"{split}: accuracy {report['no_tta']['accuracy']:.3f}")
    if out:
        (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        print(markdown_tables(results))
    return results


if __name__ == "__main__":
    main()
