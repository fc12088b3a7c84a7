"""Training, evaluation and export of the FER-2013 expression classifier (see MODEL_CARD.md)."""
