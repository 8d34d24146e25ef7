"""The baseline: keep one frame every `interval` seconds of stream time."""

from __future__ import annotations

from camlytics.sampling.base import Budget, Decision, Sampler
from camlytics.sampling.features import FrameView
from camlytics.validate import check_positive


class TimeSampler(Sampler):
    """Keep the first frame, then the first frame at least `interval` seconds after the last kept one."""

    name = "time"

    def __init__(self, interval: float, budget: Budget | None = None, roi=None):
        super().__init__(roi)
        self.interval = check_positive("interval", interval)
        self.budget = budget
        self._last: float | None = None

    def _decide(self, view: FrameView) -> Decision | None:
        t = view.timestamp
        if self.budget is not None:
            self.budget.advance(t)
        if self._last is not None and t - self._last < self.interval:
            return None
        if self.budget is not None and not self.budget.can_spend():
            return None
        self._last = t
        if self.budget is not None:
            self.budget.spend(t)
        return Decision(self.name, 1.0, f"every {self.interval:g} s")
