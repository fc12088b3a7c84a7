"""The three ways people hold FER-2013 load the same; bad rows stop the load with the row named."""

import csv

import numpy as np
import pytest
from PIL import Image

from fer.labels import FER2013_CLASSES
from training.data import DataFormatError, load_fer2013


def rows(n=21, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)
    labels = np.arange(n) % 7
    usage = np.array([0] * (n - 6) + [1] * 3 + [2] * 3)
    return pixels, labels, usage


def write_csv(path, pixels, labels, usage, corrupt=None):
    names = ("Training", "PublicTest", "PrivateTest")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for i, (face, label, use) in enumerate(zip(pixels, labels, usage)):
            row = [str(label), " ".join(map(str, face.ravel())), names[use]]
            if corrupt and corrupt[0] == i:
                row = corrupt[1](row)
            writer.writerow(row)
    return path


def test_npz_csv_and_folders_load_the_same_faces(tmp_path):
    pixels, labels, usage = rows()
    np.savez_compressed(tmp_path / "fer.npz", pixels=pixels, emotion=labels.astype(np.uint8), usage=usage.astype(np.uint8),
                        classes=np.array(FER2013_CLASSES), usages=np.array(["Training", "PublicTest", "PrivateTest"]))
    from_npz = load_fer2013(tmp_path / "fer.npz")
    from_csv = load_fer2013(write_csv(tmp_path / "fer2013.csv", pixels, labels, usage))
    for data in (from_npz, from_csv):
        np.testing.assert_array_equal(data.pixels, pixels)
        np.testing.assert_array_equal(data.labels, labels)
        np.testing.assert_array_equal(data.usage, usage)
    assert len(from_csv.split("PrivateTest")) == 3

    for folder, keep in (("train", usage < 2), ("test", usage == 2)):
        for i in np.flatnonzero(keep):
            target = tmp_path / "folders" / folder / FER2013_CLASSES[labels[i]].lower()
            target.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels[i]).save(target / f"{i:05d}.png")
    from_folders = load_fer2013(tmp_path / "folders")
    assert len(from_folders) == len(pixels)
    assert len(from_folders.split("PrivateTest")) == 3  # test/ is PrivateTest
    assert len(from_folders.split("PublicTest")) == 2  # a seeded 10% of train/
    test_faces = {f.tobytes() for f in from_folders.split("PrivateTest").pixels}
    assert test_faces == {pixels[i].tobytes() for i in np.flatnonzero(usage == 2)}


@pytest.mark.parametrize("corrupt,message", [
    (lambda r: [r[0], " ".join(r[1].split()[:-1]), r[2]], r"row 4 .*2303 pixel values"),
    (lambda r: ["9", r[1], r[2]], r"row 4 .*unknown label 9"),
    (lambda r: [r[0], r[1], "Validation"], r"row 4 .*unknown Usage 'Validation'"),
])
def test_bad_csv_rows_name_the_row(tmp_path, corrupt, message):
    pixels, labels, usage = rows()
    path = write_csv(tmp_path / "bad.csv", pixels, labels, usage, corrupt=(4, corrupt))
    with pytest.raises(DataFormatError, match=message):
        load_fer2013(path)


def test_bad_npz_and_folders_are_refused(tmp_path):
    pixels, labels, usage = rows()
    labels[5] = 12
    np.savez(tmp_path / "bad.npz", pixels=pixels, emotion=labels, usage=usage)
    with pytest.raises(DataFormatError, match="row 5 has unknown label 12"):
        load_fer2013(tmp_path / "bad.npz")
    (tmp_path / "f" / "train" / "bored").mkdir(parents=True)
    (tmp_path / "f" / "test").mkdir(parents=True)
    with pytest.raises(DataFormatError, match="unknown class folder 'bored'"):
        load_fer2013(tmp_path / "f")
    with pytest.raises(FileNotFoundError):
        load_fer2013(tmp_path / "missing.csv")
