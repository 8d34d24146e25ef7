"""Cross-validated decisions: time-block folds, out-of-fold scores, and the choice of what ships.

Every choice `camlytics train` makes (linear baseline or CNN, student alone or distilled, QAT or not, the
linear model's regularisation) is taken on K-fold time-block cross-validation of the labelled set, not on
one held-out block: a few dozen validation frames cannot tell a 97 % model from a 90 % one.
Candidates are ranked by their out-of-fold int8 balanced accuracy, then by their out-of-fold log loss (a
proper score of how sure the right answers were); a candidate ships only when it beats every simpler one
(`SIMPLICITY` order), so a stage that cross-validation scores below a simpler one never ships.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camlytics.train.metrics import balanced_accuracy

MIN_FOLDS, MAX_FOLDS = 3, 5
FOLD_MIN_PER_CLASS = 8  # each fold's test block should hold at least this many of the rarest class
# A fold's test set is several shorter time blocks when there are labels enough: conditions come in episodes
# (an afternoon of rain, a night the door stood ajar), and one long block per fold would take a whole episode
# out of a fold's training data, judging every candidate on a condition it never saw.
MAX_BLOCKS_PER_FOLD = 3
BLOCK_MIN_PER_CLASS = 10

# What "simpler" means, from the simplest: the linear floor, then the CNN as it is built up stage by stage.
SIMPLICITY = ("linear", "cnn", "cnn+qat", "cnn-distilled", "cnn-distilled+qat")


def fold_count(y: np.ndarray) -> int:
    """K from the data: as many folds as keep FOLD_MIN_PER_CLASS of the rarest class in each, within 3..5."""
    rarest = int(np.bincount(y)[np.bincount(y) > 0].min())
    return int(min(MAX_FOLDS, max(MIN_FOLDS, rarest // FOLD_MIN_PER_CLASS)))


def blocks_per_fold(y: np.ndarray, k: int) -> int:
    """How many time blocks of each class a fold's test set holds: 1 to MAX_BLOCKS_PER_FOLD, each block keeping
    at least BLOCK_MIN_PER_CLASS of the rarest class."""
    rarest = int(np.bincount(y)[np.bincount(y) > 0].min())
    return int(min(MAX_BLOCKS_PER_FOLD, max(1, rarest // (k * BLOCK_MIN_PER_CLASS))))


def time_block_folds(timestamps: np.ndarray, y: np.ndarray, k: int, blocks: int | None = None) -> list[np.ndarray]:
    """K test sets of indices: per class, the time-sorted examples cut into K x `blocks` contiguous blocks dealt
    round-robin to the folds (block j to fold j mod K), so each class is split the same way, no block mixes
    neighbouring frames, and a condition that lasts an hour or two (rain, a door left open at night) falls into
    several folds instead of being missing from one fold's training data. `blocks` defaults to `blocks_per_fold`."""
    m = blocks_per_fold(y, k) if blocks is None else blocks
    folds: list[list[np.ndarray]] = [[] for _ in range(k)]
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[np.argsort(timestamps[idx], kind="stable")]
        for j, chunk in enumerate(np.array_split(idx, k * m)):
            folds[j % k].append(chunk)
    return [np.sort(np.concatenate(parts)) for parts in folds]


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    """Class-balanced mean negative log-probability of the true class."""
    p_true = np.clip(probs[np.arange(len(y)), y], 1e-6, 1.0)
    losses = -np.log(p_true)
    return float(np.mean([losses[y == c].mean() for c in np.unique(y)]))


@dataclass
class Candidate:
    """Out-of-fold predictions of one candidate model family/setting, filled fold by fold."""

    name: str
    family: str  # one of SIMPLICITY
    n: int  # examples in the whole labelled set
    k: int  # classes
    settings: dict[str, Any] = field(default_factory=dict)
    probs: np.ndarray = field(init=False)  # (n, k) out-of-fold class probabilities (int8 model's scores)
    fold_scores: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.probs = np.full((self.n, self.k), np.nan)

    def add_fold(self, test_idx: np.ndarray, probs: np.ndarray, y: np.ndarray) -> None:
        """The fold's test-block probabilities; its balanced accuracy is kept for the spread."""
        self.probs[test_idx] = probs
        self.fold_scores.append(balanced_accuracy(y[test_idx], probs.argmax(1), self.k))

    def summary(self, y: np.ndarray) -> dict[str, Any]:
        """CV mean/spread of the balanced accuracy, the pooled out-of-fold figures and log loss."""
        done = ~np.isnan(self.probs[:, 0])
        pred = self.probs[done].argmax(1)
        return {"family": self.family, "settings": self.settings,
                "mean": float(np.mean(self.fold_scores)), "std": float(np.std(self.fold_scores)),
                "folds": [float(v) for v in self.fold_scores],
                "pooled_balanced_accuracy": balanced_accuracy(y[done], pred, self.k),
                "errors": int((pred != y[done]).sum()), "log_loss": log_loss(self.probs[done], y[done])}


def rank_key(summary: dict[str, Any]) -> tuple[float, float]:
    """Higher is better: CV balanced accuracy (mean over folds), then a lower out-of-fold log loss."""
    return round(summary["mean"], 9), -summary["log_loss"]


def choose(summaries: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """(name of the candidate to ship, why): the best by `rank_key`; on an exact tie the simpler one.

    A more complex candidate ships only when it beats every simpler one, so nothing ships that CV scores below a
    simpler stage."""
    def order(name: str) -> tuple[Any, ...]:
        s = summaries[name]
        return (*rank_key(s), -SIMPLICITY.index(s["family"]))
    best = max(summaries, key=order)
    s = summaries[best]
    simpler = [n for n in summaries if SIMPLICITY.index(summaries[n]["family"]) < SIMPLICITY.index(s["family"])]
    if not simpler:
        why = f"{best}: the simplest candidate, and no other scored higher in cross-validation"
    else:
        runner = max(simpler, key=order)
        r = summaries[runner]
        if round(s["mean"], 9) > round(r["mean"], 9):
            why = (f"{best}: CV balanced accuracy {100 * s['mean']:.2f} % beats the best simpler candidate "
                   f"{runner} ({100 * r['mean']:.2f} %)")
        else:
            why = (f"{best}: CV balanced accuracy ties the best simpler candidate {runner} "
                   f"({100 * s['mean']:.2f} %) and its out-of-fold log loss is lower "
                   f"({s['log_loss']:.4f} vs {r['log_loss']:.4f})")
    complex_ = [n for n in summaries if SIMPLICITY.index(summaries[n]["family"]) > SIMPLICITY.index(s["family"])]
    if complex_:
        top = max(complex_, key=order)
        why += (f"; the best more complex candidate, {top}, scored {100 * summaries[top]['mean']:.2f} % "
                f"(log loss {summaries[top]['log_loss']:.4f})")
    return best, why
