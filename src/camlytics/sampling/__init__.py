"""Samplers: pick a small, diverse set of frames from a long stream, each with a score and a reason."""

from __future__ import annotations

from camlytics.constants import DAY
from camlytics.errors import CamlyticsError
from camlytics.sampling.base import Budget, Decision, Sampler
from camlytics.sampling.features import FrameView
from camlytics.sampling.flips import FlipSampler, Predictor
from camlytics.sampling.motion import MotionSampler
from camlytics.sampling.novelty import ColorNovelty, HogNovelty
from camlytics.sampling.smart import SmartSampler
from camlytics.sampling.timebased import TimeSampler

SAMPLERS = ("smart", "time", "hog", "color", "motion", "flips")

__all__ = ["SAMPLERS", "Budget", "Decision", "FrameView", "Sampler", "make_sampler", "TimeSampler", "HogNovelty",
           "ColorNovelty", "MotionSampler", "FlipSampler", "SmartSampler"]


def make_sampler(
    name: str,
    *,
    budget: int = 300,
    duration: float = DAY,
    roi: tuple[int, int, int, int] | None = None,
    interval: float | None = None,
    predict: Predictor | None = None,
    per_hour: int | None = None,
) -> Sampler:
    """A sampler by name, keeping at most `budget` frames spread over `duration` seconds of stream."""
    if name not in SAMPLERS:
        raise CamlyticsError(f"sampler must be one of {', '.join(SAMPLERS)}, got {name!r}")
    plan = Budget(budget, duration=duration, per_hour=per_hour)
    if name == "time":
        return TimeSampler(interval if interval else duration / plan.total, plan, roi)
    if name == "flips":
        if predict is None:
            raise CamlyticsError("the flips sampler needs a model: pass --model MODEL_DIR")
        return FlipSampler(predict, plan, roi)
    if name == "smart":
        return SmartSampler(plan, roi, predict)
    return {"hog": HogNovelty, "color": ColorNovelty, "motion": MotionSampler}[name](plan, roi)
