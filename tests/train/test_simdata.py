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


def test_state_times_picks_rare_and_common_instants_for_any_preset() -> None:
    import numpy as np
    import pytest

    from camlytics.train.simdata import state_times

    office = Scene("office", 1, 160, 90)
    old = state_times(office, 5, 7, np.random.default_rng(0))  # the door-era call, positional
    assert np.array_equal(old, state_times(office, n_open=5, n_closed=7, rng=np.random.default_rng(0)))
    assert [office.truth(t)["state"] for t in old].count("open") == 5 and len(old) == 12
    parking = Scene("parking", 1, 160, 90)
    times = state_times(parking, counts={"occupied": 4, "empty": 6}, rng=np.random.default_rng(1), step=2.0)
    states = [parking.truth(t)["state"] for t in times]
    assert states.count("occupied") == 4 and states.count("empty") == 6
    with pytest.raises(ValueError, match="open"):
        state_times(parking, counts={"open": 3}, rng=np.random.default_rng(1))


def test_a_sim_dataset_of_an_occupancy_preset_has_its_classes_and_roi(tmp_path: Path) -> None:
    import numpy as np

    from camlytics.train.simdata import build_sim_dataset, state_times

    scene = Scene("parking", 3, 160, 90)
    times = state_times(scene, 2, 2, np.random.default_rng(3), step=5.0)
    roi = build_sim_dataset(tmp_path / "bay", "parking", 3, times, width=160, height=90)
    with Dataset.open(tmp_path / "bay") as ds:
        assert ds.classes == ["empty", "occupied"] and ds.roi == roi == tuple(scene.door_roi)
        assert sorted(r.label for r in ds.records(labelled=True)) == ["empty", "empty", "occupied", "occupied"]
