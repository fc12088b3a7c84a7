"""Read user images safely: every odd input becomes RGB uint8 or a clear :class:`InputError`."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["InputError", "load_image", "load_image_with_notes", "as_rgb", "MAX_PIXELS"]

#: Largest image accepted, in pixels (a 24 MP camera photo; a 1080x16400 scrolling screenshot is
#: 18 MP). Bigger ones are refused before decoding: a 143 KB PNG of 50 MP cost about 600 MB to
#: decode and convert, so 4 at once took 3.5 GB; at 24 MP four stay inside the README's budget.
MAX_PIXELS = 24_000_000


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
        # Float images come as [0, 1], as [0, 255], or in a sensor's own range (a float TIFF):
        # the first two are scaled as they mean, anything wider is stretched to its own min..max.
        finite = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        low, high = float(finite.min()), float(finite.max())
        if low >= 0 and high <= 1.0:
            finite = finite * 255.0
        elif low < 0 or high > 255.0:
            finite = (finite - low) * (255.0 / (high - low)) if high > low else np.zeros_like(finite)
        array = np.clip(finite, 0, 255).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InputError(f"unsupported pixel type {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    elif array.shape[2] == 4:
        array = array[..., :3]
    return np.ascontiguousarray(array)


def load_image(source: str | Path | bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file (or bytes) to upright RGB uint8, refusing what cannot be analysed.

    See :func:`load_image_with_notes`, which also says what was done to the image.

    Raises:
        InputError: empty, not an image, truncated, or larger than ``max_pixels``.
    """
    return load_image_with_notes(source, max_pixels)[0]


def load_image_with_notes(source: str | Path | bytes, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, list[str]]:
    """Decode an image file (or bytes) to RGB uint8, and say what the user should know about it.

    * The image is turned upright by its EXIF orientation first (phone photos are stored sideways),
      so boxes are drawn on the image as the user sees it.
    * An animated GIF / WebP or a multi-page TIFF is analysed on its first frame, with a note.
    * 16-bit and float images are rescaled to 8 bits (see :func:`as_rgb`).

    Returns:
        The ``(H, W, 3)`` RGB uint8 image, and notes for the user (empty when nothing to say).

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
    notes = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise InputError(f"{name} is {width}x{height} ({width * height / 1e6:.1f} MP); the limit is {max_pixels / 1e6:.0f} MP")
                frames = getattr(image, "n_frames", 1)
                if frames > 1:
                    notes.append(f"{name} holds {frames} frames (an animation or a multi-page file): frame 1 was analysed")
                image.load()
                orientation = image.getexif().get(0x0112, 1)  # EXIF Orientation
                upright = ImageOps.exif_transpose(image) if orientation not in (0, 1) else image
                if upright is not image:
                    notes.append(f"turned upright by its EXIF orientation ({orientation})")
                if upright.mode in ("I;16", "I;16B", "I;16L", "I", "F", "L", "RGB", "RGBA"):  # as_rgb handles these
                    array = np.asarray(upright)
                else:
                    array = np.asarray(upright.convert("RGBA" if "A" in upright.getbands() else "RGB"))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InputError(f"{name} is too large to decode safely ({error}); the limit is {max_pixels / 1e6:.0f} MP") from None
    except UnidentifiedImageError:
        raise InputError(f"{name} is not an image PIL can read (JPEG, PNG, WebP, BMP, TIFF...)") from None
    except OSError as error:
        raise InputError(f"{name} could not be decoded; it may be truncated or corrupt ({error})") from None
    return as_rgb(array), notes
