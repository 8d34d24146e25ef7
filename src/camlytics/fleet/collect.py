"""`camlytics fleet collect`: every camera of the fleet polled at once, one dataset per sensor.

One asyncio task per camera keeps that camera's schedule: a slot every `interval` seconds (staggered across
the fleet so the polls spread over the interval), at most `[fleet] concurrency` snapshots in flight. A poll
fetches and decodes one JPEG (the camera client of `camlytics snapshot`, in a worker thread) and offers the
frame to every sensor of the camera: each sensor has its own sampler, ROI and dataset, as `camlytics
collect` would give it. A camera that fails is retried with exponential backoff and reported; the others
go on. Ctrl-C (SIGINT, SIGTERM) lets the polls in flight finish, then every dataset is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from camlytics.errors import AuthError, CamlyticsError, SourceError
from camlytics.fleet.config import CameraSpec, Fleet, SensorSpec, add_fleet_option, load_fleet

BACKOFF_START = 1.0  # seconds before the first retry of a failed camera; doubles up to BACKOFF_MAX
BACKOFF_MAX = 60.0


@dataclass
class SensorRun:
    """One sensor during a run: its sampler and dataset, and what it kept."""

    spec: SensorSpec
    dataset: object  # camlytics.store.Dataset (imported in the command: numpy, PIL)
    sampler: object  # camlytics.sampling.Sampler
    roi: tuple[int, int, int, int] | None
    new_roi: bool = False  # stored with the dataset once a frame shows that it fits
    seen: int = 0
    kept: int = 0
    kept_by: Counter = field(default_factory=Counter)
    truth_seen: Counter = field(default_factory=Counter)  # simulator ground truth, for the rare share
    truth_kept: Counter = field(default_factory=Counter)
    error: str | None = None  # set when this sensor stopped (its ROI does not fit the frames, a full disk...)
    checked: bool = False

    @property
    def budget(self) -> int:
        return int(self.spec.collect["budget"])

    @property
    def rare_share(self) -> float | None:
        """Share of the kept frames showing the least frequent true state seen (simulated cameras only)."""
        if len(self.truth_seen) < 2 or not self.kept:  # one state seen so far: none is rare yet
            return None
        rare = min(self.truth_seen, key=lambda s: (self.truth_seen[s], s))
        return self.truth_kept[rare] / max(1, sum(self.truth_kept.values()))

    def offer(self, frame) -> None:
        """Give the frame to the sampler; store it if kept. Errors stop this sensor only."""
        from camlytics.sampling.collect import record_meta
        from camlytics.validate import Roi

        if self.error:
            return
        try:
            if not self.checked:  # the first frame of each (re)connection: a camera may change its resolution
                w, h = frame.size
                if self.roi is not None and not Roi(*self.roi).inside(w, h):
                    raise CamlyticsError(f"roi {Roi(*self.roi)} is not inside the {w}x{h} frames of the camera")
                if self.new_roi:
                    self.dataset.set_roi(self.roi)
                    self.new_roi = False
                self.checked = True
            self.seen += 1
            state = (frame.meta.get("truth") or {}).get("state") if isinstance(frame.meta.get("truth"), dict) else None
            if state is not None:
                self.truth_seen[state] += 1
            decision = self.sampler.offer(frame)
            if decision is None:
                return
            before = len(self.dataset)
            self.dataset.add_image(frame.to_jpeg(), timestamp=frame.timestamp, source=frame.source,
                                   sampler=decision.sampler, reason=decision.reason, score=decision.score,
                                   meta=record_meta(frame))
            if len(self.dataset) > before:  # the same bytes twice are stored once
                self.kept += 1
                self.kept_by[decision.sampler] += 1
                if state is not None:
                    self.truth_kept[state] += 1
        except CamlyticsError as exc:
            self.error = str(exc)


@dataclass
class CameraRun:
    """One camera during a run: its client, its sensors, and how its polls went."""

    spec: CameraSpec
    source: object  # camlytics.sources.vapix.VapixCamera
    sensors: list[SensorRun]
    polls: int = 0  # polls tried
    frames: int = 0  # frames fetched and decoded
    failures: int = 0
    last_error: str | None = None
    down_since: float | None = None  # monotonic time of the first failure of the current outage
    retry_at: float | None = None
    refused: str | None = None  # the camera refused the credentials: not retried
    max_late: float = 0.0  # worst start of a poll after its slot, seconds
    missed: int = 0  # slots skipped because a poll started more than one interval late
    fetch_seconds: float = 0.0

    def poll(self) -> None:
        """Fetch and decode one snapshot and offer it to every sensor (runs in a worker thread)."""
        started = time.monotonic()
        frame = self.source.snapshot()
        self.fetch_seconds += time.monotonic() - started
        self.frames += 1
        for sensor in self.sensors:
            sensor.offer(frame)

    def step(self) -> float:
        """Seconds to the next slot: the camera's interval, or faster while a sampler asks for a burst."""
        paces = [s.sampler.pace for s in self.sensors if not s.error and getattr(s.sampler, "pace", None)]
        return min([self.spec.interval, *paces])

    @property
    def active(self) -> bool:
        return self.refused is None and any(not s.error for s in self.sensors)


