"""Labelled datasets from the simulator: ground-truth labels for tests, benchmarks and demos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

DAY = 86400.0


def truth_label(meta: dict[str, Any]) -> str | None:
    """The door state a simulated frame's metadata records ("open" / "closed"), if any."""
    truth = meta.get("truth") if isinstance(meta, dict) else None
    state = truth.get("state") if isinstance(truth, dict) else None
    return state if isinstance(state, str) else None


def label_from_truth(ds: Any, annotator: str = "sim-truth") -> int:
    """Label every unlabelled record of a store that carries simulator truth; returns how many."""
    labels = {r.id: state for r in ds.records(labelled=False) if (state := truth_label(r.meta))}
    if labels:
        ds.set_labels(labels, annotator)
    return len(labels)


def state_times(scene: Any, n_open: int, n_closed: int, rng: np.random.Generator, step: float = 1.0) -> np.ndarray:
    """Sorted times of one simulated day: `n_open` with the door open and `n_closed` closed."""
    from camlytics.sim import OPEN_ANGLE

    ts = np.arange(0.0, DAY, step)
    is_open = scene.timeline.angles(ts) > OPEN_ANGLE
    opened, closed = ts[is_open], ts[~is_open]
    if len(opened) < n_open:
        raise ValueError(f"the simulated day has only {len(opened)} open instants at step {step} s, asked {n_open}")
    pick = np.concatenate([rng.choice(opened, n_open, replace=False), rng.choice(closed, n_closed, replace=False)])
    return np.sort(pick)


def build_sim_dataset(path: str | Path, preset: str, seed: int, times: np.ndarray, *, width: int = 640,
                      height: int = 360, quality: int = 85) -> tuple[int, int, int, int]:
    """A store at `path` with frames of (preset, seed) at `times`, labelled from truth, ROI = the door's.

    Returns the ROI.
    """
    from camlytics.sim import Scene
    from camlytics.store import Dataset

    scene = Scene(preset, seed, width, height)
    with Dataset.open(path, create=True) as ds:
        for t in times:
            frame = scene.frame(float(t), quality=quality)
            ds.add_image(frame.jpeg, timestamp=float(t), source=frame.source, sampler="sim-truth",
                         reason="state_times", score=0.0, meta={"truth": frame.meta["truth"]})
        label_from_truth(ds)
        ds.set_roi(scene.door_roi)
    return tuple(scene.door_roi)  # type: ignore[return-value]
