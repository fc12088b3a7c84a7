import numpy as np
import torch
import pytest

from bench.frames import gallery
from fer import DetectorSettings, Faces


def _inside(faces: Faces, image: np.ndarray) -> bool:
    h, w = image.shape[:2]
    b = faces.boxes
    return bool((b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all())


def test_one_face_in_a_real_photo(detector, astronaut):
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    assert _inside(faces, astronaut)
    x1, y1, x2, y2 = faces.boxes[0]
    # The astronaut's face is in the upper middle of the photo.
    assert 150 < (x1 + x2) / 2 < 300 and 50 < (y1 + y2) / 2 < 200
    assert faces.scores[0] > 0.95
    left_eye, right_eye = faces.landmarks[0, 0], faces.landmarks[0, 1]
    assert left_eye[0] < right_eye[0] and x1 < left_eye[0] < x2 and y1 < left_eye[1] < y2


@pytest.mark.parametrize("rows,cols,width,height", [(2, 2, 1280, 720), (2, 3, 1280, 720), (3, 4, 1280, 720)])
def test_every_face_in_a_gallery_frame(detector, astronaut, rows, cols, width, height):
    frame, _ = gallery([astronaut], rows, cols, width, height)
    faces = detector.detect(frame)
    assert len(faces) == rows * cols
    assert _inside(faces, frame)


def test_downscaled_detection_maps_boxes_back(detector, astronaut):
    full = detector.detect(astronaut, DetectorSettings(detect_size=0))
    small = detector.detect(astronaut, DetectorSettings(detect_size=256))
    assert len(full) == len(small) == 1
    assert np.abs(full.boxes - small.boxes).max() < 12  # pixels, on a ~100 px face


@pytest.mark.parametrize("shape", [(480, 640, 3), (1, 1, 3), (5, 3000, 3)])
def test_no_face_is_an_empty_result(detector, shape):
    faces = detector.detect(np.full(shape, 128, np.uint8))
    assert len(faces) == 0 and faces.boxes.shape == (0, 4) and faces.landmarks.shape == (0, 5, 2)


def test_wrong_input_is_refused(detector):
    with pytest.raises(ValueError, match="RGB"):
        detector.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="min_face_size"):
        DetectorSettings(min_face_size=4)


def test_cascade_agrees_with_facenet_reference(astronaut):
    """Our MTCNN runner finds the same faces as facenet-pytorch's own detect_face, boxes within a few pixels."""
    from facenet_pytorch import MTCNN
    from facenet_pytorch.models.utils.detect_face import detect_face

    from fer.mtcnn import MtcnnCascade

    reference_nets, our_nets = MTCNN(keep_all=True).eval(), MTCNN(keep_all=True).eval()
    cascade = MtcnnCascade(our_nets.pnet, our_nets.rnet, our_nets.onet)
    head = astronaut[30:230, 125:325]
    for image in (astronaut, gallery([head], 2, 3, 960, 540)[0]):
        with torch.inference_mode():
            boxes, points = detect_face(image, 20, reference_nets.pnet, reference_nets.rnet, reference_nets.onet,
                                        [0.6, 0.7, 0.7], 0.709, "cpu")
        reference = np.asarray(boxes[0], np.float32).reshape(-1, 5)
        reference = reference[reference[:, 4] >= 0.9]
        ours = cascade(image, 20, (0.6, 0.7, 0.7), 0.709)
        ours_boxes = ours.boxes[ours.scores >= 0.9]
        assert len(ours_boxes) == len(reference) >= 1
        distance = np.abs(ours_boxes[:, None, :] - reference[None, :, :4]).max(-1)
        side = (reference[:, 2] - reference[:, 0]).mean()
        assert distance.min(1).max() < 0.1 * side, distance.min(1)


def test_a_scrolling_gallery_screenshot_is_detected_in_tiles(detector, astronaut):
    """1080x16400, 2 columns of 16 students: shrunk whole to 640 px its faces would be 14 px wide."""
    from bench.frames import gallery

    head = astronaut[30:230, 125:325]
    frame, tiles = gallery([head], 16, 2, 1080, 16400, face_fraction=0.6)
    faces = detector.detect(frame)
    assert len(faces) == 32
    sides = faces.boxes[:, 2] - faces.boxes[:, 0]
    expected = tiles[0][2] - tiles[0][0]
    assert (sides > 0.4 * expected).all() and (sides < 1.2 * expected).all()  # real face boxes, not 390 px guesses
    centers = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
    for x1, y1, x2, y2 in tiles:  # one face per tile
        assert ((centers[:, 0] > x1) & (centers[:, 0] < x2) & (centers[:, 1] > y1) & (centers[:, 1] < y2)).sum() == 1
