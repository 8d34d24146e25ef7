"""Labelled datasets from the simulator: ground-truth labels for tests, benchmarks and demos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from camlytics.constants import DAY


def truth_label(meta: dict[str, Any]) -> str | None:
    """The state a simulated frame's metadata records (a door's "open" / "closed", a spot's "occupied" / "empty")."""
    truth = meta.get("truth") if isinstance(meta, dict) else None
    state = truth.get("state") if isinstance(truth, dict) else None
    return state if isinstance(state, str) else None


def label_from_truth(ds: Any, annotator: str = "sim-truth") -> int:
    """Label every unlabelled record of a store that carries simulator truth; returns how many."""
    labels = {r.id: state for r in ds.records(labelled=False) if (state := truth_label(r.meta))}
    if labels:
        ds.set_labels(labels, annotator)
    return len(labels)


def state_times(scene: Any, n_rare: int | None = None, n_common: int | None = None,
                rng: np.random.Generator | None = None, step: float = 1.0, *, n_open: int | None = None,
                n_closed: int | None = None, counts: dict[str, int] | None = None) -> np.ndarray:
    """Sorted times of one simulated day: `n_rare` in the preset's rare state (open / occupied), `n_common` not.

    `n_open`/`n_closed` are the older names of the two counts; `counts` gives them per state name instead,
    e.g. {"occupied": 50, "empty": 100} (the names are the preset's `classes`).
    """
    common, rare = scene.preset.classes
    if counts is not None:
        unknown = sorted(set(counts) - {common, rare})
        if unknown:
            raise ValueError(f"state_times: {unknown} are not states of preset {scene.preset.name!r} "
                             f"(its states are {common!r}, {rare!r})")
        n_rare, n_common = counts.get(rare, 0), counts.get(common, 0)
    n_rare = n_open if n_rare is None else n_rare
    n_common = n_closed if n_common is None else n_common
    if n_rare is None or n_common is None:
        raise ValueError("state_times: give n_rare and n_common (or counts per state)")
    rng = np.random.default_rng() if rng is None else rng
    ts = np.arange(0.0, DAY, step)
    is_rare = scene.timeline.rare(ts)
    picked, other = ts[is_rare], ts[~is_rare]
    if len(picked) < n_rare:
        raise ValueError(f"the simulated day has only {len(picked)} {rare} instants at step {step} s, asked {n_rare}")
    pick = np.concatenate([rng.choice(picked, n_rare, replace=False), rng.choice(other, n_common, replace=False)])
    return np.sort(pick)


def _set_preset_classes(ds: Any, preset: str) -> None:
    """Give a new store the preset's class names when they are not the default door's."""
    from camlytics.sim import PRESETS

    classes = list(PRESETS[preset].classes)
    if ds.classes != classes:
        ds.set_classes(classes)


def build_sim_dataset(path: str | Path, preset: str, seed: int, times: np.ndarray, *, width: int = 640,
                      height: int = 360, quality: int = 85) -> tuple[int, int, int, int]:
    """A store at `path` with frames of (preset, seed) at `times`, labelled from truth, ROI = the door's.

    Returns the ROI.
    """
    from camlytics.sim import Scene
    from camlytics.store import Dataset

    scene = Scene(preset, seed, width, height)
    with Dataset.open(path, create=True) as ds:
        _set_preset_classes(ds, preset)
        for t in times:
            frame = scene.frame(float(t), quality=quality)
            ds.add_image(frame.jpeg, timestamp=float(t), source=frame.source, sampler="sim-truth",
                         reason="state_times", score=0.0, meta={"truth": frame.meta["truth"]})
        label_from_truth(ds)
        ds.set_roi(scene.door_roi)
    return tuple(scene.door_roi)  # type: ignore[return-value]


# A check set an installer can take: the door held just either side of the simulator's 10 deg open threshold,
# one round of angles at each of several hours of the day (the light matters: one 12-minute session at 10:00
# picked the best of four training runs less often than these ten rounds; README, Benchmarks).
HELD_ANGLES = (7, 8, 9, 9.5, 10.5, 11, 12, 13)
HELD_HOURS = (2, 4, 6, 7, 8, 10.5, 13, 17, 19, 21)
HELD_STEP = 7.0  # seconds between the angles of one round: the time to move the door and take a snapshot


def held_door_frames(preset: str, seed: int, angles: Any = HELD_ANGLES, hours: Any = HELD_HOURS, *, width: int = 640,
                     height: int = 360) -> Any:
    """(frame, angle) of day `seed` with the door held at each angle, one round per hour of the day in `hours`."""
    from camlytics.sim import Scene

    scene = Scene(preset, seed, width, height)
    for hour in hours:
        for k, angle in enumerate(angles):
            yield scene.frame(float(hour) * 3600 + HELD_STEP * k + 0.5, door_angle=float(angle)), float(angle)


def build_held_door_dataset(path: str | Path, preset: str, seed: int, angles: Any = HELD_ANGLES,
                            hours: Any = HELD_HOURS, *, width: int = 640, height: int = 360) -> dict[str, int]:
    """A store at `path` of `held_door_frames`, labelled from truth, ROI = the door's; returns the label counts."""
    from collections import Counter

    from camlytics.sim import Scene
    from camlytics.store import Dataset

    counts: Counter = Counter()
    with Dataset.open(path, create=True) as ds:
        _set_preset_classes(ds, preset)
        for frame, angle in held_door_frames(preset, seed, angles, hours, width=width, height=height):
            ds.add_image(frame.jpeg, timestamp=frame.timestamp, source=frame.source, sampler="held-door",
                         reason=f"door held at {angle:g} deg", score=0.0, meta={"truth": frame.meta["truth"]})
            counts[frame.meta["truth"]["state"]] += 1
        label_from_truth(ds)
        ds.set_roi(Scene(preset, seed, width, height).door_roi)
    return dict(counts)
