import json

import numpy as np
import pytest
import torch

from fer import ExpressionClassifier, FER2013_CLASSES, TransformersClassifier, load_checkpoint, load_classifier, save_checkpoint


def test_checkpoint_folder_gives_probabilities_for_a_batch(tiny_checkpoint, astronaut):
    classifier = load_classifier(tiny_checkpoint)
    assert isinstance(classifier, ExpressionClassifier)
    assert classifier.label_names == FER2013_CLASSES
    crops = [astronaut[60:180, 180:270], np.zeros((48, 48), np.uint8), np.full((200, 100, 4), 200, np.uint8)]
    probs = classifier.predict(crops)
    assert probs.shape == (3, 7)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert classifier.predict([]).shape == (0, 7)


def test_config_carries_preprocessing(tiny_checkpoint):
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert config["architecture"] == "deit_tiny_patch16_224"
    assert config["pretrained_cfg"]["input_size"] == [3, 32, 32]
    assert config["label_names"] == list(FER2013_CLASSES)
    assert config["fer"]["grayscale"] is True


def test_save_reload_gives_identical_outputs(tiny_checkpoint, tmp_path):
    model, config = load_checkpoint(tiny_checkpoint)
    batch = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        before = model(batch)
    reloaded, _ = load_checkpoint(save_checkpoint(model, config, tmp_path / "again"))
    with torch.inference_mode():
        assert torch.equal(before, reloaded(batch))


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_classifier(tmp_path)


@pytest.fixture(scope="module")
def tiny_vit_folder(tmp_path_factory):
    """A tiny transformers ViT with FER-style label names, saved like a Hub model."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    labels = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise", "contempt"]
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, num_labels=len(labels), id2label=dict(enumerate(labels)),
                       label2id={n: i for i, n in enumerate(labels)})
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("vit") / "tiny-vit-fer"
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_transformers_backend_maps_labels_onto_ours(tiny_vit_folder, astronaut):
    classifier = load_classifier(tiny_vit_folder)
    assert isinstance(classifier, TransformersClassifier)
    assert classifier.label_names == FER2013_CLASSES
    probs = classifier.predict([astronaut[60:180, 180:270], astronaut])
    assert probs.shape == (2, 7)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    # The mapping is by name: the model's "neutral" (column 4) is our Neutral (column 6).
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(tiny_vit_folder)
    mapped = dict(classifier._columns)
    assert mapped[4] == FER2013_CLASSES.index("Neutral") and 7 not in mapped  # contempt has no counterpart
    assert model.config.num_labels == 8
