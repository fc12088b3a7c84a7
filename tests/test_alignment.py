import cv2
import numpy as np

from fer import AlignSettings, align_faces


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
