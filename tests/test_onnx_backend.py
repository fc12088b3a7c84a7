"""The ONNX Runtime classifier backend: export, int8 quantization, equivalence with torch, staleness."""

import shutil

import numpy as np
import pytest
import torch

from fer import default_checkpoint, load_checkpoint, load_classifier, save_checkpoint
from fer.cli import main as cli_main
from fer.onnx_backend import OnnxClassifier, StaleExportError, weights_digest


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx") / "checkpoint"
    shutil.copytree(tiny_checkpoint, folder)
    assert cli_main(["export-onnx", str(folder), "--int8"]) == 0
    return folder


def _crops(astronaut):
    return [astronaut[60:180, 180:270], astronaut[0:100, 0:100], np.full((200, 100, 3), 200, np.uint8)]


def test_export_matches_torch(exported, astronaut):
    crops = _crops(astronaut)
    reference = load_classifier(exported, backend="torch").predict(crops)
    fp32 = load_classifier(exported, backend="onnx").predict(crops)
    int8 = load_classifier(exported, backend="onnx-int8").predict(crops)
    np.testing.assert_allclose(fp32, reference, atol=1e-5)
    assert np.abs(int8 - reference).max() < 0.05  # dynamic int8 of a random 2-block ViT
    np.testing.assert_allclose(int8.sum(1), 1.0, atol=1e-5)
    assert load_classifier(exported, backend="onnx").predict([]).shape == (0, 7)


def test_auto_picks_int8_on_cpu_and_torch_without_an_export(exported, tiny_checkpoint):
    assert isinstance(load_classifier(exported, backend="auto"), OnnxClassifier)
    assert not isinstance(load_classifier(tiny_checkpoint, backend="auto"), OnnxClassifier)
    with pytest.raises(FileNotFoundError, match="export-onnx"):
        load_classifier(tiny_checkpoint, backend="onnx")
    with pytest.raises(ValueError, match="backend"):
        load_classifier(tiny_checkpoint, backend="tensorrt")


def test_a_retrained_checkpoint_is_never_served_through_an_old_export(exported, tmp_path, astronaut):
    folder = tmp_path / "retrained"
    shutil.copytree(exported, folder)
    model, config = load_checkpoint(folder)
    with torch.no_grad():
        model.head.bias.add_(1.0)
    save_checkpoint(model, config, folder)  # new weights, old ONNX files
    with pytest.raises(StaleExportError, match="export-onnx"):
        load_classifier(folder, backend="onnx-int8")
    fallback = load_classifier(folder, backend="auto")
    assert not isinstance(fallback, OnnxClassifier)
    np.testing.assert_allclose(fallback.predict(_crops(astronaut)), load_classifier(folder).predict(_crops(astronaut)))


def test_shipped_int8_export_is_from_the_shipped_weights():
    classifier = OnnxClassifier.from_pretrained(default_checkpoint(), int8=True)
    assert classifier.session.get_modelmeta().custom_metadata_map["fer.weights_sha256"] == weights_digest(default_checkpoint())
    assert classifier.model_path.stat().st_size < 10 * 1024 * 1024
