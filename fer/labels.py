"""Expression class names: the FER-2013 order, and the mapping of other models' label names onto it."""

from __future__ import annotations

__all__ = ["FER2013_CLASSES", "canonical_label"]

#: The 7 FER-2013 classes in the dataset's label order (0..6). A checkpoint carries its own
#: label names in its config; this tuple is what training writes there.
FER2013_CLASSES: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")

_SYNONYMS = {
    "angry": "Angry", "anger": "Angry", "mad": "Angry",
    "disgust": "Disgust", "disgusted": "Disgust",
    "fear": "Fear", "fearful": "Fear", "afraid": "Fear", "scared": "Fear",
    "happy": "Happy", "happiness": "Happy", "joy": "Happy",
    "sad": "Sad", "sadness": "Sad",
    "surprise": "Surprise", "surprised": "Surprise",
    "neutral": "Neutral", "calm": "Neutral",
}


def canonical_label(name: str) -> str | None:
    """Map another model's label name onto a FER-2013 class, or ``None`` if it has no counterpart.

    Example:
        >>> canonical_label("happiness"), canonical_label("LABEL_0")
        ('Happy', None)
    """
    return _SYNONYMS.get(name.strip().lower())
