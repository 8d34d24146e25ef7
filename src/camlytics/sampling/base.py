"""What every sampler shares: the Decision it returns, the Sampler interface, and budgets."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from camlytics.constants import DAY, HOUR
from camlytics.frames import Frame
from camlytics.sampling.features import FrameView
from camlytics.validate import check_positive


@dataclass(frozen=True)
class Decision:
    """Keep this frame: which sampler wanted it, how strongly (score) and why (reason)."""

    sampler: str
    score: float
    reason: str


class Sampler:
    """Streaming frame selector: `offer(frame)` returns a Decision to keep it, or None. Bounded memory.

    `pace` is the frame interval (seconds) the sampler would like from now on, or None for the
    source's own rate; the collect loop passes it to the source (`FrameSource.pace`).
    """

    name = "sampler"
    pace: float | None = None

    def __init__(self, roi: tuple[int, int, int, int] | None = None):
        self.roi = roi
        self.seen = 0
        self.kept = 0

    def offer(self, frame: Frame) -> Decision | None:
        """Look at the next frame (in time order) and decide whether to keep it."""
        return self.offer_view(FrameView(frame, self.roi))

    def offer_view(self, view: FrameView) -> Decision | None:
        """Like offer(), for a frame whose downscaled views may already be computed."""
        self.seen += 1
        decision = self._decide(view)
        if decision is not None:
            self.kept += 1
        return decision

    def _decide(self, view: FrameView) -> Decision | None:
        raise NotImplementedError


class Budget:
    """How many frames may still be kept: a total cap, a per-hour cap, and a token bucket in between.

    Tokens accrue with stream time at total / duration per second, so the budget is spread over the
    whole run instead of being spent in the first busy hour; the bucket holds up to `burst` tokens so
    a burst of activity can still be kept. `fill` (0..1) tells samplers how freely to spend.
    """

    def __init__(self, total: int, *, duration: float = DAY, per_hour: int | None = None, burst: float | None = None):
        self.total = int(check_positive("budget", total, integer=True))
        self.duration = check_positive("duration", duration)
        self.rate = self.total / self.duration  # tokens per second of stream time
        self.per_hour = int(per_hour) if per_hour else max(1, math.ceil(4 * self.rate * HOUR))
        self.burst = float(burst) if burst else max(2.0, min(self.total / 6, 3 * self.rate * HOUR))
        self.tokens = min(self.burst, max(1.0, self.rate * HOUR))  # a start-up allowance
        self.spent = 0
        self._hour_spent: deque[float] = deque()
        self._last_t: float | None = None

    def advance(self, t: float) -> None:
        """Move the stream clock to t (seconds), accruing tokens."""
        if self._last_t is not None and t > self._last_t:
            self.tokens = min(self.burst, self.tokens + (t - self._last_t) * self.rate)
        if self._last_t is None or t > self._last_t:
            self._last_t = t
        while self._hour_spent and self._hour_spent[0] <= t - HOUR:
            self._hour_spent.popleft()

    @property
    def fill(self) -> float:
        """How full the bucket is, 0..1."""
        return max(0.0, min(1.0, self.tokens / self.burst))

    def can_spend(self) -> bool:
        """True while one more frame fits every cap."""
        return self.spent < self.total and self.tokens >= 1.0 and len(self._hour_spent) < self.per_hour

    def spend(self, t: float) -> None:
        """Account one kept frame at time t."""
        self.tokens -= 1.0
        self.spent += 1
        self._hour_spent.append(t)


class AdaptiveThreshold:
    """A score threshold that keeps about `rate` of the frames: a quantile of recent scores.

    `rate` is scaled by how full the budget is, so a sampler spends more freely when it has saved
    up and becomes pickier when it runs low. Memory is bounded by `window`.
    """

    def __init__(self, window: int = 720, floor: float = 0.0):
        self.scores: deque[float] = deque(maxlen=window)
        self.floor = floor

    def add(self, score: float) -> None:
        """Record a new score."""
        self.scores.append(float(score))

    def threshold(self, rate: float) -> float:
        """The score exceeded by about a `rate` share of recent frames (never below `floor`)."""
        if len(self.scores) < 8:
            return max(self.floor, max(self.scores, default=0.0))
        q = 1.0 - min(1.0, max(rate, 1e-4))
        return max(self.floor, float(np.quantile(np.fromiter(self.scores, np.float64), q)))
