"""The ONNX Runtime classifier backend: export, int8 quantization, equivalence with torch, staleness."""

import shutil

import numpy as np
import pytest
import torch

from fer import default_checkpoint, load_checkpoint, load_classifier, save_checkpoint
from fer.cli import main as cli_main
from fer.onnx_backend import OnnxClassifier, StaleExportError, weights_digest


def _real_face_rows(astronaut, count=64):
    """``(count, 48, 48)`` gray crops of a real photo (the face and around it), shifted and scaled."""
    import cv2

    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    rows = []
    for i in range(count):
        side = 90 + (i % 8) * 15
        x, y = 150 + (i * 7) % 60, 40 + (i * 11) % 60
        rows.append(cv2.resize(gray[y : y + side, x : x + side], (48, 48), interpolation=cv2.INTER_AREA))
    return np.stack(rows)


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory, astronaut):
    folder = tmp_path_factory.mktemp("onnx") / "checkpoint"
    shutil.copytree(tiny_checkpoint, folder)
    faces = _real_face_rows(astronaut)
    np.savez(folder.parent / "faces.npz", pixels=faces, usage=np.zeros(len(faces), np.uint8))
    assert cli_main(["export-onnx", str(folder), "--int8", "--calibration-data", str(folder.parent / "faces.npz")]) == 0
    return folder


def test_int8_export_needs_calibration_faces(tiny_checkpoint, tmp_path):
    folder = tmp_path / "checkpoint"
    shutil.copytree(tiny_checkpoint, folder)
    with pytest.raises(ValueError, match="calibration"):
        cli_main(["export-onnx", str(folder), "--int8"])


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8", "torch"])
def test_a_face_gets_the_same_answer_alone_or_among_64(exported, backend, astronaut):
    """A student's label must not change because someone else joined the call."""
    classifier = load_classifier(exported, backend=backend)
    faces = list(_real_face_rows(astronaut, 64))
    faces[10:40] = [np.full((48, 48), v, np.uint8) for v in range(0, 255, 9)][:30]  # very different neighbours
    together = classifier.predict(faces)
    alone = np.concatenate([classifier.predict([face]) for face in faces])
    np.testing.assert_allclose(together, alone, atol=1e-4)


def _crops(astronaut):
    return [astronaut[60:180, 180:270], astronaut[0:100, 0:100], np.full((200, 100, 3), 200, np.uint8)]


def test_export_matches_torch(exported, astronaut):
    crops = _crops(astronaut)
    reference = load_classifier(exported, backend="torch").predict(crops)
    fp32 = load_classifier(exported, backend="onnx").predict(crops)
    int8 = load_classifier(exported, backend="onnx-int8").predict(crops)
    np.testing.assert_allclose(fp32, reference, atol=1e-5)
    assert np.abs(int8 - reference).max() < 0.05  # static int8 of a random 2-block ViT
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
