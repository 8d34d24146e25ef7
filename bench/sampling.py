"""Benchmark the samplers on simulated days: what share of the kept frames is rare (door open, night),
how many conditions they cover, and how fast each sampler runs.

Every day (one per preset) is rendered once, 1 frame / 10 s (8640 frames at 640x360), and each
frame is offered to every sampler in turn; each sampler builds its own features, so its frames/s is
its own cost on one core (CPU time of this thread, rendering excluded; rendering runs in a pool).

    .venv/bin/python bench/sampling.py                       # 3 presets, budget 300: prints a markdown table
    .venv/bin/python bench/sampling.py --presets office --hours 6-12 --samplers smart,time

The ROI given to the samplers is the scene's door ROI, as an installer would draw it with `--roi`
(`smart-noroi` is the smart sampler without one). Every sampler sees the same pre-rendered frames, so
the smart sampler's swing bursts (FrameSource.pace) do not apply here; bench/train.py collects through
the real loop and counts the frames they add.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pickle
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per sampler, as on a small host

import numpy as np  # noqa: E402

from camlytics.frames import Frame, decode_jpeg  # noqa: E402
from camlytics.sampling import make_sampler  # noqa: E402

SAMPLERS = ["smart", "smart-noroi", "time", "hog", "color", "motion"]
GOALS = "goals: smart keeps >= 30% open, covers every condition seen >= 5 times, >= 200 frames/s"

_scene = None


def _init_worker(preset: str, seed: int, width: int, height: int) -> None:
    global _scene
    from camlytics.sim import Scene

    _scene = Scene(preset=preset, seed=seed, width=width, height=height)


def _render(t: float) -> tuple[float, np.ndarray, dict]:
    return t, _scene.render(t), _scene.truth(t)


def frames_of_day(preset: str, seed: int, times: list[float], width: int, height: int, workers: int,
                  cache: Path | None):
    """Frames of one simulated day in time order, rendered in a process pool (or read from --cache)."""
    path = cache / f"{preset}-{seed}-{width}x{height}-{len(times)}-{times[0]:g}.pkl" if cache else None
    if path is not None and path.exists():
        with path.open("rb") as fh:
            for t, jpeg, truth in pickle.load(fh):
                yield Frame(decode_jpeg(jpeg), t, f"sim:{preset}", jpeg, {"truth": truth})
        return
    stored = []
    with mp.get_context("fork").Pool(workers, _init_worker, (preset, seed, width, height)) as pool:
        for t, image, truth in pool.imap(_render, times, chunksize=16):
            frame = Frame(image, t, f"sim:{preset}", None, {"truth": truth})
            if path is not None:
                stored.append((t, frame.to_jpeg(95), truth))
            yield frame
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            pickle.dump(stored, fh)


def run_day(preset: str, args: argparse.Namespace) -> dict[str, dict]:
    """Offer one day to every sampler; per sampler: kept frames' truths and CPU seconds."""
    from camlytics.sim import Scene

    scene = Scene(preset=preset, seed=args.seed, width=args.width, height=args.height)
    h0, h1 = (float(h) for h in args.hours.split("-"))
    times = list(np.arange(h0 * 3600, h1 * 3600, args.interval))
    duration = len(times) * args.interval
    samplers = {}
    for name in args.samplers:
        base = name.removesuffix("-noroi")
        roi = None if name.endswith("-noroi") else scene.door_roi
        samplers[name] = make_sampler(base, budget=args.budget, duration=duration, roi=roi)
    kept: dict[str, list[dict]] = {name: [] for name in samplers}
    cpu = Counter()
    conditions = Counter()
    n = 0
    start = time.monotonic()
    for frame in frames_of_day(preset, args.seed, times, args.width, args.height, args.workers, args.cache):
        n += 1
        conditions[frame.meta["truth"]["condition"]] += 1
        for name, sampler in samplers.items():
            t0 = time.thread_time()
            decision = sampler.offer(frame)
            cpu[name] += time.thread_time() - t0
            if decision is not None:
                kept[name].append(frame.meta["truth"])
        if n % 1000 == 0:
            print(f"  {preset}: {n}/{len(times)} frames, {time.monotonic() - start:.0f} s", file=sys.stderr)
    return {"frames": n, "conditions": conditions, "open": sum(c.startswith("open") for c in conditions.elements()),
            "kept": kept, "cpu": cpu}


def summarise(name: str, day: dict) -> dict:
    """The table row of one sampler on one day."""
    truths = day["kept"][name]
    frequent = {c for c, k in day["conditions"].items() if k >= 5}
    covered = {t["condition"] for t in truths}
    return {
        "kept": len(truths),
        "open": np.mean([t["state"] == "open" for t in truths]) if truths else 0.0,
        "night": np.mean([bool(t["night"]) for t in truths]) if truths else 0.0,
        "ajar": sum(2.0 < t["angle"] <= 25.0 for t in truths),
        "covered": len(covered & frequent),
        "frequent": len(frequent),
        "missing": sorted(frequent - covered),
        "fps": day["frames"] / max(1e-9, day["cpu"][name]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="office,warehouse,home")
    parser.add_argument("--seed", type=int, default=1, help="the simulated day")
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--hours", default="0-24", help="part of the day, e.g. 6-12")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)), help="rendering processes")
    parser.add_argument("--cache", type=Path, help="keep rendered days here as JPEG (q95) for quicker reruns")
    args = parser.parse_args(argv)
    args.samplers = args.samplers.split(",")
    print(f"budget {args.budget}, 1 frame / {args.interval:g} s, {args.width}x{args.height}, seed {args.seed}")
    rows = []
    for preset in args.presets.split(","):
        day = run_day(preset, args)
        print(f"\n{preset}: {day['frames']} frames, {100 * day['open'] / day['frames']:.1f}% open, "
              f"{len(day['conditions'])} conditions: " + ", ".join(f"{c} {k}" for c, k in day["conditions"].most_common()))
        for name in args.samplers:
            rows.append((preset, name, summarise(name, day)))
    print("\n| preset | sampler | kept | open | night | door ajar 2-25 deg | conditions covered (of those seen >= 5 times) "
          "| frames/s |")
    print("|---|---|---:|---:|---:|---:|---|---:|")
    for preset, name, r in rows:
        missing = f" (missing {', '.join(r['missing'])})" if r["missing"] else ""
        print(f"| {preset} | {name} | {r['kept']} | {100 * r['open']:.1f}% | {100 * r['night']:.1f}% | {r['ajar']} | "
              f"{r['covered']}/{r['frequent']}{missing} | {r['fps']:.0f} |")
    print(f"\n{GOALS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
