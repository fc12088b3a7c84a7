"""Test and benchmark frames built from real faces (never random noise)."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["PADDING", "centers_inside", "face_free_photos", "gallery", "padded", "place"]


def place(face: np.ndarray, width: int, height: int, side: int, x: int | None = None, y: int | None = None,
          background: int = 30) -> np.ndarray:
    """A ``width x height`` RGB frame with ``face`` resized to ``side`` pixels at ``(x, y)`` (centred by default)."""
    frame = np.full((height, width, 3), background, np.uint8)
    face = face if face.ndim == 3 else np.repeat(face[..., None], 3, axis=2)
    small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA if side < face.shape[0] else cv2.INTER_LINEAR)
    x = (width - side) // 2 if x is None else x
    y = (height - side) // 2 if y is None else y
    frame[y : y + side, x : x + side] = small
    return frame


def gallery(faces: list[np.ndarray], rows: int, cols: int, width: int, height: int,
            face_fraction: float = 0.8) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A video-call gallery frame: ``rows x cols`` tiles, each with one face.

    Args:
        faces: faces (RGB or gray), used in turn for the tiles (cycled if fewer than tiles).
        face_fraction: face side as a fraction of the tile's smaller side.

    Returns:
        The frame, and each tile's face box ``(x1, y1, x2, y2)`` in tile order.
    """
    frame = np.full((height, width, 3), 30, np.uint8)
    tile_w, tile_h = width // cols, height // rows
    side = int(min(tile_w, tile_h) * face_fraction)
    boxes = []
    for index in range(rows * cols):
        r, c = divmod(index, cols)
        face = faces[index % len(faces)]
        face = face if face.ndim == 3 else np.repeat(face[..., None], 3, axis=2)
        interpolation = cv2.INTER_AREA if side < face.shape[0] else cv2.INTER_LINEAR
        y, x = r * tile_h + (tile_h - side) // 2, c * tile_w + (tile_w - side) // 2
        frame[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=interpolation)
        boxes.append((x, y, x + side, y + side))
    return frame, boxes


def centers_inside(boxes: np.ndarray, tiles) -> np.ndarray:
    """``(len(tiles), len(boxes))`` bool: whether each detection's centre lies inside each tile's face box."""
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    t = np.asarray(tiles, np.float32).reshape(-1, 4)
    x, y = centers[None, :, 0], centers[None, :, 1]
    return (x > t[:, None, 0]) & (x < t[:, None, 2]) & (y > t[:, None, 1]) & (y < t[:, None, 3])


#: skimage sample photos with no human face in them (``camera`` and ``astronaut`` have one).
FACE_FREE = ("coffee", "chelsea", "rocket", "coins", "page", "text", "hubble_deep_field", "immunohistochemistry",
             "brick", "grass", "gravel", "colorwheel", "retina", "cell", "moon", "clock")


def face_free_photos() -> dict[str, np.ndarray]:
    """Real photos without a face, as RGB uint8, for counting false detections.

    The skimage samples in :data:`FACE_FREE`, plus the astronaut photo with the head painted out
    (a suit, a flag, a person's shape) as it is and as a JPEG at quality 40 (blocky edges).
    """
    import skimage.data

    photos = {}
    for name in FACE_FREE:
        image = getattr(skimage.data, name)()
        photos[name] = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    headless = skimage.data.astronaut().copy()
    headless[:260, 120:330] = 128
    photos["astronaut, head painted out"] = headless
    _, encoded = cv2.imencode(".jpg", cv2.cvtColor(headless, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 40])
    photos["astronaut, head painted out, JPEG q40"] = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return photos


#: Gray border around each upscaled FER face, as a fraction of the face's side.
PADDING = 0.35


def padded(face: np.ndarray, pad: float = PADDING) -> np.ndarray:
    """A 48x48 FER face upscaled 4x inside a mid-gray border (FER crops are tight: MTCNN needs context).

    Gray padding found 85% of 300 PrivateTest faces where replicated edges found 80%.
    """
    big = cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC)
    border = int(192 * pad)
    return cv2.copyMakeBorder(big, border, border, border, border, cv2.BORDER_CONSTANT, value=128)
