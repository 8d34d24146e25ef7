"""CLI: `camlytics demo` - the whole pipeline on a simulated Axis camera, ending in demo-output/report.html."""

from __future__ import annotations

import argparse
from pathlib import Path


def _epochs(text: str) -> dict[str, int]:
    from camlytics.train.commands import parse_epochs

    return parse_epochs(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` sub-command."""
    p = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on a simulated camera (no camera, no configuration) and write a report",
        description="Start a simulated Axis camera; collect a simulated day with the smart sampler (and a "
        "time-based one for comparison); label the kept frames from the simulator's ground truth (standing in "
        "for `camlytics annotate`) and render a check set of the door held near its threshold; train the teacher "
        "and the distilled, pruned int8 student twice and keep the better on the check set; evaluate it on "
        "another day on the host and under MicroPython; bundle the ACAP, deploy and start it on the simulated "
        "camera and print its MQTT state events; write OUT/report.html. 3-4 minutes on 2 cores.",
    )
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output directory (default demo-output; "
                   "an earlier demo's output there is replaced)")
    p.add_argument("--preset", default="office", help="scene preset: office, warehouse or home (default office)")
    p.add_argument("--seed", type=int, default=0, help="the simulated training day; the held-out day is seed+1")
    p.add_argument("--quick", action="store_true", help="a reduced run (fewer frames and epochs, about 90 s)")
    p.add_argument("--frames-per-day", type=int, help="frames rendered of the training day (default 2880 = one "
                   "every 30 s; --quick 1920)")
    p.add_argument("--budget", type=int, help="frames each sampler keeps (default 300; --quick 150)")
    p.add_argument("--epochs", type=_epochs, metavar="N|stage=N,...", help="training epochs as for `camlytics "
                   "train --epochs` (default: train's defaults; --quick teacher=3,student=6,finetune=2,qat=1)")
    p.add_argument("--candidates", type=int, default=1, metavar="K", help="training runs with seeds SEED..SEED+K-1 "
                   "(in parallel), the best on a check set of the door held near the threshold kept, as `camlytics "
                   "train --candidates K --check` (default 1: one run, cross-validation picks the model; the check "
                   "set is scored)")
    p.add_argument("--speed", type=float, default=30.0, help="simulated seconds per second during the live part "
                   "(default 30)")
    p.add_argument("--live-seconds", type=float, help="wall-clock seconds of the live part (default 75; --quick 40)")
    p.add_argument("--workers", type=int, help="rendering processes (default: CPUs, at most 4)")
    p.add_argument("--readme-images", type=Path, metavar="DIR", help="also copy the timeline plot to "
                   "DIR/demo-timeline.png (the README's picture: docs/images)")
    p.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    """Run the demo and print where the report is."""
    from rich.console import Console

    from camlytics.demo.pipeline import DemoConfig, run_demo

    cfg = DemoConfig(out=args.out, preset=args.preset, seed=args.seed, quick=args.quick,
                     frames_per_day=args.frames_per_day, budget=args.budget, epochs=args.epochs, speed=args.speed,
                     candidates=args.candidates,
                     live_seconds=args.live_seconds, workers=args.workers, images=args.readme_images)
    run_demo(cfg, Console())
    return 0
