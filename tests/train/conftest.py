"""Fixtures for the training tests: a small labelled dataset rendered by the simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# Small frames keep rendering and training fast; the door ROI is still ~50x90 pixels.
SIM_SIZE = (320, 180)


def make_sim_dataset(path: Path, n_open: int = 14, n_closed: int = 16, seed: int = 3) -> Path:
    """A dataset of simulator frames (preset "office") labelled from ground truth, ROI = the door."""
    from camlytics.sim import Scene
    from camlytics.train.simdata import build_sim_dataset, state_times

    scene = Scene("office", seed, *SIM_SIZE)
    times = state_times(scene, n_open, n_closed, np.random.default_rng(seed))
    build_sim_dataset(path, "office", seed, times, width=SIM_SIZE[0], height=SIM_SIZE[1])
    return path


@pytest.fixture(scope="module")
def sim_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 labelled office frames (14 open, 16 closed); tests must not modify it (copy it first)."""
    return make_sim_dataset(tmp_path_factory.mktemp("simds") / "ds")
