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


def card_accuracy() -> float:
    """The PrivateTest accuracy (no TTA) stated in MODEL_CARD.md."""
    text = (ROOT / "MODEL_CARD.md").read_text()
    match = re.search(r"PrivateTest accuracy \(no TTA\): \*\*([0-9.]+)%\*\*", text)
    assert match, "MODEL_CARD.md must state 'PrivateTest accuracy (no TTA): **NN.NN%**'"
    return float(match.group(1))


@pytest.mark.dataset
@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")
def test_privatetest_accuracy_matches_the_model_card():
    from training.data import load_fer2013
    from training.evaluate import score_split

    private = load_fer2013(DATA).split("PrivateTest")
    accuracy = {}
    for backend in ("torch", "onnx-int8"):
        plain, _, _ = score_split(load_classifier(default_checkpoint(), backend=backend), private.pixels)
        assert np.isfinite(plain).all()
        accuracy[backend] = float((plain.argmax(1) == private.labels).mean()) * 100
    assert accuracy["torch"] >= card_accuracy() - 0.3, f"PrivateTest accuracy {accuracy['torch']:.2f}% fell below the model card's {card_accuracy()}%"
    # The int8 export the app runs by default on the CPU must not cost more than half a point.
    assert accuracy["onnx-int8"] >= accuracy["torch"] - 0.5, accuracy
