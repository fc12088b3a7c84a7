"""Load FER-2013 from any of the three forms people hold it in.

* our ``fer2013.npz`` (arrays ``pixels``, ``emotion``, ``usage``; see shared/data/README.md);
* Kaggle's ``fer2013.csv`` (columns ``emotion,pixels,Usage``);
* Kaggle's image folders (``train/<class>/*.png`` and ``test/<class>/*.png``).

Every loader returns the same :class:`FerData`, kept on the official protocol: train on
``Training``, select on ``PublicTest``, report ``PrivateTest``. The image-folder release has no
PublicTest/PrivateTest split, so its ``test/`` folder becomes PrivateTest and a fixed, seeded
10% of ``train/`` becomes PublicTest.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fer.labels import FER2013_CLASSES

__all__ = ["USAGES", "DataFormatError", "FerData", "ferplus_majority", "ferplus_share", "ferplus_soft_labels", "load_fer2013",
           "read_ferplus_votes"]

logger = logging.getLogger(__name__)

USAGES = ("Training", "PublicTest", "PrivateTest")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


class DataFormatError(ValueError):
    """The data file does not hold FER-2013 in the expected form; the message names the row."""


@dataclass(frozen=True)
class FerData:
    """FER-2013 faces with labels and split.

    Attributes:
        pixels: ``(N, 48, 48)`` uint8 grayscale faces.
        labels: ``(N,)`` int64 class index into ``classes``.
        usage: ``(N,)`` int64 index into :data:`USAGES` (0 Training, 1 PublicTest, 2 PrivateTest).
        classes: the 7 class names, in label order.
        soft_labels: optional ``(N, 7)`` float32 FER+ vote distributions over the 7 classes (rows
            without a vote for any of them are all zero), see :func:`ferplus_soft_labels`.
        ferplus_majority: optional ``(N,)`` int64 FER+ majority class, ``-1`` where the majority
            is contempt, unknown or not-a-face (see :func:`ferplus_majority`).
        ferplus_share: optional ``(N,)`` float32 share of a row's FER+ votes that fall in the 7
            classes (0 for the rows FER+ dropped).
    """

    pixels: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    classes: tuple[str, ...] = FER2013_CLASSES
    soft_labels: np.ndarray | None = None
    ferplus_majority: np.ndarray | None = None
    ferplus_share: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.pixels)
        if self.pixels.ndim != 3 or self.pixels.dtype != np.uint8:
            raise ValueError(f"pixels must be (N, H, W) uint8, got {self.pixels.shape} {self.pixels.dtype}")
        if self.labels.shape != (n,) or self.usage.shape != (n,):
            raise ValueError(f"labels and usage must be ({n},), got {self.labels.shape} and {self.usage.shape}")
        if self.soft_labels is not None and self.soft_labels.shape != (n, len(self.classes)):
            raise ValueError(f"soft_labels must be ({n}, {len(self.classes)}), got {self.soft_labels.shape}")
        for name in ("ferplus_majority", "ferplus_share"):
            value = getattr(self, name)
            if value is not None and value.shape != (n,):
                raise ValueError(f"{name} must be ({n},), got {value.shape}")

    def select(self, keep: np.ndarray) -> FerData:
        """The rows where the boolean mask ``keep`` is true (or the given row indices)."""
        def pick(value: np.ndarray | None) -> np.ndarray | None:
            return None if value is None else value[keep]

        return FerData(self.pixels[keep], self.labels[keep], self.usage[keep], self.classes, pick(self.soft_labels),
                       pick(self.ferplus_majority), pick(self.ferplus_share))

    def split(self, usage: str) -> FerData:
        """The rows of one split, e.g. ``data.split("PrivateTest")``."""
        if usage not in USAGES:
            raise ValueError(f"usage must be one of {USAGES}, got {usage!r}")
        return self.select(self.usage == USAGES.index(usage))

    def head(self, count: int) -> FerData:
        """The first ``count`` rows (all of them when ``count`` is 0), e.g. for a quick run."""
        if not count:
            return self
        return self.select(np.arange(min(count, len(self))))

    def __len__(self) -> int:
        return len(self.pixels)


def load_fer2013(path: str | Path, ferplus_votes: str | Path | None = None) -> FerData:
    """Load FER-2013 from an ``.npz``, a Kaggle ``.csv`` or a Kaggle image-folder root.

    Args:
        path: ``fer2013.npz``, ``fer2013.csv`` or a folder holding ``train/`` and ``test/``.
        ferplus_votes: optional ``ferplus_votes.npz`` (same row order as the csv / npz) to attach
            FER+ soft labels, majority labels and vote shares.

    Returns:
        The faces, labels and split.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataFormatError: a row has the wrong pixel count, an unknown label or an unknown Usage.

    Example:
        >>> data = load_fer2013("../shared/data/fer2013.npz")  # doctest: +SKIP
        >>> len(data.split("PrivateTest"))  # doctest: +SKIP
        3589
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no FER-2013 data at {path}")
    if path.is_dir():
        data = _load_folders(path)
    elif path.suffix == ".npz":
        data = _load_npz(path)
    elif path.suffix == ".csv":
        data = _load_csv(path)
    else:
        raise DataFormatError(f"{path}: expected a .npz, a .csv or an image-folder root")
    if ferplus_votes is not None:
        if path.is_dir():
            raise DataFormatError("FER+ votes follow the csv row order; the image folders have none")
        votes = read_ferplus_votes(ferplus_votes, len(data))
        data = FerData(data.pixels, data.labels, data.usage, data.classes, ferplus_soft_labels(votes),
                       ferplus_majority(votes), ferplus_share(votes))
    logger.info("loaded %d faces from %s", len(data), path)
    return data


