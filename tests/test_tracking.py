import numpy as np
import pytest

from fer import Faces, FaceTracker, TrackerSettings


def faces_at(boxes, probabilities):
    boxes = np.asarray(boxes, np.float32)
    return Faces(boxes, np.ones(len(boxes)), np.zeros((len(boxes), 5, 2)), np.asarray(probabilities, np.float32))


HAPPY = [0, 0, 0, 1, 0, 0, 0]
SAD = [0, 0, 0, 0, 1, 0, 0]


def test_ids_survive_small_moves_and_new_faces_get_new_ids():
    tracker = FaceTracker()
    first = tracker.update(faces_at([[10, 10, 60, 60], [200, 10, 250, 60]], [HAPPY, SAD]), 0.0)
    moved = tracker.update(faces_at([[205, 12, 255, 62], [14, 11, 64, 61]], [SAD, HAPPY]), 0.25)
    assert list(moved.track_ids) == [first.track_ids[1], first.track_ids[0]]
    third = tracker.update(faces_at([[14, 11, 64, 61], [205, 12, 255, 62], [400, 10, 450, 60]], [HAPPY, SAD, SAD]), 0.5)
    assert third.track_ids[2] not in set(first.track_ids)
    assert len(set(third.track_ids)) == 3


def test_a_small_fast_face_keeps_its_id_but_neighbours_do_not_swap():
    tracker = FaceTracker()
    first = tracker.update(faces_at([[100, 100, 140, 140]], [HAPPY]), 0.0)
    moved = tracker.update(faces_at([[118, 104, 158, 144]], [HAPPY]), 0.25)  # IoU ~0.35 -> then 0.2 below
    further = tracker.update(faces_at([[140, 104, 180, 144]], [HAPPY]), 0.5)
    assert first.track_ids[0] == moved.track_ids[0] == further.track_ids[0]
    # A face a full box away is someone else.
    other = tracker.update(faces_at([[140, 104, 180, 144], [200, 104, 240, 144]], [HAPPY, SAD]), 0.75)
    assert other.track_ids[0] == first.track_ids[0] and other.track_ids[1] != first.track_ids[0]


def test_tracks_expire_when_a_face_leaves():
    tracker = FaceTracker(TrackerSettings(max_missed_seconds=1.0))
    first = tracker.update(faces_at([[10, 10, 60, 60]], [HAPPY]), 0.0)
    tracker.update(Faces.empty(7), 0.5)
    assert tracker.active_ids == [first.track_ids[0]]
    tracker.update(Faces.empty(7), 1.6)
    assert tracker.active_ids == []
    back = tracker.update(faces_at([[10, 10, 60, 60]], [HAPPY]), 1.7)
    assert back.track_ids[0] != first.track_ids[0]


def test_smoothing_stops_a_one_frame_flicker():
    tracker = FaceTracker(TrackerSettings(half_life_seconds=1.0))
    for step in range(8):
        tracker.update(faces_at([[10, 10, 60, 60]], [HAPPY]), step * 0.25)
    flicker = tracker.update(faces_at([[10, 10, 60, 60]], [SAD]), 2.0)
    assert flicker.probabilities[0].argmax() == 4  # the raw reading flickered to Sad...
    assert flicker.smoothed[0].argmax() == 3  # ...the smoothed label stays Happy
    np.testing.assert_allclose(flicker.smoothed.sum(1), 1.0, atol=1e-6)
    for step in range(1, 12):
        steady = tracker.update(faces_at([[10, 10, 60, 60]], [SAD]), 2.0 + step * 0.25)
    assert steady.smoothed[0].argmax() == 4  # a lasting change does come through


def test_faces_validate_their_shapes():
    with pytest.raises(ValueError, match="scores"):
        Faces(np.zeros((2, 4)), np.zeros(3), np.zeros((2, 5, 2)))
    assert len(Faces.empty()) == 0


def test_a_doubtful_face_is_shown_only_once_seen_again():
    """A low-scored box (a poster, a hand) that appears in one frame never reaches the chart;
    a real face the detector is unsure of appears from its second frame on, with one id."""
    tracker = FaceTracker(TrackerSettings(confirm_score=0.9))
    sure, doubtful = [10, 10, 60, 60], [300, 10, 350, 60]

    def frame(boxes, scores, t):
        faces = faces_at(boxes, [HAPPY] * len(boxes))
        return tracker.update(Faces(faces.boxes, np.asarray(scores), faces.landmarks, faces.probabilities), t)

    first = frame([sure, doubtful], [0.99, 0.7], 0.0)
    assert len(first) == 1 and first.boxes[0].tolist() == sure
    assert len(tracker.predict(0.1, 7)) == 1  # skipped-detection frames do not show it either
    second = frame([sure, doubtful], [0.99, 0.72], 0.25)
    assert len(second) == 2 and second.track_ids[0] == first.track_ids[0]
    third = frame([sure, doubtful], [0.99, 0.65], 0.5)
    assert third.track_ids[1] == second.track_ids[1]
    assert tracker.active_ids == sorted(third.track_ids.tolist())
    # A one-frame phantom elsewhere expires without ever being shown.
    assert len(frame([sure, [500, 200, 540, 240]], [0.99, 0.62], 0.75)) == 1
    assert len(frame([sure], [0.99], 3.5)) == 1 and len(tracker.active_ids) == 1
