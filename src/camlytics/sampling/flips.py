"""Classifier flips: frames where a model's state changes only briefly, or where it is unsure."""

from __future__ import annotations

from collections.abc import Callable

from camlytics.frames import Frame
from camlytics.sampling.base import Budget, Decision, Sampler
from camlytics.sampling.features import FrameView

Predictor = Callable[[Frame], dict[str, float]]


class FlipSampler(Sampler):
    """Keep frames the model is unsure about, and flips of its predicted state (brief flips above all).

    A flip is a prediction differing from the stable state (the state of the last `stable` frames).
    The flip frame is kept; when the state flips back within `short` frames the frame that flips back
    is kept too (a brief flip is often a model error: exactly the frames to label).
    """

    name = "flips"

    def __init__(self, predict: Predictor, budget: Budget, roi=None, low_confidence: float = 0.65,
                 stable: int = 3, short: int = 3):
        super().__init__(roi)
        if not callable(predict):
            raise TypeError(f"predict must be callable Frame -> dict[str, float], got {predict!r}")
        self.predict = predict
        self.budget = budget
        self.low_confidence = low_confidence
        self.stable, self.short = stable, short
        self.state: str | None = None  # the stable predicted state
        self._run_label: str | None = None
        self._run = 0
        self._flip_age: int | None = None  # frames since a flip away from the stable state

    def _decide(self, view: FrameView) -> Decision | None:
        t = view.timestamp
        self.budget.advance(t)
        probs = self.predict(view.frame)
        if not probs:
            return None
        label = max(probs, key=probs.get)
        confidence = float(probs[label])
        self._run = self._run + 1 if label == self._run_label else 1
        self._run_label = label
        decision = None
        if self.state is None:
            if self._run >= self.stable:
                self.state = label
        elif label != self.state:
            if self._flip_age is None:
                self._flip_age = 0
                decision = (1.0 - confidence + 1.0, f"flip {self.state} -> {label} ({confidence:.2f})")
            else:
                self._flip_age += 1
            if self._run >= self.stable:
                self.state, self._flip_age = label, None  # a real change of state
        elif self._flip_age is not None:
            if self._flip_age < self.short:
                decision = (2.0, f"brief flip back to {label} after {self._flip_age + 1} frames")
            self._flip_age = None
        if decision is None and confidence < self.low_confidence:
            decision = (1.0 - confidence, f"low confidence {label} {confidence:.2f}")
        if decision is None or not self.budget.can_spend():
            return None
        self.budget.spend(t)
        return Decision(self.name, decision[0], decision[1])
