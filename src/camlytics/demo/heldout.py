"""The held-out test: frames of another simulated day, scored with the host int8 runtime and under MicroPython."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camlytics.constants import DAY
from camlytics.frames import Frame


# Runs inside MicroPython: the edge app's own decode -> preprocess -> int8 path on each JPEG.
MPY_SCRIPT = """
import sys, time
from camlytics.edge.model import load_model
from camlytics.edge.infer import Network
from camlytics.edge.preprocess import prepare
model = load_model(sys.argv[1])
net = Network(model)
folder, n = sys.argv[2], int(sys.argv[3])
t_prep = t_inf = 0
for i in range(n):
    with open(folder + "/%05d.jpg" % i, "rb") as f:
        data = f.read()
    t0 = time.ticks_us()
    x = prepare(data, model.meta)
    t1 = time.ticks_us()
    index, scores = net.predict(x)
    t2 = time.ticks_us()
    t_prep += time.ticks_diff(t1, t0)
    t_inf += time.ticks_diff(t2, t1)
    print("P", index)
print("T", t_prep, t_inf, net.backend)
"""


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
    from camlytics.train.evaluate import evaluate_arrays
    from camlytics.train.predictor import load_predictor

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
    import camlytics
    from camlytics.runtime.commands import micropython_command
    from camlytics.train.metrics import classification_report

    mpy = micropython_command()
    if mpy is None:
        return None
    src = str(Path(camlytics.__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory(prefix="camlytics-demo-mpy-") as tmp:
        for i, frame in enumerate(frames):
            Path(tmp, f"{i:05d}.jpg").write_bytes(frame.to_jpeg())
        script = Path(tmp, "evaluate.py")
        script.write_text(MPY_SCRIPT)
        env = {**os.environ, "MICROPYPATH": os.pathsep.join([".frozen", src])}
        proc = subprocess.run([mpy, "-X", "heapsize=4M", str(script), str(Path(model_dir) / "model.cml"), tmp,
                               str(len(frames))], capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"MicroPython evaluation failed (exit {proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()[-500:]}")
    lines = proc.stdout.split("\n")
    predictions = np.array([int(line.split()[1]) for line in lines if line.startswith("P ")], np.int64)
    timing = next(line.split() for line in lines if line.startswith("T "))
    if len(predictions) != len(frames):
        raise RuntimeError(f"MicroPython evaluation printed {len(predictions)} predictions for {len(frames)} frames")
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[f.meta["truth"]["state"]] for f in frames], np.int64)
    report = classification_report(y, predictions, classes)
    report["runtime"] = "micropython"
    n = max(1, len(frames))
    return HeldOut("MicroPython", report, predictions,
                   {"preprocess": int(timing[1]) / 1000 / n, "infer": int(timing[2]) / 1000 / n},
                   note=f"{timing[3]} backend")
