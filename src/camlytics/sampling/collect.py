"""The collect loop: frames from a source, through a sampler, into a dataset; survives a camera going away."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from camlytics.errors import AuthError, SourceError
from camlytics.frames import Frame
from camlytics.sampling.base import Sampler
from camlytics.sources.base import FrameSource
from camlytics.store import Dataset

log = logging.getLogger(__name__)

BACKOFF_START = 1.0
BACKOFF_MAX = 60.0
# Frame meta keys worth keeping with the record (the simulator's truth lets the demo label itself).
META_KEYS = ("truth", "sim_time", "path", "original_name", "camera", "timestamp_from")


@dataclass
class CollectStats:
    """What a collect run did so far."""

    seen: int = 0
    kept: int = 0
    kept_by: Counter = field(default_factory=Counter)
    reconnects: int = 0
    skipped: int = 0
    last_error: str | None = None
    last_reason: str | None = None
    stopped: bool = False  # Ctrl-C
    stream_seconds: float = 0.0  # frame time covered so far (bursts add frames, not time)
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        """Frames seen per wall-clock second."""
        return self.seen / max(1e-9, time.monotonic() - self.started)


def record_meta(frame: Frame) -> dict:
    """The parts of a frame's meta stored with its record."""
    return {k: frame.meta[k] for k in META_KEYS if k in frame.meta}


class StopFlag:
    """Set by the first Ctrl-C (SIGINT): the loop finishes the current frame and stops cleanly."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    def sleep(self, seconds: float) -> None:
        """Sleep, waking at once when the flag is set."""
        self.event.wait(seconds)

    @contextmanager
    def on_sigint(self) -> Iterator[StopFlag]:
        """Install the handler for the duration (main thread only); a second Ctrl-C interrupts at once."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum, frame):  # noqa: ARG001
            if self.event.is_set():
                raise KeyboardInterrupt
            self.event.set()

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


def collect(
    open_source: Callable[[], FrameSource],
    dataset: Dataset,
    sampler: Sampler,
    *,
    live: bool,
    duration: float | None = None,
    stop: StopFlag | None = None,
    on_frame: Callable[[CollectStats], None] | None = None,
    backoff_start: float = BACKOFF_START,
    check_frame: Callable[[Frame], None] | None = None,
    stats: CollectStats | None = None,
) -> CollectStats:
    """Feed every frame to the sampler and store the kept ones, until the source ends, `duration`
    seconds of frame time have passed, or `stop` is set. A live source (camera) that fails is reopened
    with exponential backoff; a file or simulator failing is an error (SourceError). A camera refusing the
    credentials (AuthError: HTTP 401/403) ends the collection at once, between two stored frames: a wrong
    password does not heal by waiting.
    `check_frame` sees the first frame of every opened source before it is offered (e.g. the ROI must fit
    the frame size, which a reopened camera may have changed); what it raises ends the collection.
    Pass `stats` to read what was done when the collection ends with an exception."""
    stats = CollectStats() if stats is None else stats
    stop = StopFlag() if stop is None else stop
    first_ts: float | None = None
    backoff = backoff_start
    records = len(dataset)  # `kept` counts the records this run added
    while not stop:
        try:
            source = open_source()
            paced: float | None = None
            if sampler.pace is not None:  # reopened during a burst
                paced = sampler.pace
                source.pace(paced)
            checked = check_frame is None
            try:
                for frame in source:
                    if not checked:
                        check_frame(frame)
                        checked = True
                    if first_ts is None:
                        first_ts = frame.timestamp
                    if duration is not None and frame.timestamp - first_ts >= duration:
                        return stats
                    stats.seen += 1
                    stats.stream_seconds = frame.timestamp - first_ts
                    decision = sampler.offer(frame)
                    if sampler.pace != paced:  # a burst starts or ends
                        paced = sampler.pace
                        source.pace(paced)
                    if decision is not None:
                        dataset.add_image(
                            frame.to_jpeg(), timestamp=frame.timestamp, source=frame.source, sampler=decision.sampler,
                            reason=decision.reason, score=decision.score, original_name=frame.meta.get("path"),
                            meta=record_meta(frame),
                        )
                        if len(dataset) > records:  # the same bytes again (a still night) are stored once
                            records += 1
                            stats.kept += 1
                            stats.kept_by[decision.sampler] += 1
                        stats.last_reason = decision.reason
                    backoff = backoff_start  # frames flow again
                    if on_frame is not None:
                        on_frame(stats)
                    if stop:
                        break
                else:
                    return stats  # the source has no more frames
            finally:
                stats.skipped += source.skipped
                source.close()
        except AuthError:
            raise  # retrying a wrong password only fills the camera's log (and may lock the account)
        except SourceError as exc:
            if not live:
                raise
            stats.reconnects += 1
            stats.last_error = str(exc)
            log.warning("source failed (%s); retrying in %.0f s", exc, backoff)
            if on_frame is not None:
                on_frame(stats)
            stop.sleep(backoff)
            backoff = min(BACKOFF_MAX, backoff * 2)
    stats.stopped = True
    return stats
