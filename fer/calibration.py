"""Calibrated probabilities: a per-class logit bias and a temperature that travel with the weights.

A classifier's raw softmax is neither fair to rare classes nor honest about its confidence. The
checkpoint's ``config.json`` carries, under ``fer.calibration``, what ``python -m training.calibrate``
fitted on PublicTest (never on PrivateTest)::

    "calibration": {"temperature": 1.31, "class_bias": [0.1, 0.9, ...], "uncertain_below": 0.5,
                    "fitted_on": "PublicTest, FER+ votes"}

Every backend (torch, ONNX fp32 / int8) turns its logits into probabilities with
:meth:`Calibration.probabilities`: ``softmax((logits + class_bias) / temperature)``. The bias
moves the decision between classes (so every class keeps a fair recall); the temperature, fitted
after it, changes only how sure the probabilities are, never the top label. ``uncertain_below``
is the calibrated confidence under which the views show a face as uncertain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Calibration"]


@dataclass(frozen=True)
class Calibration:
    """How logits become the probabilities a user sees.

    Attributes:
        temperature: divides the biased logits; > 1 softens over-confident outputs.
        class_bias: per-class offset added to the logits (empty: none), in label order.
        uncertain_below: calibrated top-class confidence under which a face is shown as uncertain
            (0: never).
        fitted_on: where the values were fitted, for the record.
        class_prior: the class mix of the fitting split (FER+ majority), which the probabilities
            lean towards; chart shares correct for it (:func:`fer.session.expression_shares`).

    Example:
        >>> Calibration(temperature=2.0).probabilities(np.array([[2.0, 0.0]])).round(3)
        array([[0.731, 0.269]], dtype=float32)
    """

    temperature: float = 1.0
    class_bias: tuple[float, ...] = ()
    uncertain_below: float = 0.0
    fitted_on: str = ""
    class_prior: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a positive finite number, got {self.temperature}")
        if not 0 <= self.uncertain_below < 1:
            raise ValueError(f"uncertain_below must be in [0, 1), got {self.uncertain_below}")
        if not np.all(np.isfinite(self.class_bias)):
            raise ValueError(f"class_bias must be finite, got {self.class_bias}")

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """``(N, C)`` logits -> ``(N, C)`` float32 calibrated probabilities (rows sum to 1)."""
        logits = np.asarray(logits, np.float64)
        if self.class_bias:
            if len(self.class_bias) != logits.shape[1]:
                raise ValueError(f"class_bias has {len(self.class_bias)} values for {logits.shape[1]} classes")
            logits = logits + np.asarray(self.class_bias)
        logits = logits / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {"temperature": round(float(self.temperature), 6), "class_bias": [round(float(b), 6) for b in self.class_bias],
                "uncertain_below": round(float(self.uncertain_below), 4), "fitted_on": self.fitted_on,
                "class_prior": [round(float(p), 6) for p in self.class_prior]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Calibration:
        """Read the ``fer.calibration`` section of a config (none: the identity)."""
        if not data:
            return cls()
        return cls(float(data.get("temperature", 1.0)), tuple(float(b) for b in data.get("class_bias", ())),
                   float(data.get("uncertain_below", 0.0)), str(data.get("fitted_on", "")),
                   tuple(float(p) for p in data.get("class_prior", ())))
