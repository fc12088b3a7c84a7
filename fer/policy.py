"""What a result may contain when it leaves the library: the class-only policy, enforced in one place.

In the class-only view no per-face label, box, number or track id leaves the server: not on screen,
not in the API's JSON, not in an export or the video CSV. Aggregates (how many faces, the class's
share of each expression over time) stay. Every view and export asks this policy for its output,
so a new view cannot leak what an old one hid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer.annotate import annotate
from fer.session import SessionLog
from fer.types import FrameResult

__all__ = ["OutputPolicy"]

#: Session-table columns that name a face (``tracks``: ``id:label`` per face).
_PER_FACE_COLUMNS = ("tracks",)


@dataclass(frozen=True)
class OutputPolicy:
    """How much of a result may be shown or exported.

    Attributes:
        class_only: aggregates only: no per-face label, box, number or track id.

    Example:
        >>> OutputPolicy(class_only=True).frame_json(result)["faces"]  # doctest: +SKIP
        []
    """

    class_only: bool = False

    def frame_json(self, result: FrameResult) -> dict:
        """The frame's JSON: per face (box, landmarks, label, scores, track id), or in the
        class-only view the face count and how many faces show each expression."""
        full = result.to_json()
        if not self.class_only:
            return full
        counts: dict[str, int] = {}
        for face in full["faces"]:
            counts[face["label"]] = counts.get(face["label"], 0) + 1
        return {"width": full["width"], "height": full["height"], "num_faces": full["num_faces"], "expression_counts": counts,
                "faces": [], "labels": full["labels"], "class_only": True, "timings_ms": full["timings_ms"]}

    def annotated(self, image: np.ndarray, result: FrameResult) -> np.ndarray:
        """The frame with numbered, labelled boxes; in the class-only view the frame as it came."""
        return image if self.class_only else annotate(image, result)

    def session_table(self, log: SessionLog) -> pd.DataFrame:
        """The session's per-frame table (the CSV export), without per-face columns when class-only."""
        table = log.to_frame()
        return table.drop(columns=list(_PER_FACE_COLUMNS)) if self.class_only else table

    def face_table(self, log: SessionLog) -> pd.DataFrame:
        """Per tracked face: id, first / last seen, frames, usual expression; class-only: headers, no row."""
        table = log.face_table()
        return table.iloc[0:0] if self.class_only else table

    def session_dict(self, log: SessionLog) -> dict:
        """The session as JSON (the JSON export)."""
        return {"labels": list(log.label_names), "summary": log.summary(), "class_only": self.class_only,
                "rows": self.session_table(log).to_dict(orient="records"),
                "faces": self.face_table(log).to_dict(orient="records")}

    def export_csv(self, log: SessionLog, path: str | Path) -> Path:
        path = Path(path)
        self.session_table(log).to_csv(path, index=False)
        return path

    def export_json(self, log: SessionLog, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.session_dict(log), indent=1))
        return path
