"""Train end to end on a tiny synthetic set, export, and reload the export three ways."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from fer import FER2013_CLASSES, load_checkpoint, load_classifier
from fer.preprocess import faces_to_tensor
from training import evaluate, train

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def synthetic_fer(path, per_class=10, seed=0):
    """70 training faces (10 per class) whose class is a stripe pattern, plus PublicTest / PrivateTest rows."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:48, 0:48]
    pixels, labels = [], []
    for label in range(7):
        pattern = 127 + 100 * np.sin((x if label % 2 else y) * (label + 1) * np.pi / 24)
        for _ in range(per_class + 4):
            pixels.append(np.clip(pattern + rng.normal(0, 20, (48, 48)), 0, 255).astype(np.uint8))
            labels.append(label)
    pixels, labels = np.stack(pixels), np.array(labels)
    usage = np.tile([0] * per_class + [1, 1, 2, 2], 7)
    np.savez(path, pixels=pixels, emotion=labels, usage=usage)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    data = synthetic_fer(folder / "synthetic.npz")
    started = time.time()
    summary = train.main(["--data", str(data), "--out", str(folder / "run"), "--model", "test_vit", "--img-size", "32",
                          "--epochs", "6", "--batch-size", "14", "--lr", "2e-3", "--warmup-epochs", "0.5", "--erase", "0",
                          "--rotation", "0", "--layer-decay", "1.0", "--drop-path", "0", "--ema-decay", "0.9"])
    return folder, data, summary, time.time() - started


def test_training_runs_and_the_loss_falls(trained):
    folder, _, summary, _ = trained
    log = json.loads((folder / "run" / "log.json").read_text())
    losses = [epoch["train_loss"] for epoch in log["history"]]
    assert len(losses) == 6 and losses[-1] < losses[0] * 0.8
    assert summary["best"]["accuracy"] > 1 / 7 + 0.1  # better than chance on PublicTest
    assert (folder / "run" / "log.csv").read_text().startswith("epoch,train_loss")


def test_resume_continues_from_the_last_epoch(trained, tmp_path):
    folder, data, _, _ = trained
    log_before = json.loads((folder / "run" / "log.json").read_text())
    summary = train.main(["--data", str(data), "--out", str(folder / "run"), "--model", "test_vit", "--img-size", "32",
                          "--epochs", "7", "--batch-size", "14", "--resume"])
    history = json.loads((folder / "run" / "log.json").read_text())["history"]
    assert len(history) == 7 and history[:6] == log_before["history"]
    assert summary["epochs"] == 7


def test_export_reloads_identically_through_timm_transformers_and_ours(trained):
    folder, _, _, _ = trained
    export = folder / "run" / "best"
    ours = load_classifier(export)
    model, config = load_checkpoint(export)
    faces = np.random.default_rng(3).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    batch = faces_to_tensor(list(faces), config.preprocess)

    through_timm = timm.create_model(f"local-dir:{export}", pretrained=True).eval()
    with torch.inference_mode():
        np.testing.assert_array_equal(through_timm(batch).softmax(-1).numpy(), model(batch).softmax(-1).numpy())
    assert through_timm.pretrained_cfg["label_names"] == list(FER2013_CLASSES)

    from transformers import pipeline

    classify = pipeline("image-classification", model=str(export), device="cpu")
    expected = ours.predict(list(faces))
    for face, probs in zip(faces, expected):
        answer = classify(Image.fromarray(face).convert("RGB"), top_k=7)
        scores = {item["label"]: item["score"] for item in answer}
        # transformers resizes with PIL (uint8 rounding) where we use torch: equal to ~1e-3.
        np.testing.assert_allclose([scores[name] for name in FER2013_CLASSES], probs, atol=5e-3)
        assert max(scores, key=scores.get) == FER2013_CLASSES[int(probs.argmax())]


def synthetic_votes(data_path, path, seed=0):
    """FER+-style votes for the synthetic set: mostly agreeing with the label, some rows mostly not-a-face.

    Columns in FER+'s own order (neutral, happiness, surprise, sadness, anger, disgust, fear,
    contempt, unknown, NF), as in ferplus_votes.npz.
    """
    labels = np.load(data_path)["emotion"]
    ferplus_column = {0: 4, 1: 5, 2: 6, 3: 1, 4: 3, 5: 2, 6: 0}
    rng = np.random.default_rng(seed)
    votes = np.zeros((len(labels), 10), np.uint8)
    for row, label in enumerate(labels):
        votes[row, ferplus_column[int(label)]] = 7
        votes[row, rng.choice([0, 1, 2])] += 3
    votes[::9] = 0
    votes[::9, 9] = 10  # every 9th row: FER+ says not a face
    names = np.array(["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"])
    np.savez(path, votes=votes, labels=names)
    return path


