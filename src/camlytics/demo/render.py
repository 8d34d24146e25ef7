"""Simulated frames rendered by a pool of processes, delivered in time order.

Rendering a 640x360 frame takes ~40 ms on one core, so a day at one frame every 30 s is most of a
minute on its own: the demo spreads it over the CPUs. Each worker runs the ordinary in-process
simulator source (`sim:PRESET?...`) on a slice of the day; the frames are the ones
`camlytics collect sim:...` would read, with `meta["truth"]`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator, Sequence
from itertools import chain

from camlytics.constants import DAY
from camlytics.frames import Frame
from camlytics.sources.base import FrameSource

CHUNK = 48  # frames per task: large enough to amortise the pickling, small enough to keep both workers busy
WIDTH, HEIGHT = 640, 360
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def default_workers() -> int:
    """Rendering processes: the CPUs this process may use, at most 4 (the samplers need the rest)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def _render_slice(task: tuple[str, int, float, float, int]) -> list[Frame]:
    """Frames of one slice of the day, read from the in-process simulator source."""
    from camlytics.sources import open_source

    preset, seed, start, interval, count = task
    with open_source(f"sim:{preset}?seed={seed}&interval={interval!r}&start={start!r}&count={count}"
                     f"&width={WIDTH}&height={HEIGHT}") as source:
        return list(source)


def _render_times(task: tuple[str, int, tuple[float, ...]]) -> list[Frame]:
    """Frames at chosen times (a stratified test set), from the scene directly."""
    from camlytics.sim.camera import shared_scene

    preset, seed, times = task
    scene = shared_scene(preset, seed, WIDTH, HEIGHT)
    return [scene.frame(t) for t in times]


class Renderer:
    """A process pool that renders simulated frames; a context manager."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or default_workers()
        # spawn: the workers start clean (no inherited threads or torch state), ~1 s each; one numpy
        # thread each, as the processes already fill the CPUs
        saved = {k: os.environ.get(k) for k in THREAD_VARS}
        os.environ.update({k: "1" for k in THREAD_VARS})
        try:
            self.pool = mp.get_context("spawn").Pool(self.workers)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def day(self, preset: str, seed: int, interval: float, start: float = 0.0, end: float = DAY) -> Iterator[Frame]:
        """Every frame from `start` to `end` at `interval` seconds, in time order."""
        n = int((end - start) / interval - 1e-9) + 1
        tasks = [(preset, seed, start + i * interval, interval, min(CHUNK, n - i)) for i in range(0, n, CHUNK)]
        return chain.from_iterable(self.pool.imap(_render_slice, tasks))

    def at(self, preset: str, seed: int, times: Sequence[float]) -> Iterator[Frame]:
        """Frames at the given times, in the given order (rendering starts at once, in the background)."""
        times = [float(t) for t in times]
        tasks = [(preset, seed, tuple(times[i:i + CHUNK // 2])) for i in range(0, len(times), CHUNK // 2)]
        return chain.from_iterable(self.pool.imap(_render_times, tasks))

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class IteratorSource(FrameSource):
    """Frames from an iterator as a FrameSource, so `sampling.collect.collect` can read them."""

    strict_start = False

    def __init__(self, name: str, frames: Iterator[Frame], total: int | None = None) -> None:
        super().__init__(name)
        self._frames = frames
        self.total = total

    def _read(self) -> Iterator[Frame]:
        yield from self._frames
