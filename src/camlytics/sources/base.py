"""The FrameSource interface every source implements: an iterator of Frames with limits and a skip policy."""

from __future__ import annotations

import logging
import math
import time
from typing import Iterator

from camlytics.errors import SourceError
from camlytics.frames import Frame

log = logging.getLogger(__name__)


def check_limit(name: str, value: float | int | None, *, integer: bool = False) -> float | int | None:
    """Validate an optional positive limit (count, duration, interval); ValueError names the bad value."""
    if value is None:
        return None
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        raise SourceError(f"{name} must be a {'whole ' if integer else ''}number, got {value!r}") from None
    if not math.isfinite(number):
        raise SourceError(f"{name} must be a finite number, got {value!r}")
    if integer and float(value) != number:
        raise SourceError(f"{name} must be a whole number, got {value!r}")
    if number <= 0:
        raise SourceError(f"{name} must be > 0, got {value!r}")
    return number


class FrameSource:
    """Frames in time order from one source; `skipped` counts corrupt frames that were dropped.

    Subclasses implement `_read()`, yielding Frames and, for a frame that cannot be decoded, a
    SourceError instance (not raised). The base class applies `count` and `duration` (seconds of frame
    time after the first frame) and the skip policy: a bad frame is skipped and counted, unless nothing
    good came yet from a live source (`strict_start`: asked again `first_frame_retries` times after
    `first_frame_backoff` seconds, then an error), or `max_bad_run` bad frames come in a row.
    """

    strict_start = True  # live sources: a first bad answer is retried once, then an error, not a skip
    first_frame_retries = 1  # a camera's first answer may be a hiccup (e.g. one corrupt JPEG): ask again
    first_frame_backoff = 0.5  # seconds before asking again
    max_bad_run = 20

    def __init__(self, name: str, *, count: int | None = None, duration: float | None = None) -> None:
        self.name = name
        self.count = check_limit("count", count, integer=True)
        self.duration = check_limit("duration", duration)
        self.skipped = 0
        self.produced = 0
        self.last_error: SourceError | None = None
        self._closed = False
        self._pace: float | None = None

    def pace(self, interval: float | None) -> None:
        """Ask for frames every `interval` seconds for now (a burst), or at the source's own rate (None).

        A sampler asks for a burst when something starts to happen, so a door's swing is seen frame
        by frame, not once in 20 s. Sources that poll (the simulator, VAPIX snapshots) follow it and
        never go slower than their own interval; streams that push frames (MJPEG, video, folders)
        deliver every frame anyway and ignore it.
        """
        self._pace = float(interval) if interval else None

    def _next_interval(self, own: float | None) -> float | None:
        """The interval to wait now: the burst pace when one is asked for and faster, else `own`.

        A source without an interval of its own (as fast as served) is never slowed down by a pace.
        """
        if self._pace is None or own is None:
            return own
        return min(own, self._pace)

    def _read(self) -> Iterator[Frame | SourceError]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        first_ts: float | None = None
        bad_run = 0
        if self.count is not None and self.produced >= self.count:
            return
        for item in self._read():
            if isinstance(item, SourceError):
                self.last_error = item
                bad_run += 1
                first = self.strict_start and self.produced == 0
                if (first and bad_run > self.first_frame_retries) or bad_run >= self.max_bad_run:
                    if bad_run > 1:
                        raise SourceError(f"{item} ({bad_run} bad frames in a row)")
                    raise item
                self.skipped += 1
                if first:
                    log.warning("%s: the first frame was unreadable (%s); asking again in %.1f s",
                                self.name, item, self.first_frame_backoff)
                    time.sleep(self.first_frame_backoff)
                    continue
                log.warning("%s: skipped a bad frame: %s", self.name, item)
                continue
            bad_run = 0
            if first_ts is None:
                first_ts = item.timestamp
            if self.duration is not None and item.timestamp - first_ts >= self.duration:
                return
            self.produced += 1
            yield item
            if self.count is not None and self.produced >= self.count:
                return
        if self.produced == 0 and self.last_error is not None:
            raise SourceError(f"{self.last_error} (no readable frame; {self.skipped} skipped)")

    def close(self) -> None:
        """Release connections and files; iterating afterwards yields nothing."""
        self._closed = True

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
