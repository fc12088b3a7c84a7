import cv2
import numpy as np
import pytest

from fer import AlignSettings, align_faces
from fer.types import Faces


def test_crops_are_square_and_sized(detector, astronaut):
    crops = align_faces(astronaut, detector.detect(astronaut), AlignSettings(crop_size=64))
    assert len(crops) == 1 and crops[0].shape == (64, 64, 3) and crops[0].dtype == np.uint8


def test_alignment_levels_a_tilted_face(detector, astronaut):
    """Tilt the photo by 20 degrees; after alignment the eyes are level again."""
    rotation = cv2.getRotationMatrix2D((256, 256), 20, 1.0)
    tilted = cv2.warpAffine(astronaut, rotation, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    faces = detector.detect(tilted)
    assert len(faces) == 1
    (lx, ly), (rx, ry) = faces.landmarks[0, 0], faces.landmarks[0, 1]
    assert abs(np.degrees(np.arctan2(ry - ly, rx - lx))) > 10  # tilted before
    crop = align_faces(tilted, faces, AlignSettings(crop_size=256, margin=0.6))[0]
    again = detector.detect(crop)
    assert len(again) == 1
    (lx, ly), (rx, ry) = again.landmarks[0, 0], again.landmarks[0, 1]
    assert abs(np.degrees(np.arctan2(ry - ly, rx - lx))) < 5  # level after


def test_large_faces_are_shrunk_without_aliasing():
    """A 400-pixel face with 1-pixel stripes (a knitted scarf, a fine pattern) becomes an even gray
    crop, as a 48-pixel view of it looks, not moire: sampled straight from the frame it would."""
    stripes = np.zeros((600, 600, 3), np.uint8)
    stripes[:, ::2] = 255
    faces = Faces(np.array([[100, 100, 500, 500]], np.float32), np.array([1.0], np.float32), np.zeros((1, 5, 2), np.float32))
    crop = align_faces(stripes, faces)[0]
    assert crop.shape == (48, 48, 3)
    assert abs(float(crop.mean()) - 127.5) < 8 and float(crop.std()) < 20  # a straight bilinear warp: std 90


def test_crop_framing_is_validated():
    with pytest.raises(ValueError, match="margin"):
        AlignSettings(margin=-0.6)
    with pytest.raises(ValueError, match="crop_size"):
        AlignSettings(crop_size=4)