def _check_labels(labels: np.ndarray, usage: np.ndarray, where: str) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= len(FER2013_CLASSES)))
    if bad.size:
        raise DataFormatError(f"{where}: row {bad[0]} has unknown label {labels[bad[0]]} (expected 0..6)")
    bad = np.flatnonzero((usage < 0) | (usage >= len(USAGES)))
    if bad.size:
        raise DataFormatError(f"{where}: row {bad[0]} has unknown usage code {usage[bad[0]]} (expected 0..2)")


def _load_npz(path: Path) -> FerData:
    with np.load(path, allow_pickle=False) as archive:
        missing = {"pixels", "emotion", "usage"} - set(archive.files)
        if missing:
            raise DataFormatError(f"{path}: missing arrays {sorted(missing)}")
        pixels, labels, usage = archive["pixels"], archive["emotion"].astype(np.int64), archive["usage"].astype(np.int64)
        if "classes" in archive.files and tuple(archive["classes"]) != FER2013_CLASSES:
            raise DataFormatError(f"{path}: classes {tuple(archive['classes'])} are not {FER2013_CLASSES}")
    if pixels.ndim != 3 or pixels.shape[1:] != (48, 48):
        raise DataFormatError(f"{path}: pixels must be (N, 48, 48), got {pixels.shape}")
    _check_labels(labels, usage, str(path))
    return FerData(pixels.astype(np.uint8, copy=False), labels, usage)


def _load_csv(path: Path) -> FerData:
    pixels, labels, usage = [], [], []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        needed = {"emotion", "pixels", "Usage"}
        if reader.fieldnames is None or not needed <= set(reader.fieldnames):
            raise DataFormatError(f"{path}: expected the columns emotion,pixels,Usage, got {reader.fieldnames}")
        for row_number, row in enumerate(reader):
            where = f"{path}: row {row_number} (line {row_number + 2})"
            try:
                label = int(row["emotion"])
            except (TypeError, ValueError):
                raise DataFormatError(f"{where}: emotion {row['emotion']!r} is not an integer") from None
            if not 0 <= label < len(FER2013_CLASSES):
                raise DataFormatError(f"{where}: unknown label {label} (expected 0..6)")
            if row["Usage"] not in USAGES:
                raise DataFormatError(f"{where}: unknown Usage {row['Usage']!r} (expected one of {USAGES})")
            values = (row["pixels"] or "").split()
            if len(values) != 48 * 48:
                raise DataFormatError(f"{where}: {len(values)} pixel values, expected 2304 (48x48)")
            try:
                face = np.array(values, dtype=np.int64)
            except ValueError:
                raise DataFormatError(f"{where}: pixels are not all integers") from None
            if face.min() < 0 or face.max() > 255:
                raise DataFormatError(f"{where}: pixel values outside 0..255")
            pixels.append(face.astype(np.uint8).reshape(48, 48))
            labels.append(label)
            usage.append(USAGES.index(row["Usage"]))
    if not pixels:
        raise DataFormatError(f"{path}: no rows")
    return FerData(np.stack(pixels), np.array(labels, np.int64), np.array(usage, np.int64))


