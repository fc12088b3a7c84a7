"""The one place where face crops become model input, shared by training and inference.

FER-2013 is 48x48 grayscale, so every face, whatever it came from (an RGB webcam frame, a
grayscale photo, a dataset row), goes the same way:

1. colour -> grayscale with the ITU-R BT.601 luma weights (what PIL's ``convert("L")`` uses);
2. resize to the dataset's native ``face_size`` (48 px, area interpolation), so a sharp
   webcam crop looks like the blurry training faces the model learned from;
3. resize to the model's input size (bilinear) and repeat to 3 channels;
4. scale to [0, 1] and normalise with the model's mean / std.

Training feeds the 48x48 rows in at step 3 (after its augmentation) through
:func:`normalize`, and inference calls :func:`faces_to_tensor`, which ends in the same function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["PreprocessConfig", "to_gray", "faces_to_tensor", "normalize", "resize_gray"]

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class PreprocessConfig:
    """How a face crop becomes a model input tensor.

    Attributes:
        input_size: side of the square model input, in pixels (e.g. 112).
        mean: per-channel mean of the 3 input channels, on the [0, 1] scale.
        std: per-channel standard deviation of the 3 input channels.
        face_size: the side every face is first reduced to (FER-2013's native 48).
        grayscale: whether colour is dropped (True for every FER-2013 model).
    """

    input_size: int = 112
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    face_size: int = 48
    grayscale: bool = True

    def __post_init__(self) -> None:
        if self.input_size < 16 or self.face_size < 8:
            raise ValueError(
                f"input_size must be >= 16 and face_size >= 8, got {self.input_size} and {self.face_size}"
            )
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"mean and std need 3 values each, got {self.mean} and {self.std}")


def to_gray(image: np.ndarray) -> np.ndarray:
    """Convert an image to 2-D grayscale uint8.

    Args:
        image: ``(H, W)`` gray, ``(H, W, 1)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, uint8.

    Returns:
        ``(H, W)`` uint8.

    Example:
        >>> to_gray(np.zeros((4, 4, 3), np.uint8)).shape
        (4, 4)
    """
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        gray = image[..., :3].astype(np.float32) @ _LUMA
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    raise ValueError(f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")


def resize_gray(face: np.ndarray, size: int) -> np.ndarray:
    """Resize a 2-D uint8 face to ``size x size`` (area when shrinking, bilinear when growing)."""
    if face.shape == (size, size):
        return face
    shrinking = face.shape[0] > size or face.shape[1] > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(face, (size, size), interpolation=interpolation)


def normalize(gray01: torch.Tensor, config: PreprocessConfig) -> torch.Tensor:
    """Resize ``(N, 1, h, w)`` grayscale in [0, 1] to the model input ``(N, 3, S, S)``, normalised.

    Training calls this after augmentation; inference reaches it through :func:`faces_to_tensor`.
    """
    if gray01.ndim != 4 or gray01.shape[1] != 1:
        raise ValueError(f"expected (N, 1, H, W), got {tuple(gray01.shape)}")
    size = config.input_size
    if gray01.shape[-2:] != (size, size):
        gray01 = F.interpolate(gray01, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(config.mean, dtype=gray01.dtype, device=gray01.device).view(1, 3, 1, 1)
    std = torch.tensor(config.std, dtype=gray01.dtype, device=gray01.device).view(1, 3, 1, 1)
    return (gray01.expand(-1, 3, -1, -1) - mean) / std


def faces_to_tensor(faces: Sequence[np.ndarray] | np.ndarray, config: PreprocessConfig) -> torch.Tensor:
    """Turn face crops into one normalised batch for the classifier.

    Args:
        faces: ``N`` uint8 crops, each ``(H, W)`` or ``(H, W, C)``; any size, RGB or gray.
        config: the model's preprocessing, read from its checkpoint.

    Returns:
        float32 tensor ``(N, 3, S, S)``.

    Example:
        >>> faces_to_tensor([np.zeros((60, 50, 3), np.uint8)], PreprocessConfig()).shape
        torch.Size([1, 3, 112, 112])
    """
    if len(faces) == 0:
        return torch.zeros((0, 3, config.input_size, config.input_size))
    small = np.stack([resize_gray(to_gray(np.asarray(face)), config.face_size) for face in faces])
    gray01 = torch.from_numpy(small).float().div_(255.0).unsqueeze(1)
    return normalize(gray01, config)
