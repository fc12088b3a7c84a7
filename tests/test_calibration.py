"""Calibration: the logit bias and temperature that travel with the weights, how they are fitted,
and that every backend applies them."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from fer import FER2013_CLASSES, Pipeline, load_classifier
from fer.calibration import Calibration
from fer.checkpoint import ModelConfig
from fer.cli import main as cli_main
from training.calibrate import CalibrationTargets, fit_class_bias, fit_temperature, uncertainty_threshold


def test_temperature_softens_without_changing_the_label():
    logits = np.array([[3.0, 1.0, 0.0], [0.0, 0.5, 0.2]])
    sharp, soft = Calibration().probabilities(logits), Calibration(temperature=2.5).probabilities(logits)
    np.testing.assert_array_equal(sharp.argmax(1), soft.argmax(1))
    assert (soft.max(1) < sharp.max(1)).all()
    np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-6)


def test_bias_moves_the_decision_towards_a_class():
    logits = np.array([[1.0, 0.8, 0.0]])
    assert Calibration().probabilities(logits).argmax() == 0
    assert Calibration(class_bias=(0.0, 0.5, 0.0)).probabilities(logits).argmax() == 1


@pytest.mark.parametrize("bad", [{"temperature": 0.0}, {"temperature": float("nan")}, {"uncertain_below": 1.0},
                                 {"class_bias": (float("inf"),)}])
def test_bad_calibration_values_are_refused(bad):
    with pytest.raises(ValueError):
        Calibration(**bad)


def test_calibration_round_trips_through_the_config():
    calibration = Calibration(1.7, (0.1, -0.2, 0.0, 0.3, 0.0, 0.0, -0.2), 0.45, "PublicTest")
    config = ModelConfig("deit_tiny_patch16_224", extra={"calibration": calibration.to_json()})
    again = ModelConfig.from_json(json.loads(json.dumps(config.to_json())))
    assert again.calibration == calibration
    assert ModelConfig("deit_tiny_patch16_224").calibration == Calibration()


def test_fitted_temperature_recovers_the_one_that_made_the_data():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 7))
    true_probs = Calibration(temperature=2.0).probabilities(logits)
    labels = np.array([rng.choice(7, p=p / p.sum()) for p in true_probs.astype(np.float64)])
    fitted = fit_temperature(logits, np.eye(7)[labels])
    assert fitted == pytest.approx(2.0, rel=0.1)


def test_class_bias_gives_a_starved_class_its_recall_back():
    rng = np.random.default_rng(1)
    labels = rng.choice(7, 3000, p=[0.1, 0.02, 0.1, 0.25, 0.13, 0.1, 0.3])
    logits = rng.normal(0, 1, (3000, 7))
    logits[np.arange(3000), labels] += 2.0
    logits[:, 2] -= 2.5  # a model that almost never says Fear
    recall = lambda z: ((z.argmax(1) == labels) & (labels == 2)).sum() / (labels == 2).sum()  # noqa: E731
    assert recall(logits) < 0.2
    bias = fit_class_bias(logits, labels, FER2013_CLASSES, CalibrationTargets(neutral_floor=0.5))
    assert recall(logits + bias) >= 0.55
    assert bias[2] > 1.0


def test_uncertainty_threshold_is_where_labels_become_coin_flips():
    rng = np.random.default_rng(2)
    confidence = rng.uniform(0.2, 1.0, 5000)
    correct = rng.uniform(size=5000) < confidence  # perfectly calibrated
    assert uncertainty_threshold(confidence, correct) == pytest.approx(0.5, abs=0.06)


@pytest.fixture(scope="module")
def calibrated_export(tiny_checkpoint, tmp_path_factory, astronaut):
    """The tiny checkpoint with a calibration in its config, exported to ONNX fp32 and int8."""
    folder = tmp_path_factory.mktemp("calibrated") / "checkpoint"
    shutil.copytree(tiny_checkpoint, folder)
    config = ModelConfig.from_json(json.loads((folder / "config.json").read_text()))
    calibration = Calibration(1.8, (0.0, 2.0, 0.0, -1.0, 0.0, 0.5, 0.0), 0.3, "test")
    config = dataclasses.replace(config, extra={**config.extra, "calibration": calibration.to_json()})
    (folder / "config.json").write_text(json.dumps(config.to_json()))
    faces = np.stack([np.asarray(astronaut[y : y + 48, x : x + 48].mean(2), np.uint8) for y in range(0, 400, 40) for x in range(0, 400, 40)])
    np.savez(folder.parent / "calibration_faces.npz", pixels=faces, usage=np.zeros(len(faces), np.uint8))
    assert cli_main(["export-onnx", str(folder), "--int8", "--calibration-data", str(folder.parent / "calibration_faces.npz")]) == 0
    return folder, calibration


@pytest.mark.parametrize("backend", ["torch", "onnx", "onnx-int8"])
def test_every_backend_applies_the_checkpoint_calibration(calibrated_export, backend, astronaut):
    folder, calibration = calibrated_export
    classifier = load_classifier(folder, backend=backend)
    assert classifier.calibration == calibration
    crops = [astronaut[60:180, 180:270], astronaut[0:100, 0:100]]
    np.testing.assert_allclose(classifier.predict(crops), calibration.probabilities(classifier.logits(crops)), atol=1e-6)
    raw = Calibration().probabilities(classifier.logits(crops))
    assert not np.allclose(classifier.predict(crops), raw, atol=1e-3)


def test_uncertain_faces_are_flagged_in_the_json(calibrated_export, detector, astronaut):
    folder, _ = calibrated_export
    classifier = load_classifier(folder)
    object.__setattr__(classifier, "calibration", dataclasses.replace(classifier.calibration, uncertain_below=0.99))
    face = Pipeline(detector, classifier).analyze(astronaut).to_json()["faces"][0]
    assert face["uncertain"] is True and face["confidence"] < 0.99
    assert sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-3)  # all 7 probabilities kept
