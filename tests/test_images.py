import io

import numpy as np
import pytest
from PIL import Image

from fer import InputError, as_rgb, load_image


def png_bytes(array, mode=None):
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG") if mode else Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_every_pixel_layout_becomes_rgb(tmp_path):
    gray = np.full((20, 30), 7, np.uint8)
    rgba = np.full((20, 30, 4), 9, np.uint8)
    sixteen = np.full((20, 30), 65535, np.uint16)
    for data in (png_bytes(gray), png_bytes(rgba), png_bytes(sixteen)):
        image = load_image(data)
        assert image.shape == (20, 30, 3) and image.dtype == np.uint8
    assert load_image(png_bytes(sixteen))[0, 0, 0] == 255


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
])
def test_bad_bytes_are_refused(content, message):
    with pytest.raises(InputError, match=message):
        load_image(content)


def test_truncated_jpeg_is_refused(astronaut):
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, format="JPEG")
    with pytest.raises(InputError, match="truncated|corrupt|not an image"):
        load_image(buffer.getvalue()[:2000])


def test_huge_image_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (20000, 20000)).save(path)
    with pytest.raises(InputError, match="too large|20000x20000"):
        load_image(path)


def test_array_conversion():
    assert as_rgb(np.zeros((4, 4), np.float32)).dtype == np.uint8
    assert as_rgb(np.zeros((4, 4, 1), np.uint8)).shape == (4, 4, 3)
    with pytest.raises(InputError, match="shape"):
        as_rgb(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(InputError, match="empty"):
        as_rgb(np.zeros((0, 4, 3), np.uint8))
