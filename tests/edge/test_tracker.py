"""The debounced state tracker: stable changes only, hysteresis, surprising frames."""

from __future__ import annotations

from camlytics.edge.tracker import StateTracker

CLASSES = ["closed", "open"]
CLOSED, OPEN = 0, 1


def feed(tracker, seq):
    return [tracker.update(c, p) for c, p in seq]


def test_state_changes_only_after_stable_frames():
    t = StateTracker(CLASSES, stable_frames=3, threshold=0.6)
    ups = feed(t, [(CLOSED, 0.9)] * 3)
    assert [u.changed for u in ups] == [False, False, True] and t.state == "closed"
    ups = feed(t, [(OPEN, 0.9), (OPEN, 0.8)])
    assert t.state == "closed" and not any(u.changed for u in ups)
    assert t.update(OPEN, 0.95).changed and t.state == "open"
    assert abs(t.confidence - (0.9 + 0.8 + 0.95) / 3) < 1e-9


def test_single_odd_frame_never_flips_the_state_and_is_surprising():
    t = StateTracker(CLASSES, stable_frames=3)
    feed(t, [(CLOSED, 0.9)] * 3)
    assert t.update(OPEN, 0.99).surprise is None
    back = t.update(CLOSED, 0.9)
    assert back.surprise == "flip" and not back.changed and t.state == "closed"


def test_low_confidence_frames_neither_confirm_nor_reset():
    t = StateTracker(CLASSES, stable_frames=3, threshold=0.7, low_streak=2)
    feed(t, [(CLOSED, 0.9)] * 3)
    ups = feed(t, [(OPEN, 0.9), (OPEN, 0.5), (OPEN, 0.55), (OPEN, 0.9)])
    assert ups[2].surprise == "low_confidence"
    assert t.state == "closed"
    assert t.update(OPEN, 0.9).changed and t.state == "open"


def test_no_flapping_on_alternating_predictions():
    t = StateTracker(CLASSES, stable_frames=2)
    feed(t, [(CLOSED, 0.9)] * 2)
    ups = feed(t, [(OPEN, 0.9), (CLOSED, 0.9)] * 20)
    assert not any(u.changed for u in ups) and t.changes == 1


def test_n_classes_each_need_stable_frames_and_report_the_raw_prediction():
    t = StateTracker(["empty", "car", "van", "truck"], stable_frames=2)
    seen = []
    for c in (0, 0, 2, 2, 3, 1, 1):
        up = t.update(c, 0.8 + c / 100)
        seen.append((up.state, up.changed, up.vote, up.raw_class))
    assert seen == [(None, False, "empty", "empty"), ("empty", True, "empty", "empty"), ("empty", False, "van", "van"),
                    ("van", True, "van", "van"), ("van", False, "truck", "truck"), ("van", False, "car", "car"),
                    ("car", True, "car", "car")]
    assert t.changes == 3 and t.raw_confidence == 0.81 and abs(t.confidence - 0.81) < 1e-9


def test_uncertain_frames_still_update_the_raw_prediction():
    t = StateTracker(CLASSES, stable_frames=1, threshold=0.7)
    t.update(CLOSED, 0.9)
    up = t.update(OPEN, 0.6)
    assert up.vote is None and (up.raw_class, up.raw_confidence) == ("open", 0.6) and t.state == "closed"


def test_tracker_runs_under_micropython(micropython):
    out = micropython("""
from camlytics.edge.tracker import StateTracker
t = StateTracker(["closed", "open"], stable_frames=3)
changes = [t.update(c, 0.9).changed for c in (0, 0, 0, 1, 0, 1, 1, 1)]
print(changes.count(True), t.state, t.changes)
""")
    assert out.split() == ["2", "open", "2"]
