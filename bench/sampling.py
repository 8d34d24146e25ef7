"""Benchmark the samplers on simulated days: what share of the kept frames shows the rare state (door
open, spot occupied), how varied they are, and how fast each sampler runs.

Every day (one per preset) is rendered once at the finest poll interval (640x360, in a process pool)
and offered to every sampler at every interval of `--intervals`: a sampler polled every 30 s sees
every sixth frame of a 5 s day. A burst a sampler asks for (`pace`, as the collect loop passes it
to the source) is rendered on demand, and the grid frames it covers are skipped for that sampler,
as `FrameSource` does. Each sampler builds its own features, so its frames/s is its own cost on one
core (CPU time of this thread, rendering excluded).

    .venv/bin/python bench/sampling.py                     # old presets, 5 s and 30 s, smart vs time (~4 min)
    .venv/bin/python bench/sampling.py --presets office --intervals 30 --samplers smart,time,hog,motion
    .venv/bin/python bench/sampling.py --presets all       # every preset, new ones included

The ROI given to the samplers is the scene's door (or spot) ROI, as an installer would draw it with
`--roi` (`smart-noroi` is the smart sampler without one). The rare state is the day's least
frequent truth state; `x time` is the rare share over the time-based sampler's at the same interval.
Variety: hours of the day with a kept frame (of the hours the day has), conditions (state / light
level / people) kept of those seen >= 5 times, and distinct 10-degree door-angle bins kept.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per sampler, as on a small host

import numpy as np  # noqa: E402

from camlytics.frames import Frame  # noqa: E402
from camlytics.sampling import Sampler, make_sampler  # noqa: E402

SAMPLERS = ["smart", "time", "smart-noroi", "hog", "color", "motion"]
GOALS = ("goals: smart keeps >= 30% rare at every interval on every preset, covers every condition seen "
         ">= 5 times, >= 200 frames/s")
OLD_PRESETS = "office,warehouse,home"

_scene = None


def _init_worker(preset: str, seed: int, width: int, height: int) -> None:
    global _scene
    from camlytics.sim import Scene

    _scene = Scene(preset=preset, seed=seed, width=width, height=height)


def _render(t: float) -> tuple[float, np.ndarray, dict]:
    return t, _scene.render(t), _scene.truth(t)


def frames_of_day(preset: str, seed: int, times: list[float], width: int, height: int, workers: int):
    """Frames of one simulated day in time order, rendered in a process pool."""
    with mp.get_context("fork").Pool(workers, _init_worker, (preset, seed, width, height)) as pool:
        # two blocks in flight at a time: the pool must not render the whole day into memory
        blocks = [times[i:i + 512] for i in range(0, len(times), 512)]
        ahead = pool.imap(_render, blocks[0], chunksize=16)
        for k in range(len(blocks)):
            current = ahead
            if k + 1 < len(blocks):
                ahead = pool.imap(_render, blocks[k + 1], chunksize=16)
            for t, image, truth in current:
                yield Frame(image, t, f"sim:{preset}", None, {"truth": truth})


@dataclass
class Run:
    """One sampler polled every `interval` seconds: what it kept, its CPU time and its bursts."""

    name: str
    interval: float
    sampler: Sampler
    kept: list[dict] = field(default_factory=list)
    cpu: float = 0.0
    offered: int = 0
    burst_frames: int = 0
    resume_at: float = -np.inf  # grid frames before this were covered by a burst

    def offer(self, frame: Frame, scene) -> None:
        """Offer a grid frame, then the frames of any burst the sampler asks for."""
        if frame.timestamp < self.resume_at:
            return
        self._offer(frame)
        t = frame.timestamp
        while self.sampler.pace:
            t += self.sampler.pace
            self.burst_frames += 1
            self._offer(scene.frame(t))
            self.resume_at = t + 1e-6

    def _offer(self, frame: Frame) -> None:
        t0 = time.thread_time()
        decision = self.sampler.offer(frame)
        self.cpu += time.thread_time() - t0
        self.offered += 1
        if decision is not None:
            self.kept.append(frame.meta["truth"])


def run_day(preset: str, args: argparse.Namespace) -> dict:
    """Offer one day to every sampler at every interval; the runs and what the day held."""
    from camlytics.sim import Scene

    scene = Scene(preset=preset, seed=args.seed, width=args.width, height=args.height)
    h0, h1 = (float(h) * 3600 for h in args.hours.split("-"))
    step = min(args.intervals)
    times = list(np.arange(h0, h1, step))
    runs = []
    for interval in args.intervals:
        for name in args.samplers:
            base = name.removesuffix("-noroi")
            roi = None if name.endswith("-noroi") else scene.door_roi
            sampler = make_sampler(base, budget=args.budget, duration=h1 - h0, roi=roi)
            runs.append(Run(name, interval, sampler))
    day = {"frames": 0, "conditions": Counter(), "states": Counter(), "hours": set()}
    start = time.monotonic()
    for frame in frames_of_day(preset, args.seed, times, args.width, args.height, args.workers):
        truth = frame.meta["truth"]
        day["frames"] += 1
        day["conditions"][truth["condition"]] += 1
        day["states"][truth["state"]] += 1
        day["hours"].add(int(frame.timestamp // 3600) % 24)
        k = (frame.timestamp - h0) / step
        for run in runs:
            if round(k) % round(run.interval / step) == 0:
                run.offer(frame, scene)
        if day["frames"] % 2000 == 0:
            print(f"  {preset}: {day['frames']}/{len(times)} frames, {time.monotonic() - start:.0f} s", file=sys.stderr)
    day["runs"] = runs
    day["rare"] = min(day["states"], key=lambda s: (day["states"][s], s))
    return day


def summarise(run: Run, day: dict) -> dict:
    """The table row of one run on one day."""
    truths = run.kept
    frequent = {c for c, k in day["conditions"].items() if k >= 5}
    covered = {t["condition"] for t in truths}
    angles = {int(t["angle"] // 10) for t in truths if t.get("angle") is not None}
    return {
        "kept": len(truths),
        "rare": float(np.mean([t["state"] == day["rare"] for t in truths])) if truths else 0.0,
        "night": float(np.mean([bool(t["night"]) for t in truths])) if truths else 0.0,
        "hours": len({int(t["t"] // 3600) % 24 for t in truths}),
        "angles": len(angles),
        "ajar": sum(2.0 < t.get("angle", 0.0) <= 25.0 for t in truths),
        "covered": len(covered & frequent),
        "frequent": len(frequent),
        "missing": sorted(frequent - covered),
        "burst": run.burst_frames,
        "us": 1e6 * run.cpu / max(1, run.offered),
    }


def table(rows: list[tuple[str, dict, Run, dict]]) -> None:
    """Print the markdown table of every run."""
    print("\n| preset | poll | sampler | kept | rare | x time | night | hours | angle bins | ajar 2-25 deg "
          "| conditions covered | burst frames | us/frame |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for preset, day, run, r in rows:
        base = next((s for p, d, q, s in rows if p == preset and q.interval == run.interval and q.name == "time"), None)
        ratio = f"{r['rare'] / base['rare']:.1f}" if base and base["rare"] > 0 else "-"
        missing = f" (missing {', '.join(r['missing'])})" if r["missing"] else ""
        print(f"| {preset} | {run.interval:g} s | {run.name} | {r['kept']} | {100 * r['rare']:.1f}% {day['rare']} "
              f"| {ratio} | {100 * r['night']:.1f}% | {r['hours']}/{len(day['hours'])} | {r['angles']} | {r['ajar']} "
              f"| {r['covered']}/{r['frequent']}{missing} | {r['burst']} | {r['us']:.0f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default=OLD_PRESETS, help=f"comma-separated, or all (default {OLD_PRESETS})")
    parser.add_argument("--seed", type=int, default=1, help="the simulated day")
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--intervals", default="5,30", help="poll intervals (s), each a multiple of the smallest")
    parser.add_argument("--hours", default="0-24", help="part of the day, e.g. 6-12")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--samplers", default="smart,time", help=f"comma-separated of {','.join(SAMPLERS)}")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)), help="rendering processes")
    args = parser.parse_args(argv)
    args.samplers = args.samplers.split(",")
    args.intervals = sorted(float(s) for s in args.intervals.split(","))
    if any(abs(i / args.intervals[0] - round(i / args.intervals[0])) > 1e-9 for i in args.intervals):
        parser.error(f"every interval must be a multiple of the smallest, got {args.intervals}")
    if args.presets == "all":
        from camlytics.sim.presets import PRESETS

        args.presets = ",".join(PRESETS)
    print(f"budget {args.budget}, polled every {', '.join(f'{i:g}' for i in args.intervals)} s, "
          f"{args.width}x{args.height}, seed {args.seed}, hours {args.hours}")
    rows = []
    start = time.monotonic()
    for preset in args.presets.split(","):
        day = run_day(preset, args)
        n = day["frames"]
        print(f"\n{preset}: {n} frames, {100 * day['states'][day['rare']] / n:.1f}% {day['rare']}, "
              f"{len(day['conditions'])} conditions: " + ", ".join(f"{c} {k}" for c, k in day["conditions"].most_common()))
        rows += [(preset, day, run, summarise(run, day)) for run in day["runs"]]
    table(rows)
    print(f"\n{GOALS}\n({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