def test_evaluate_reports_both_truths_with_calibration_error(trained, tmp_path):
    folder, data, _, _ = trained
    votes = synthetic_votes(data, tmp_path / "votes.npz")
    results = evaluate.main([str(folder / "run" / "best"), "--data", str(data), "--votes", str(votes), "--out", str(tmp_path)])
    report = results["splits"]["PrivateTest"]
    assert report["faces"] == 14 and report["fer2013"]["faces"] == 14
    usage = np.load(data)["usage"]
    not_a_face = np.arange(len(usage)) % 9 == 0
    assert report["ferplus"]["faces"] == ((usage == 2) & ~not_a_face).sum() < 14  # FER+'s not-a-face rows are left out
    for truth in ("fer2013", "ferplus"):
        for key in ("no_tta", "flip_tta"):
            r = report[truth][key]
            assert 0 <= r["accuracy"] <= 1 and 0 <= r["ece"] <= 1
            assert np.array(r["confusion_matrix"]).sum() == report[truth]["faces"]
            assert set(r["per_class"]) == set(FER2013_CLASSES)
            assert sum(v["predicted_share"] for v in r["per_class"].values()) == pytest.approx(1.0)
            assert sum(v["true_share"] for v in r["per_class"].values()) == pytest.approx(1.0)
    assert (tmp_path / "confusion_PrivateTest_ferplus.png").stat().st_size > 1000
    assert json.loads((tmp_path / "metrics.json").read_text())["splits"]["PublicTest"]["faces"] == 14
    assert "| PrivateTest | ferplus |" in evaluate.markdown_tables(results)


def test_evaluate_takes_a_transformers_model_folder(tmp_path):
    from transformers import ViTConfig, ViTForImageClassification

    data = synthetic_fer(tmp_path / "synthetic.npz")
    labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       num_labels=7, id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    ViTForImageClassification(config).save_pretrained(tmp_path / "vit")
    results = evaluate.main([str(tmp_path / "vit"), "--data", str(data), "--votes", "", "--splits", "PrivateTest"])
    assert results["classifier"] == "TransformersClassifier"
    assert results["splits"]["PrivateTest"]["fer2013"]["faces"] == 14


def test_training_on_ferplus_votes_drops_non_faces_and_selects_on_ferplus(tmp_path):
    data = synthetic_fer(tmp_path / "synthetic.npz")
    votes = synthetic_votes(data, tmp_path / "votes.npz")
    summary = train.main(["--data", str(data), "--out", str(tmp_path / "run"), "--model", "test_vit", "--img-size", "32",
                          "--epochs", "2", "--batch-size", "14", "--lr", "2e-3", "--ferplus-votes", str(votes),
                          "--ferplus-weight", "0.7", "--erase", "0", "--layer-decay", "1.0"])
    assert summary["best"]["metric"] == "public_ferplus_acc"
    history = json.loads((tmp_path / "run" / "log.json").read_text())["history"]
    assert {"public_ferplus_acc_model", "public_acc_model"} <= set(history[0])
    # Fine-tune that run's checkpoint again: weights, head and preprocessing carry over.
    again = train.main(["--data", str(data), "--out", str(tmp_path / "again"), "--img-size", "32", "--epochs", "1", "--batch-size", "14",
                        "--init-checkpoint", str(tmp_path / "run" / "best"), "--lr", "1e-9", "--warmup-epochs", "0"])
    before = load_classifier(tmp_path / "run" / "best").predict(list(np.load(data)["pixels"][:5]))
    after = load_classifier(tmp_path / "again" / "last_ema").predict(list(np.load(data)["pixels"][:5]))
    np.testing.assert_allclose(before, after, atol=2e-3)
    assert again["best"]["metric"] == "public_acc"


def test_two_cpu_processes_train_together(tmp_path):
    data = synthetic_fer(tmp_path / "synthetic.npz")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "training.train",
               "--data", str(data), "--out", str(tmp_path / "ddp"), "--model", "test_vit", "--img-size", "32",
               "--epochs", "1", "--batch-size", "14", "--workers-threads", "1"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "best PublicTest" in completed.stdout
    assert (tmp_path / "ddp" / "best" / "model.safetensors").exists()
