"""CLI: `camlytics collect SOURCE --dataset DIR --sampler ...` with a live progress display."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from camlytics.sources.commands import SPEC_HELP, _add_source_options, _source_options

if TYPE_CHECKING:
    from camlytics.errors import AuthError
    from camlytics.sampling.collect import CollectStats

SAMPLER_HELP = (
    "smart: door-region anomalies + activity + lighting/shape novelty on a budget (default); "
    "time: one frame every --every seconds; hog / color: shape / colour novelty; "
    "motion: start, middle and end of activity; flips: where --model flips briefly or is unsure"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `collect` sub-command."""
    p = subparsers.add_parser(
        "collect",
        help="pick a small, diverse set of frames from a source into a dataset",
        description="Read frames from a source, keep the ones the sampler picks (at most --budget, spread "
        "over the run) and store them in a dataset. Ctrl-C stops cleanly; a camera that goes away is "
        "retried with backoff; one that refuses the credentials (HTTP 401/403) stops the run with an error.",
    )
    p.add_argument("source", metavar="SOURCE", help=SPEC_HELP)
    p.add_argument("--dataset", required=True, metavar="DIR", help="dataset directory (created if missing)")
    p.add_argument("--sampler", default="smart", choices=["smart", "time", "hog", "color", "motion", "flips"],
                   help=SAMPLER_HELP)
    p.add_argument("--budget", type=int, default=300, help="at most this many frames in all (default 300)")
    p.add_argument("--per-hour", type=int, help="at most this many frames per hour (default: 4x the average)")
    p.add_argument("--interval", type=float, help="seconds between frames read from the source")
    p.add_argument("--duration", type=float, help="stop after this many seconds of frames (default: whole "
                   "source; the budget is spread over it, a day for a camera)")
    p.add_argument("--every", type=float, help="time sampler: seconds between kept frames (default duration/budget)")
    p.add_argument("--roi", help="region of interest x0,y0,x1,y1 in pixels, e.g. around the door "
                   "(default: the dataset's ROI, for sim: the door's, else the whole frame)")
    p.add_argument("--model", metavar="MODEL_DIR", help="trained model directory for the flips sampler (and smart)")
    p.add_argument("--classes", metavar="A,B,...", help="the dataset's classes (default closed,open for a new "
                   "dataset; every class labels already use must stay)")
    _add_source_options(p)
    p.set_defaults(func=run_collect)


def _planned_duration(source, args: argparse.Namespace) -> float:
    """Seconds of stream the budget is spread over: --duration, else the source's length, else a day."""
    from camlytics.constants import DAY

    if args.duration:
        return float(args.duration)
    if hasattr(source, "end") and hasattr(source, "start"):  # simulator
        return float(source.end - source.start)
    entries = getattr(source, "entries", None)  # image folder: the span of its timestamps
    if entries and len(entries) > 1:
        return max(1.0, float(entries[-1][0] - entries[0][0]))
    return DAY


def _refused_message(exc: AuthError, stats: CollectStats, dataset: str) -> str:
    """One line for a camera refusing the credentials: the HTTP status, what was kept, what to fix."""
    found = re.search(r"\(HTTP (40[13])\)", str(exc))
    if found is None:  # not the camera's answer (e.g. a password without a user name): already clear
        return str(exc)
    code = found[1]
    kept = "" if not stats.seen else f" after {stats.seen} frames (" + (
        f"the {stats.kept} kept are stored in {dataset})" if stats.kept else "none kept)")
    fix = ("use a camera user allowed to take snapshots (viewer role or higher)" if code == "403" else
           "fix the user name and password (in the URL, --user/--password, or $CAMLYTICS_USER / $CAMLYTICS_PASSWORD)")
    return f"the camera refused the credentials (HTTP {code}){kept}: {exc}; {fix}"


