"""Draw boxes and labels on a frame (a copy: the caller's frame is never changed)."""

from __future__ import annotations

import cv2
import numpy as np

from fer.types import FrameResult

__all__ = ["EXPRESSION_COLORS", "UNCERTAIN_COLOR", "annotate"]

#: One RGB colour per expression, used on frames and in the charts.
EXPRESSION_COLORS: dict[str, tuple[int, int, int]] = {
    "Angry": (230, 57, 70),
    "Disgust": (106, 153, 78),
    "Fear": (157, 78, 221),
    "Happy": (255, 183, 3),
    "Sad": (33, 118, 174),
    "Surprise": (247, 127, 0),
    "Neutral": (160, 160, 160),
}
_NEUTRAL_BOX = (0, 200, 255)
#: Muted colour of a face whose label is uncertain (calibrated confidence under the threshold).
UNCERTAIN_COLOR = (235, 235, 235)  # near-white and thin: apart from Neutral's mid-grey


def annotate(image: np.ndarray, result: FrameResult, show_labels: bool = True) -> np.ndarray:
    """Boxes with number, label and confidence per face, coloured by expression.

    The number is the face's row in the faces table (photos, in reading order) or its track id
    (streams), so a box can be matched to its row.

    Args:
        image: ``(H, W, 3)`` RGB uint8 frame the result belongs to.
        result: the pipeline's answer for that frame.
        show_labels: ``False`` for the class-only view: boxes only, no per-face expression.
            An uncertain face (see :meth:`FrameResult.uncertain`) gets a thin muted box and its
            label with a question mark, e.g. ``"Sad? 38%"``, in near-white instead of the expression's colour.

    Returns:
        An annotated copy of ``image``.
    """
    canvas = np.ascontiguousarray(image).copy()
    labels, confidences = result.faces.top(result.label_names)
    uncertain = result.uncertain(confidences)
    base_thickness = max(1, round(max(canvas.shape[:2]) / 400))
    font_scale = max(0.4, max(canvas.shape[:2]) / 1400)
    for i, box in enumerate(result.faces.boxes.astype(int)):
        thickness = base_thickness
        # Each face's number: its track id in a stream, its place in the list (the table) in a photo.
        number = int(result.faces.track_ids[i]) if result.faces.track_ids[i] >= 0 else i + 1
        if show_labels and labels and uncertain[i]:
            colour, text, thickness = UNCERTAIN_COLOR, f"{number} {labels[i]}? {confidences[i]:.0%}", max(1, base_thickness // 2)
        elif show_labels and labels:
            colour = EXPRESSION_COLORS.get(labels[i], _NEUTRAL_BOX)
            text = f"{number} {labels[i]} {confidences[i]:.0%}"
        else:
            colour, text = _NEUTRAL_BOX, ""
        cv2.rectangle(canvas, (box[0], box[1]), (box[2], box[3]), colour, thickness)
        if text:
            (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
            top = max(0, box[1] - height - baseline - 2)
            cv2.rectangle(canvas, (box[0], top), (box[0] + width + 4, top + height + baseline + 2), colour, -1)
            cv2.putText(canvas, text, (box[0] + 2, top + height + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return canvas
