"""Labelled datasets from the simulator: the held-door check set."""

from __future__ import annotations

from pathlib import Path

from camlytics.sim import OPEN_ANGLE, Scene
from camlytics.store import Dataset
from camlytics.train.simdata import HELD_ANGLES, build_held_door_dataset


def test_a_held_door_check_set_has_each_angle_each_round_labelled_by_the_threshold(tmp_path: Path) -> None:
    counts = build_held_door_dataset(tmp_path / "check", "warehouse", 3, HELD_ANGLES, (9.0, 15.5), width=320,
                                     height=180)
    below = sum(a <= OPEN_ANGLE for a in HELD_ANGLES)
    assert counts == {"closed": 2 * below, "open": 2 * (len(HELD_ANGLES) - below)}
    with Dataset.open(tmp_path / "check") as ds:
        records = ds.records(labelled=True)
        assert ds.roi == tuple(Scene("warehouse", 3, 320, 180).door_roi)
        assert [r.meta["truth"]["angle"] for r in records] == list(HELD_ANGLES) * 2
        assert all(r.label == ("open" if r.meta["truth"]["angle"] > OPEN_ANGLE else "closed") for r in records)
        # One round at each hour given, the angles 7 s apart.
        assert [r.timestamp for r in records] == [h * 3600 + 7 * k + 0.5 for h in (9.0, 15.5)
                                                  for k in range(len(HELD_ANGLES))]
        assert len({ds.read_image(r) for r in records}) == len(records)  # every frame its own image
