"""Fixtures for the training tests: a small labelled dataset rendered by the simulator, and a model
trained on it, each built once per test run and shared by the xdist workers (read-only)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from filelock import FileLock  # a dependency of torch

# Small frames keep rendering and training fast; the door ROI is still ~50x90 pixels.
SIM_SIZE = (320, 180)
# Tiny but complete: cross-validation of the linear baseline and the CNN (student, pruned, int8 with and without
# QAT) in seconds; the CNN ships (`--family cnn`: with so few epochs it would lose to the linear baseline).
FAST_TRAIN = ["--input", "16x16", "--budget-macs", "40000", "--epochs", "teacher=2,student=3,finetune=1,qat=1",
              "--pool", "192", "--family", "cnn", "--gray", "--quiet"]


def make_sim_dataset(path: Path, n_open: int = 14, n_closed: int = 16, seed: int = 3) -> Path:
    """A dataset of simulator frames (preset "office") labelled from ground truth, ROI = the door."""
    from camlytics.sim import Scene
    from camlytics.train.simdata import build_sim_dataset, state_times

    scene = Scene("office", seed, *SIM_SIZE)
    times = state_times(scene, n_open, n_closed, np.random.default_rng(seed))
    build_sim_dataset(path, "office", seed, times, width=SIM_SIZE[0], height=SIM_SIZE[1])
    return path


def shared(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """`root/name`, built by `build(path)` by the first worker that asks, then reused by all."""
    root = tmp_path_factory.getbasetemp().parent  # common to every xdist worker of this run
    path = root / name
    with FileLock(str(root / f"{name}.lock")):
        if not (root / f"{name}.done").exists():
            build(path)
            (root / f"{name}.done").touch()
    return path


@pytest.fixture(scope="session")
def sim_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 labelled office frames (14 open, 16 closed); tests must not modify it (copy it first)."""
    return shared(tmp_path_factory, "train-simds", make_sim_dataset)


@pytest.fixture(scope="session")
def model_dir(sim_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory trained by `camlytics train` on `sim_dataset` with FAST_TRAIN settings."""
    from camlytics.cli import main

    def build(path: Path) -> None:
        assert main(["train", str(sim_dataset), "--out", str(path), *FAST_TRAIN]) == 0
    return shared(tmp_path_factory, "train-model", build)