def _folder_class_index(name: str, where: Path) -> int:
    lowered = {c.lower(): i for i, c in enumerate(FER2013_CLASSES)}
    if name.lower() not in lowered:
        raise DataFormatError(f"{where}: unknown class folder {name!r} (expected one of {FER2013_CLASSES})")
    return lowered[name.lower()]


def _read_folder(root: Path) -> tuple[np.ndarray, np.ndarray]:
    pixels, labels = [], []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        label = _folder_class_index(class_dir.name, class_dir)
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() not in _IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as image:
                    face = np.asarray(image.convert("L"))
            except OSError as error:
                raise DataFormatError(f"{file}: not a readable image ({error})") from None
            if face.shape != (48, 48):
                raise DataFormatError(f"{file}: image is {face.shape[1]}x{face.shape[0]}, expected 48x48")
            pixels.append(face)
            labels.append(label)
    if not pixels:
        raise DataFormatError(f"{root}: no images in class folders")
    return np.stack(pixels), np.array(labels, np.int64)


def _load_folders(root: Path, public_fraction: float = 0.1, seed: int = 0) -> FerData:
    train_dir, test_dir = root / "train", root / "test"
    if not train_dir.is_dir() or not test_dir.is_dir():
        raise DataFormatError(f"{root}: expected train/<class>/ and test/<class>/ folders")
    train_pixels, train_labels = _read_folder(train_dir)
    test_pixels, test_labels = _read_folder(test_dir)
    usage = np.zeros(len(train_pixels), np.int64)
    rng = np.random.default_rng(seed)
    usage[rng.permutation(len(usage))[: int(round(public_fraction * len(usage)))]] = 1
    return FerData(
        np.concatenate([train_pixels, test_pixels]),
        np.concatenate([train_labels, test_labels]),
        np.concatenate([usage, np.full(len(test_pixels), 2, np.int64)]),
    )


# FER+ vote columns -> FER-2013 class index. Contempt, unknown and not-a-face have no class of ours.
_FERPLUS_TO_FER = {"anger": 0, "disgust": 1, "fear": 2, "happiness": 3, "sadness": 4, "surprise": 5, "neutral": 6}
_FERPLUS_OTHER = ("contempt", "unknown", "NF")


def read_ferplus_votes(path: str | Path, expected_rows: int) -> np.ndarray:
    """FER+ votes as ``(N, 10)`` float32 columns: the 7 FER-2013 classes in their order, then
    contempt, unknown and not-a-face."""
    with np.load(path, allow_pickle=False) as archive:
        votes, names = archive["votes"].astype(np.float32), [str(n) for n in archive["labels"]]
    if len(votes) != expected_rows:
        raise DataFormatError(f"{path}: {len(votes)} vote rows for {expected_rows} faces")
    wanted = [*sorted(_FERPLUS_TO_FER, key=_FERPLUS_TO_FER.get), *_FERPLUS_OTHER]
    missing = set(wanted) - set(names)
    if missing:
        raise DataFormatError(f"{path}: vote columns {sorted(missing)} missing (got {names})")
    return votes[:, [names.index(name) for name in wanted]]


def ferplus_soft_labels(votes: np.ndarray) -> np.ndarray:
    """``(N, 7)`` vote distributions over the FER-2013 classes from :func:`read_ferplus_votes`.

    Contempt, unknown and not-a-face votes are dropped and the rest renormalised; a row with no
    vote for any of the 7 classes is all zero.
    """
    soft = votes[:, :7].astype(np.float32)
    total = soft.sum(axis=1, keepdims=True)
    return np.divide(soft, total, out=np.zeros_like(soft), where=total > 0)


def ferplus_majority(votes: np.ndarray) -> np.ndarray:
    """The FER+ majority label per row: the most-voted of the 10 columns, ties to the first in
    FER-2013 class order, and ``-1`` where that is contempt, unknown or not-a-face (70 of the 3,589
    PrivateTest rows, leaving 3,519)."""
    majority = votes.argmax(axis=1).astype(np.int64)
    majority[majority >= 7] = -1
    return majority


def ferplus_share(votes: np.ndarray) -> np.ndarray:
    """The share of each row's votes cast for one of the 7 classes (0 where FER+ has no votes)."""
    total = votes.sum(axis=1)
    return np.divide(votes[:, :7].sum(axis=1), total, out=np.zeros_like(total), where=total > 0).astype(np.float32)
