"""Cross-validated decisions: folds by contiguous time, what ships, and why."""

from __future__ import annotations

import numpy as np
import pytest

from camlytics.train.crossval import Candidate, choose, fold_count, time_block_folds


def test_folds_are_contiguous_time_blocks_of_every_class() -> None:
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 86400, 120))
    y = (rng.random(120) < 0.3).astype(np.int64)
    folds = time_block_folds(t, y, 4)
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(120))  # a partition
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        per_fold = [np.intersect1d(f, idx) for f in folds]
        assert max(map(len, per_fold)) - min(map(len, per_fold)) <= 1  # each class split the same way
        for i in range(3):  # block i of a class ends before block i + 1 starts
            assert t[per_fold[i]].max() < t[per_fold[i + 1]].min()


@pytest.mark.parametrize("rare, k", [(10, 3), (24, 3), (32, 4), (40, 5), (400, 5)])
def test_fold_count_follows_the_rarest_class(rare: int, k: int) -> None:
    y = np.array([0] * 500 + [1] * rare)
    assert fold_count(y) == k


def _summary(family: str, mean: float, log_loss: float) -> dict:
    return {"family": family, "mean": mean, "std": 0.0, "log_loss": log_loss, "folds": [mean], "settings": {}}


def test_a_complex_stage_that_scores_below_a_simpler_one_never_ships() -> None:
    best, why = choose({"linear l2=0.01": _summary("linear", 0.976, 0.2), "cnn": _summary("cnn", 0.952, 0.1),
                        "cnn+qat": _summary("cnn+qat", 0.905, 0.1)})
    assert best == "linear l2=0.01"
    assert "cnn" in why  # says what the more complex candidates scored


def test_the_cnn_ships_when_it_beats_the_baseline() -> None:
    best, why = choose({"linear l2=0.01": _summary("linear", 0.94, 0.2), "cnn": _summary("cnn", 0.99, 0.3)})
    assert best == "cnn" and "beats the best simpler candidate linear l2=0.01" in why


def test_a_tie_in_balanced_accuracy_goes_to_the_lower_log_loss_then_the_simpler() -> None:
    assert choose({"linear l2=0.1": _summary("linear", 1.0, 0.3), "cnn": _summary("cnn", 1.0, 0.05)})[0] == "cnn"
    assert choose({"linear l2=0.1": _summary("linear", 1.0, 0.05), "cnn": _summary("cnn", 1.0, 0.3)})[0] == \
        "linear l2=0.1"
    assert choose({"linear l2=0.1": _summary("linear", 1.0, 0.1), "cnn": _summary("cnn", 1.0, 0.1)})[0] == \
        "linear l2=0.1"


def test_candidate_summary_pools_out_of_fold_predictions() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    cand = Candidate("x", "cnn", 6, 2)
    cand.add_fold(np.array([0, 2]), np.array([[0.9, 0.1], [0.2, 0.8]]), y)
    cand.add_fold(np.array([1, 3]), np.array([[0.4, 0.6], [0.3, 0.7]]), y)  # one mistake
    cand.add_fold(np.array([4, 5]), np.array([[0.6, 0.4], [0.1, 0.9]]), y)
    s = cand.summary(y)
    assert s["folds"] == [1.0, 0.5, 1.0] and s["errors"] == 1
    assert s["mean"] == pytest.approx(2.5 / 3) and s["pooled_balanced_accuracy"] == pytest.approx(5 / 6)
    assert s["log_loss"] > 0


def test_with_labels_enough_each_fold_holds_several_shorter_blocks_dealt_round_robin() -> None:
    t = np.arange(300, dtype=float)
    y = np.array([0, 1] * 150)  # 150 of each class
    folds = time_block_folds(t, y, 3)  # 150 // (3 * 10) = 5 -> 3 blocks per fold, 9 blocks of 16-17 per class
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(300))
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        blocks = np.array_split(idx, 9)
        for j, block in enumerate(blocks):
            assert np.isin(block, folds[j % 3]).all()  # block j went to fold j mod K
    # an episode of 40 consecutive frames is spread over more than one fold
    episode = np.arange(100, 140)
    assert sum(bool(np.isin(episode, f).any()) for f in folds) >= 2


def test_few_labels_keep_one_block_per_fold() -> None:
    t = np.arange(60, dtype=float)
    y = np.array([0] * 45 + [1] * 15)
    folds = time_block_folds(t, y, 3)  # 15 // 30 = 0 -> 1 block per fold
    for f in folds:
        rare = f[y[f] == 1]
        assert rare.max() - rare.min() == len(rare) - 1  # one contiguous run
