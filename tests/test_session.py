import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from fer import FER2013_CLASSES, Faces, FrameResult, SessionLog


def frame(timestamp, labels, track_ids):
    probs = np.zeros((len(labels), 7), np.float32)
    for i, label in enumerate(labels):
        probs[i, FER2013_CLASSES.index(label)] = 1
    faces = Faces(np.tile([[0, 0, 10, 10]], (len(labels), 1)), np.ones(len(labels)), np.zeros((len(labels), 5, 2)), probs,
                  track_ids=np.asarray(track_ids))
    return FrameResult(faces, FER2013_CLASSES, 640, 480, timestamp)


def test_shares_distribution_and_face_table():
    log = SessionLog(FER2013_CLASSES)
    log.add(frame(0.0, ["Happy", "Happy", "Sad", "Neutral"], [1, 2, 3, 4]))
    log.add(frame(0.5, ["Happy", "Sad", "Sad", "Neutral"], [1, 2, 3, 4]))
    log.add(frame(1.0, [], []))
    table = log.to_frame()
    assert list(table["Happy"]) == [0.5, 0.25, 0.0] and list(table["faces"]) == [4, 4, 0]
    assert table["dominant"][0] == "Happy" and table["dominant"][2] == ""
    distribution = dict(zip(log.distribution()["expression"], log.distribution()["share"]))
    assert distribution["Happy"] == 3 / 8 and distribution["Sad"] == 3 / 8
    faces = log.face_table()
    assert list(faces["face"]) == [1, 2, 3, 4] and faces.set_index("face").loc[1, "usual_expression"] == "Happy"
    assert log.summary()["frames"] == 3


def test_memory_stays_bounded_over_100000_frames(tmp_path):
    """100,000 frames (about 14 hours at 2 fps): rows stay bounded and no frame is lost from the totals."""
    log = SessionLog(FER2013_CLASSES, max_rows=1000, max_tracks=200)
    patterns = [frame(0.0, ["Happy", "Sad", "Neutral"], [1, 2, 3]), frame(0.0, ["Happy", "Happy"], [1, 2]), frame(0.0, [], [])]
    for i in range(100_000):
        base = patterns[i % 3]
        ids = base.faces.track_ids + (i // 5000) * 3  # new students join over time
        log.add(replace(base, faces=replace(base.faces, track_ids=ids), timestamp=i * 0.5))
        if i % 25_000 == 0:
            assert len(log.rows) <= 1000
    assert len(log.rows) <= 1000 and len(log.face_table()) <= 200
    table = log.to_frame()
    assert table["frames"].sum() == 100_000
    assert table["start"].iloc[0] == 0.0 and table["end"].iloc[-1] == pytest.approx(49_999.5)
    # Merged rows keep the right averages: every third frame has no face.
    assert np.average(table["faces"], weights=table["frames"]) == pytest.approx(5 / 3, rel=1e-3)
    csv = log.export_csv(tmp_path / "session.csv")
    assert csv.stat().st_size < 1_000_000


def test_csv_and_json_read_back_equal(tmp_path):
    log = SessionLog(FER2013_CLASSES, max_rows=8)
    for i in range(40):
        log.add(frame(i * 0.25, ["Happy", "Fear"][: 1 + i % 2], [1, 2][: 1 + i % 2]))
    expected = log.to_frame()
    back = pd.read_csv(log.export_csv(tmp_path / "s.csv"), keep_default_na=False)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    data = json.loads(log.export_json(tmp_path / "s.json").read_text())
    assert data == json.loads(json.dumps(log.to_dict()))
    pd.testing.assert_frame_equal(pd.DataFrame(data["rows"]), expected, check_dtype=False)
    assert data["summary"]["frames"] == 40


def test_reset_clears_everything():
    log = SessionLog(FER2013_CLASSES)
    log.add(frame(0.0, ["Happy"], [1]))
    log.reset()
    assert log.frames == 0 and log.to_frame().empty and log.face_table().empty


def test_share_methods_agree_on_clear_faces_and_differ_on_doubtful_ones():
    from fer.session import expression_shares

    clear = np.array([[0.98, 0.01, 0.01], [0.01, 0.98, 0.01]])
    for method in ("top1", "mean_probability", "prior_corrected"):
        np.testing.assert_allclose(expression_shares(clear, method, np.array([1 / 3] * 3)), [0.5, 0.5, 0.0], atol=0.03)
    # A calm room seen by a classifier calibrated on a mix with few calm faces: each face's
    # probability leans back to that mix; correcting for it recovers more of the calm share.
    calibrated_mix = np.array([0.3, 0.7])
    doubtful = np.array([[0.55, 0.45]] * 9 + [[0.2, 0.8]])
    mean = expression_shares(doubtful, "mean_probability")
    corrected = expression_shares(doubtful, "prior_corrected", calibrated_mix)
    assert corrected[0] > mean[0] + 0.1 and corrected.sum() == pytest.approx(1.0)
    assert expression_shares(np.zeros((0, 3)), "prior_corrected").tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="method"):
        expression_shares(clear, "median")
    with pytest.raises(ValueError, match="share_method"):
        SessionLog(FER2013_CLASSES, share_method="median")
