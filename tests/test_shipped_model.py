"""The checkpoint the app ships with: its files, its config, and its accuracy on FER-2013 PrivateTest."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from fer import FER2013_CLASSES, default_checkpoint, load_classifier

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "fer2013.npz"


def test_shipped_checkpoint_is_small_and_self_describing():
    folder = default_checkpoint()
    weights = folder / "model.safetensors"
    assert weights.stat().st_size < 25 * 1024 * 1024
    config = json.loads((folder / "config.json").read_text())
    assert config["label_names"] == list(FER2013_CLASSES)
    assert config["pretrained_cfg"]["input_size"][1:] == [config["model_args"]["img_size"]] * 2


def test_shipped_model_reads_a_smile(detector, astronaut):
    from fer import Pipeline

    result = Pipeline(detector, load_classifier(default_checkpoint())).analyze(astronaut)
    assert result.faces.top(result.label_names)[0] == ["Happy"]


def card_figure(name: str) -> float:
    """A PrivateTest figure stated in MODEL_CARD.md as '<name>: **NN.NN%**' (or '**0.NNN**')."""
    text = (ROOT / "MODEL_CARD.md").read_text()
    match = re.search(re.escape(name) + r": \*\*([0-9.]+)(%?)\*\*", text)
    assert match, f"MODEL_CARD.md must state '{name}: **...**'"
    return float(match.group(1))


VOTES = ROOT.parent / "shared" / "data" / "ferplus_votes.npz"


@pytest.mark.dataset
@pytest.mark.skipif(not DATA.exists() or not VOTES.exists(), reason=f"{DATA} or {VOTES} not present")
def test_privatetest_figures_match_the_model_card():
    from training.data import load_fer2013
    from training.evaluate import expected_calibration_error, score_split

    private = load_fer2013(DATA, VOTES).split("PrivateTest")
    known = private.ferplus_majority >= 0
    figures = {}
    for backend in ("torch", "onnx-int8"):
        plain, _, _ = score_split(load_classifier(default_checkpoint(), backend=backend), private.pixels)
        assert np.isfinite(plain).all()
        predicted = plain.argmax(1)
        figures[backend] = {
            "ferplus": float((predicted[known] == private.ferplus_majority[known]).mean()) * 100,
            "fer2013": float((predicted == private.labels).mean()) * 100,
            "ece": expected_calibration_error(plain[known], private.ferplus_majority[known]),
        }
    torch_figures = figures["torch"]
    assert torch_figures["ferplus"] >= card_figure("PrivateTest accuracy against the FER+ majority (no TTA)") - 0.3, figures
    assert torch_figures["fer2013"] >= card_figure("PrivateTest accuracy against the FER-2013 labels (no TTA)") - 0.3, figures
    assert torch_figures["ece"] <= card_figure("Expected calibration error against the FER+ majority") + 0.005, figures
    # The int8 export the app runs by default on the CPU must not cost more than half a point.
    assert figures["onnx-int8"]["ferplus"] >= torch_figures["ferplus"] - 0.5, figures


def test_shipped_int8_gives_each_face_the_same_answer_in_any_batch(astronaut):
    import cv2

    classifier = load_classifier(default_checkpoint(), backend="onnx-int8")
    faces = [cv2.resize(astronaut[y : y + side, x : x + side], (48, 48), interpolation=cv2.INTER_AREA)
             for side in (100, 160) for x in range(150, 230, 20) for y in range(20, 100, 20)]
    together = classifier.predict(faces)
    alone = np.concatenate([classifier.predict([face]) for face in faces])
    np.testing.assert_allclose(together, alone, atol=1e-4)
