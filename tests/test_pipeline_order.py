"""Photo faces come in reading order, so the number drawn on a box is its row in the faces table."""

import numpy as np

from bench.frames import gallery
from fer import Faces, Pipeline, load_classifier


def test_reading_order_goes_row_by_row_left_to_right():
    # Three rows with a little vertical jitter inside each row, listed out of order.
    boxes = np.array([[300, 210, 380, 300], [10, 5, 90, 95], [200, 0, 280, 90], [10, 205, 90, 295],
                      [100, 420, 180, 510], [100, 12, 180, 100]], np.float32)
    faces = Faces(boxes, np.ones(6), np.zeros((6, 5, 2)))
    assert faces.reading_order().tolist() == [1, 5, 2, 3, 0, 4]
    assert Faces.empty().reading_order().tolist() == []


def test_a_gallery_photo_lists_its_faces_in_reading_order(detector, tiny_checkpoint, astronaut):
    head = astronaut[30:230, 125:325]
    frame, tiles = gallery([head], 2, 3, 1280, 720)
    faces = Pipeline(detector, load_classifier(tiny_checkpoint)).analyze(frame).faces
    centers = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
    tile_of = [next(t for t, (x1, y1, x2, y2) in enumerate(tiles) if x1 < cx < x2 and y1 < cy < y2) for cx, cy in centers]
    assert tile_of == list(range(6))  # the tiles are numbered row by row
