"""Read user images safely: every odd input becomes RGB uint8 or a clear :class:`InputError`."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["InputError", "load_image", "as_rgb", "MAX_PIXELS"]

#: Largest image accepted, in pixels (8K is 33 MP). Bigger ones are refused before decoding.
MAX_PIXELS = 50_000_000


class InputError(ValueError):
    """The user's input cannot be analysed; the message says why, in words for the user."""


def as_rgb(array: np.ndarray) -> np.ndarray:
    """Convert a decoded image array to ``(H, W, 3)`` RGB uint8.

    Accepts gray ``(H, W)``, ``(H, W, 1)``, RGB, RGBA (alpha dropped), and 16-bit or float data
    (rescaled to 8 bits).
    """
    if not isinstance(array, np.ndarray):
        raise InputError(f"expected an image array, got {type(array).__name__}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(f"expected a gray, RGB or RGBA image, got an array of shape {array.shape}")
    if array.size == 0:
        raise InputError("the image is empty (0 pixels)")
    if array.dtype == np.uint16 or array.dtype == np.int32 or array.dtype == np.int64:
        array = (np.clip(array, 0, 65535).astype(np.float32) / 257.0).round().astype(np.uint8)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        scale = 255.0 if np.nanmax(array) <= 1.0 else 1.0
        array = np.clip(np.nan_to_num(array) * scale, 0, 255).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InputError(f"unsupported pixel type {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    elif array.shape[2] == 4:
        array = array[..., :3]
    return np.ascontiguousarray(array)


def load_image(source: str | Path | bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file (or bytes) to RGB uint8, refusing what cannot be analysed.

    Raises:
        InputError: empty, not an image, truncated, or larger than ``max_pixels``.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"no file at {path.name}")
        if path.stat().st_size == 0:
            raise InputError(f"{path.name} is empty (0 bytes)")
        data = path.read_bytes()
        name = path.name
    else:
        data, name = bytes(source), "the upload"
        if not data:
            raise InputError("the upload is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise InputError(f"{name} is {width}x{height} ({width * height / 1e6:.0f} MP); the limit is {max_pixels / 1e6:.0f} MP")
                image.load()
                if image.mode in ("I;16", "I;16B", "I;16L", "I", "L", "RGB", "RGBA"):  # as_rgb handles these
                    array = np.asarray(image)
                else:
                    array = np.asarray(image.convert("RGBA" if "A" in image.getbands() else "RGB"))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InputError(f"{name} is too large to decode safely ({error}); the limit is {max_pixels / 1e6:.0f} MP") from None
    except UnidentifiedImageError:
        raise InputError(f"{name} is not an image PIL can read (JPEG, PNG, WebP, BMP, TIFF...)") from None
    except OSError as error:
        raise InputError(f"{name} could not be decoded; it may be truncated or corrupt ({error})") from None
    return as_rgb(array)
