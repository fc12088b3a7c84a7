import numpy as np
import pytest
import torch

from fer.preprocess import PreprocessConfig, faces_to_tensor, normalize, to_gray


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 1), (20, 30, 3), (20, 30, 4)])
def test_to_gray_accepts_every_layout(shape):
    assert to_gray(np.full(shape, 100, np.uint8)).shape == (20, 30)


def test_to_gray_rejects_wrong_input():
    with pytest.raises(TypeError, match="uint8"):
        to_gray(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="shape"):
        to_gray(np.zeros((4, 4, 2), np.uint8))


def test_colour_and_gray_faces_give_the_same_input():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (60, 60), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    config = PreprocessConfig(input_size=64)
    assert torch.allclose(faces_to_tensor([gray], config), faces_to_tensor([rgb], config))


def test_inference_matches_training_path_for_dataset_faces():
    """A 48x48 dataset face goes through the same function in training and in the app."""
    rng = np.random.default_rng(1)
    faces = rng.integers(0, 256, (3, 48, 48), dtype=np.uint8)
    config = PreprocessConfig(input_size=96)
    training = normalize(torch.from_numpy(faces).float().div(255).unsqueeze(1), config)
    assert torch.allclose(faces_to_tensor(list(faces), config), training)


def test_batch_shape_and_normalisation():
    config = PreprocessConfig(input_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    batch = faces_to_tensor([np.full((100, 80, 3), 255, np.uint8), np.zeros((10, 10), np.uint8)], config)
    assert batch.shape == (2, 3, 32, 32)
    assert torch.allclose(batch[0], torch.ones(3, 32, 32)) and torch.allclose(batch[1], -torch.ones(3, 32, 32))
    assert faces_to_tensor([], config).shape == (0, 3, 32, 32)