def run_collect(args: argparse.Namespace) -> int:
    """Run the collector with a live progress display."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from camlytics.errors import AuthError, CamlyticsError
    from camlytics.sampling import make_sampler
    from camlytics.sampling.collect import CollectStats, StopFlag, collect
    from camlytics.sources import open_source, source_kind
    from camlytics.store import Dataset
    from camlytics.store.dataset import parse_classes
    from camlytics.validate import Roi, check_positive, parse_roi

    check_positive("--budget", args.budget, integer=True)
    classes = parse_classes(args.classes) if args.classes is not None else None
    roi = parse_roi(args.roi, what="--roi") if args.roi is not None else None
    options = _source_options(args)
    for name in ("duration", "per_hour", "every"):
        if getattr(args, name) is not None:
            check_positive("--" + name.replace("_", "-"), getattr(args, name), integer=name == "per_hour")
    if args.every is not None and args.sampler != "time":
        raise CamlyticsError(f"--every sets the time sampler's spacing; the {args.sampler} sampler decides itself "
                             "(use --sampler time, or --budget)")
    kind = source_kind(args.source)
    predict = None
    if args.model:
        from camlytics.model.predictor import load_predictor

        predict = load_predictor(args.model)
    first = open_source(args.source, duration=args.duration, **options)  # fail fast on a bad spec: no dataset made
    sources = [first]  # handed to collect(), which closes it; closed here if anything fails before
    stats = CollectStats()
    try:
        with Dataset.open_or_create(args.dataset) as ds:  # a failed first run leaves no empty dataset behind
            if classes is not None and classes != ds.classes:
                ds.set_classes(classes)
            scene = getattr(first, "scene", None)
            if roi is None and ds.roi is None and scene is not None:
                roi = Roi(*scene.door_roi)  # the simulator knows where its door is: the ROI an installer would draw
                print(f"using the simulated door's region of interest {roi}")
            new_roi = roi is not None and roi != ds.roi
            roi = roi or (Roi(*ds.roi) if ds.roi else None)

            def check_frame(frame) -> None:
                """The ROI must lie inside the frames; a new one is stored with the dataset once it does."""
                nonlocal new_roi
                w, h = frame.size
                if roi is not None and not roi.inside(w, h):
                    raise CamlyticsError(f"roi {roi} is not inside the {w}x{h} frames of "
                                         f"{frame.source}")
                if new_roi:
                    ds.set_roi(roi)
                    new_roi = False

            duration = _planned_duration(first, args)
            # the simulator's bar runs on stream time: a sampler's bursts add frames, not time
            by_time = hasattr(first, "end") and hasattr(first, "start")
            total = duration if by_time else len(first) if hasattr(first, "__len__") else None
            sampler = make_sampler(args.sampler, budget=args.budget, duration=duration, roi=roi, interval=args.every,
                                   predict=predict, per_hour=args.per_hour)

            def next_source():
                return sources.pop() if sources else open_source(args.source, **options)

            console = Console(stderr=True)
            progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[seen]} frames"),
                TextColumn("kept {task.fields[kept]}/{task.fields[budget]}  {task.fields[by]}"),
                TextColumn("{task.fields[rate]:.1f} frames/s"), TextColumn("[yellow]{task.fields[note]}"),
                TimeElapsedColumn(), console=console, transient=False,
            )
            task = progress.add_task(f"collect ({args.sampler})", total=total, kept=0, budget=args.budget, by="",
                                     rate=0.0, note="", seen=0)

            def show(stats) -> None:
                by = " ".join(f"{k.removeprefix('smart/')}:{v}" for k, v in sorted(stats.kept_by.items()))
                note = f"retrying: {stats.last_error}" if stats.last_error and stats.reconnects else ""
                progress.update(task, completed=stats.stream_seconds if by_time else stats.seen, seen=stats.seen,
                                kept=stats.kept, by=by, rate=stats.rate, note=note[:60])

            stop = StopFlag()
            with progress, stop.on_sigint():
                stats = collect(next_source, ds, sampler, live=kind in ("vapix", "mjpeg"), duration=args.duration,
                                stop=stop, on_frame=show, check_frame=check_frame, stats=stats)
                show(stats)
    except AuthError as exc:  # raised past the dataset: it is closed (or removed, if new and empty) by now
        raise AuthError(_refused_message(exc, stats, args.dataset)) from None
    finally:
        for source in sources:
            source.close()

    how = "stopped by Ctrl-C" if stats.stopped else "done"
    per = ", ".join(f"{k}: {v}" for k, v in sorted(stats.kept_by.items())) or "none"
    print(f"{how}: {stats.seen} frames seen, {stats.kept} kept ({per}) in {args.dataset}"
          + (f"; {stats.reconnects} reconnects" if stats.reconnects else ""))
    return 130 if stats.stopped else 0  # 128+SIGINT, as a shell reports Ctrl-C (the CLI makes it 128+N for others)
