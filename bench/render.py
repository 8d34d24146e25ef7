"""Benchmark the simulated door scene: frames/s per preset and size, seconds per simulated day.

Usage: .venv/bin/python bench/render.py [--frames 300] [--sizes 640x360,1280x720] [--presets office,...]

Frames come in 6 runs of consecutive frames 10 s apart, starting every 4 hours (night, dawn,
morning, noon, afternoon, evening), as when simulating a day at one frame / 10 s; one core.
`--full-day PRESET` also renders one whole day (8640 frames) at 640x360 with JPEG and truth. "render" is the
raw RGB image; "frame" adds JPEG encoding and ground truth (what a sim: source delivers). The
reference is a plain np.zeros image JPEG-encoded in the same process, so the ratio is comparable
across machines. "day" = seconds to simulate a day at one frame every 10 s (8640 frames).
Rates are per CPU-second of this process (time.process_time), so other load on the machine does
not distort them; the wall-clock render rate is printed too. "vs office" = render rate / office's
at that size, measured in the same process (office is always measured first).
The held-out presets (roller, glassdoor, double, irnight, parking, corridor) render with their
effects on, as a day of them would.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from camlytics.frames import encode_jpeg
from camlytics.sim import PRESETS, Scene


def rate(fn, ts) -> tuple[float, float]:
    """Calls per CPU-second and per wall-second of fn(t) over the times ts (after one warm-up call)."""
    fn(ts[0])
    cpu, wall = time.process_time(), time.perf_counter()
    for t in ts:
        fn(t)
    return len(ts) / (time.process_time() - cpu), len(ts) / (time.perf_counter() - wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per measurement (default 300)")
    parser.add_argument("--full-day", metavar="PRESET", help="also time a whole simulated day of this preset")
    parser.add_argument("--sizes", default="640x360,1280x720", help="comma-separated WxH list")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    args = parser.parse_args()
    runs = 6
    per_run = max(args.frames // runs, 1)
    ts = np.concatenate([h * 3600 + 3.7 + 10.0 * np.arange(per_run) for h in range(0, 24, 24 // runs)])
    print(f"{'preset':10} {'size':>9} {'init s':>7} {'render/s':>9} {'(wall)':>7} {'frame/s':>8} {'ref/s':>7} "
          f"{'ratio':>6} {'day s':>7} {'vs office':>9}")
    names = args.presets.split(",")
    names = ["office", *[n for n in names if n != "office"]]  # the yardstick first
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        zeros = np.zeros((h, w, 3), np.uint8)
        ref, _ = rate(lambda t: encode_jpeg(zeros, 85), ts)
        office_rate = None
        for name in names:
            t0 = time.process_time()
            scene = Scene(name, seed=0, width=w, height=h)
            init = time.process_time() - t0
            r, r_wall = rate(scene.render, ts)
            f, _ = rate(scene.frame, ts)
            office_rate = office_rate or r
            print(f"{name:10} {size:>9} {init:7.2f} {r:9.1f} {r_wall:7.1f} {f:8.1f} {ref:7.1f} {f / ref:6.3f} "
                  f"{8640 / f:7.1f} {r / office_rate:9.2f}")
    if args.full_day:
        scene = Scene(args.full_day, seed=0, width=640, height=360)
        cpu, wall = time.process_time(), time.perf_counter()
        for t in np.arange(0.0, 86400.0, 10.0):
            scene.frame(float(t))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"full day {args.full_day} 640x360, 8640 frames with JPEG + truth: {cpu:.1f} CPU-s ({wall:.1f} s wall)")


if __name__ == "__main__":
    main()
