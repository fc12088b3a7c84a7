"""Shared fixtures: real photos, the real MTCNN, and tiny real timm checkpoints made on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data

from bench.server import AppServer
from fer import FaceDetector, ModelConfig, PreprocessConfig, build_model, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "fer2013.npz"


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real photo with one face (512x512 RGB)."""
    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised 2-block DeiT-Tiny at 32 px, saved in our checkpoint layout."""
    config = ModelConfig(architecture="deit_tiny_patch16_224", preprocess=PreprocessConfig(input_size=32),
                         model_args={"img_size": 32, "depth": 2})
    model = build_model(config)
    return save_checkpoint(model, config, tmp_path_factory.mktemp("tiny") / "checkpoint")


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """The real app with its default (shipped) checkpoint."""
    server = AppServer(["--max-file-size", "20mb"], tmp_path_factory.mktemp("server") / "app.log")
    yield server
    server.stop()
