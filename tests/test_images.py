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


def jpeg_with_orientation(array, orientation):
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(buffer, format="JPEG", exif=exif, quality=95)
    return buffer.getvalue()


@pytest.mark.parametrize("orientation,rotate", [(6, 1), (8, 3), (3, 2)])
def test_phone_photos_are_turned_upright_by_their_exif_orientation(astronaut, detector, orientation, rotate):
    from fer.images import load_image_with_notes

    # A phone stores the pixels sideways and says how to turn them: Orientation 6 means "rotate 90°
    # clockwise to view", so the stored pixels are the upright photo turned 90° anticlockwise.
    stored = np.ascontiguousarray(np.rot90(astronaut, rotate))
    image, notes = load_image_with_notes(jpeg_with_orientation(stored, orientation))
    assert image.shape == astronaut.shape
    assert np.abs(image.astype(int) - astronaut.astype(int)).mean() < 6  # upright again (JPEG noise aside)
    assert any("EXIF" in note for note in notes)
    faces = detector.detect(image)
    assert len(faces) == 1
    x1, y1, x2, y2 = faces.boxes[0]
    assert 150 < (x1 + x2) / 2 < 300 and 50 < (y1 + y2) / 2 < 200  # where the astronaut's face is upright


def test_float_tiffs_keep_their_picture(astronaut, tmp_path):
    gray = astronaut.mean(2).astype(np.float32)
    for scale, name in ((1 / 255, "unit.tif"), (1.0, "bytes.tif"), (1000.0, "sensor.tif")):
        Image.fromarray(gray * scale, mode="F").save(tmp_path / name)
        image = load_image(tmp_path / name)
        assert image.std() > 30, name  # not black, not white
        assert np.corrcoef(image[..., 0].ravel(), gray.ravel())[0, 1] > 0.99


def test_animations_say_that_frame_one_was_used(astronaut):
    from fer.images import load_image_with_notes

    buffer = io.BytesIO()
    frames = [Image.fromarray(astronaut), Image.fromarray(astronaut[::-1].copy())]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    image, notes = load_image_with_notes(buffer.getvalue())
    assert image.shape == astronaut.shape
    assert any("2 frames" in note and "frame 1" in note for note in notes)
    assert load_image_with_notes(png_bytes(astronaut))[1] == []