@dataclass
class Limits:
    """When a run ends: after `duration` seconds, after `frames` frames per camera, or when `stop` is set."""

    duration: float | None = None
    frames: int | None = None


async def camera_loop(run: CameraRun, slots: asyncio.Semaphore, stop: asyncio.Event, limits: Limits,
                      offset: float, on_poll: Callable[[CameraRun], None]) -> None:
    """Poll one camera on its slots until the limits or `stop`; back off while it fails."""
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    slot = start + offset
    backoff = BACKOFF_START
    while run.active and not stop.is_set():
        if limits.frames is not None and run.frames >= limits.frames:
            return
        if limits.duration is not None and slot >= start + limits.duration:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, slot - time.monotonic()))
        if stop.is_set():
            return
        async with slots:
            begun = time.monotonic()
            late = begun - slot
            run.max_late = max(run.max_late, late)
            run.polls += 1
            try:
                await loop.run_in_executor(None, run.poll)
            except AuthError as exc:  # a wrong password does not heal by waiting (and retries may lock it)
                run.refused = str(exc)
            except SourceError as exc:
                run.failures += 1
                run.last_error = str(exc)
                run.down_since = run.down_since or begun
                run.retry_at = time.monotonic() + backoff
                for sensor in run.sensors:
                    sensor.checked = False  # the camera may come back with another resolution
            else:
                run.down_since = run.retry_at = None
                backoff = BACKOFF_START
        on_poll(run)
        if run.retry_at is not None:  # failed: the next try after the backoff, then the slots again
            slot = run.retry_at
            backoff = min(BACKOFF_MAX, backoff * 2)
            continue
        step = run.step()
        slot += step
        if time.monotonic() - slot > step:  # more than one interval behind: skip, do not burst to catch up
            skipped = int((time.monotonic() - slot) // step)
            run.missed += skipped
            slot += skipped * step


async def collect_fleet(runs: list[CameraRun], *, concurrency: int, limits: Limits, stop: asyncio.Event,
                        on_poll: Callable[[CameraRun], None] = lambda run: None) -> None:
    """Poll every camera on its own schedule, at most `concurrency` polls at once, until all are done."""
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fleet-poll")
    loop.set_default_executor(executor)
    slots = asyncio.Semaphore(concurrency)
    tasks = [asyncio.create_task(camera_loop(run, slots, stop, limits, i * run.spec.interval / len(runs), on_poll))
             for i, run in enumerate(runs)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        executor.shutdown(wait=True)  # a poll in flight finishes before its datasets close


@contextlib.contextmanager
def stop_on_sigint(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> Iterator[None]:
    """The first Ctrl-C sets `stop` (the polls in flight finish); a second one interrupts at once.
    SIGTERM and SIGHUP reach this handler through the CLI (cli.install_stop_signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        if stop.is_set():
            raise KeyboardInterrupt
        loop.call_soon_threadsafe(stop.set)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def open_sensor(spec: SensorSpec, stack: contextlib.ExitStack, duration: float, predictors: dict) -> SensorRun:
    """The sensor's dataset (created with its classes and ROI) and its sampler, as `camlytics collect` makes them."""
    from camlytics.sampling import make_sampler
    from camlytics.store import Dataset

    dataset = stack.enter_context(Dataset.open_or_create(spec.dataset))
    if list(spec.classes) != list(dataset.classes):
        dataset.set_classes(list(spec.classes))
    roi = spec.roi or (tuple(dataset.roi) if dataset.roi else None)
    options = spec.collect
    predict = None
    if "model" in options:
        model = str(spec.root / options["model"])
        if model not in predictors:
            from camlytics.model.predictor import load_predictor

            predictors[model] = load_predictor(model)
        predict = predictors[model]
    sampler = make_sampler(options["sampler"], budget=int(options["budget"]), duration=duration, roi=roi,
                           interval=options.get("every"), predict=predict, per_hour=options.get("per_hour"))
    return SensorRun(spec=spec, dataset=dataset, sampler=sampler, roi=roi,
                     new_roi=spec.roi is not None and tuple(spec.roi) != tuple(dataset.roi or ()))


def open_camera(spec: CameraSpec, stack: contextlib.ExitStack, duration: float, timeout: float,
                predictors: dict) -> CameraRun:
    """The camera's client (no retries inside: the fleet loop backs off) and its sensors."""
    from camlytics.sources.vapix import VapixCamera

    user, password = spec.credentials()
    source = VapixCamera(spec.url, user=user, password=password, resolution=spec.resolution, timeout=timeout,
                         retries=0)
    stack.callback(source.close)
    return CameraRun(spec=spec, source=source, sensors=[open_sensor(s, stack, duration, predictors)
                                                        for s in spec.sensors])


def planned_duration(args: argparse.Namespace, fleet: Fleet) -> float:
    """Seconds the budgets are spread over: --duration, else --frames polls of the slowest camera, else a day."""
    from camlytics.constants import DAY

    if args.duration:
        return float(args.duration)
    if args.frames:
        return float(args.frames * max(c.interval for c in fleet.cameras))
    return DAY


def camera_note(run: CameraRun) -> str:
    """What is wrong with a camera right now ('' when nothing)."""
    if run.refused:
        return f"stopped: {run.refused}"
    if run.retry_at is not None:
        return f"down ({run.failures} failed polls), retrying in {max(0.0, run.retry_at - time.monotonic()):.0f} s: " \
               f"{run.last_error}"
    return ""


def summary_lines(runs: list[CameraRun]) -> list[str]:
    """One line per sensor, and one per camera that failed."""
    lines = []
    for run in runs:
        for s in run.sensors:
            rare = "" if s.rare_share is None else f", rare {100 * s.rare_share:.0f}%"
            by = ", ".join(f"{k}: {v}" for k, v in sorted(s.kept_by.items())) or "none"
            lines.append(f"{s.spec.key}: {s.seen} frames seen, {s.kept} kept ({by}){rare} in {s.spec.dataset}"
                         + (f"; stopped: {s.error}" if s.error else ""))
        if run.refused:
            lines.append(f"{run.spec.name}: refused the credentials, not retried: {run.refused}")
        elif run.failures:
            state = "down at the end" if run.retry_at is not None else "recovered"
            lines.append(f"{run.spec.name}: {run.failures} failed polls ({state}); last: {run.last_error}")
    return lines


def run_collect(args: argparse.Namespace) -> int:
    """Collect from every camera of the fleet with one progress display; 130 when stopped by Ctrl-C."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from camlytics.validate import check_positive

    for name in ("duration", "timeout"):
        if getattr(args, name) is not None:
            check_positive("--" + name, getattr(args, name))
    if args.frames is not None:
        check_positive("--frames", args.frames, integer=True)
    fleet = load_fleet(args.fleet)
    for camera in fleet.cameras:
        camera.credentials()  # a missing variable stops the run before anything is opened
    duration = planned_duration(args, fleet)
    limits = Limits(duration=args.duration, frames=args.frames)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=20),
                        TextColumn("kept {task.completed}/{task.total}"), TextColumn("{task.fields[seen]} seen"),
                        TextColumn("rare {task.fields[rare]}"), TextColumn("[yellow]{task.fields[note]}"),
                        TimeElapsedColumn(), console=Console(stderr=True), transient=False)
    with contextlib.ExitStack() as stack:
        predictors: dict = {}
        runs = [open_camera(c, stack, duration, args.timeout, predictors) for c in fleet.cameras]
        tasks = {id(s): progress.add_task(s.spec.key, total=s.budget, seen=0, rare="-", note="")
                 for run in runs for s in run.sensors}

        def show(run: CameraRun) -> None:
            note = camera_note(run)
            for s in run.sensors:
                rare = "-" if s.rare_share is None else f"{100 * s.rare_share:.0f}%"
                progress.update(tasks[id(s)], completed=s.kept, seen=s.seen, rare=rare,
                                note=(f"stopped: {s.error}" if s.error else note)[:70])

        async def main() -> None:
            stop = asyncio.Event()
            with stop_on_sigint(asyncio.get_running_loop(), stop):
                await collect_fleet(runs, concurrency=fleet.concurrency, limits=limits, stop=stop, on_poll=show)
            stopped.append(stop.is_set())

        stopped: list[bool] = []
        with progress:
            asyncio.run(main())
    for line in summary_lines(runs):
        print(line)
    if stopped and stopped[0]:
        print("stopped by Ctrl-C: every dataset is closed and consistent")
        return 130  # 128+SIGINT; the CLI makes it 128+N for SIGTERM and SIGHUP
    failed = [run.spec.name for run in runs if run.refused] + [s.spec.key for run in runs for s in run.sensors if s.error]
    if failed:
        print(f"camlytics fleet collect: stopped early: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `fleet collect`."""
    p = subparsers.add_parser(
        "collect", help="collect from every camera at once, one dataset per sensor",
        description="Poll every camera of the fleet file on its interval (at most [fleet] concurrency at once); "
        "each snapshot is decoded once and offered to every sensor of its camera: its own sampler, ROI and "
        "dataset (ROOT/datasets/CAMERA/SENSOR, created with the sensor's classes and ROI). A camera that fails "
        "is retried with backoff (1 s doubling to 60 s) while the others go on; one that refuses the "
        "credentials stops alone. Ctrl-C stops cleanly.")
    add_fleet_option(p)
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: until Ctrl-C; the "
                   "budgets are spread over S, or over a day)")
    p.add_argument("--frames", type=int, metavar="N", help="stop each camera after N frames")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds to wait for one snapshot "
                   "(default 10)")
    p.set_defaults(func=run_collect)
