"""The held-out test: frames of another simulated day, scored with the host int8 runtime and under MicroPython."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camlytics.constants import DAY
from camlytics.frames import Frame


@dataclass
class HeldOut:
    """Scores of one runtime on the held-out frames."""

    runtime: str
    report: dict[str, Any]
    predictions: np.ndarray  # class index per frame
    ms_per_frame: dict[str, float] = field(default_factory=dict)  # "preprocess", "infer"
    note: str = ""


def held_out_times(preset: str, seed: int, n_open: int, n_closed: int) -> list[float]:
    """Times of a stratified test set of one day: `n_open` spread over every open period, `n_closed` at random."""
    from camlytics.sim import OPEN_ANGLE, PRESETS, Timeline

    timeline = Timeline(PRESETS[preset], seed)
    open_times = np.concatenate([np.arange(a + 0.5, b, 1.0) for a, b, _ in timeline.open_intervals()] or [np.zeros(0)])
    if len(open_times) > n_open:  # evenly over all open seconds: long propped periods and brief passes alike
        open_times = open_times[np.linspace(0, len(open_times) - 1, n_open).round().astype(int)]
    rng = np.random.default_rng([seed, 7])
    candidates = rng.uniform(0, DAY, 4 * n_closed + 100)
    closed_times = candidates[timeline.angles(candidates) <= OPEN_ANGLE][:n_closed]
    return sorted(float(t) for t in np.concatenate([open_times, closed_times]))


def evaluate_int8(model_dir: Path, frames: list[Frame]) -> HeldOut:
    """The host int8 reference (the edge arithmetic) on the frames, against their simulator truth."""
    from camlytics.model.predictor import load_predictor
    from camlytics.train.evaluate import evaluate_arrays

    predictor = load_predictor(model_dir, "int8")
    t0 = time.perf_counter()
    x = np.stack([predictor.inputs(f) for f in frames])
    t1 = time.perf_counter()
    probs = predictor.probs(x)
    t2 = time.perf_counter()
    labels = [f.meta["truth"]["state"] for f in frames]
    report = evaluate_arrays(predictor, x, labels)
    n = max(1, len(frames))
    return HeldOut("int8 (host)", report, probs.argmax(1),
                   {"preprocess": 1000 * (t1 - t0) / n, "infer": 1000 * (t2 - t1) / n})


def evaluate_micropython(model_dir: Path, frames: list[Frame], classes: list[str], timeout: float = 300.0) -> HeldOut | None:
    """The edge package under the `micropython` command on the same JPEGs; None if MicroPython is not installed."""
    from camlytics.errors import SourceError
    from camlytics.model.modelfile import locate_model_file
    from camlytics.runtime.micropython import host_interpreter, run_edge_batch
    from camlytics.train.metrics import classification_report

    interpreter = host_interpreter()
    if interpreter is None:
        return None
    batch = run_edge_batch(interpreter, locate_model_file(model_dir), [("jpeg", f.to_jpeg()) for f in frames],
                           timeout=timeout)
    for i, r in enumerate(batch.results):
        if "error" in r:
            raise SourceError(f"held-out frame {i}: MicroPython could not process it ({r['error']})")
    predictions = np.array([int(np.argmax(r["logits"])) for r in batch.results], np.int64)
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[f.meta["truth"]["state"]] for f in frames], np.int64)
    report = classification_report(y, predictions, classes)
    report["runtime"] = "micropython"
    n = max(1, len(frames))
    prepare_us, infer_us = (sum(r["us"][k] for r in batch.results) for k in (0, 1))
    return HeldOut("MicroPython", report, predictions, {"preprocess": prepare_us / 1000 / n, "infer": infer_us / 1000 / n},
                   note=f"{batch.backend} backend")
