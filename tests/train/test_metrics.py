"""Metrics: balanced accuracy weighs every class equally."""

from __future__ import annotations

import numpy as np

from camlytics.train.metrics import balanced_accuracy, classification_report, format_report


def test_balanced_accuracy_and_report() -> None:
    y = np.array([0] * 90 + [1] * 10)
    pred = np.zeros(100, np.int64)  # always "closed": 90% accurate, useless
    assert balanced_accuracy(y, pred, 2) == 0.5
    pred[90:95] = 1
    pred[0] = 1
    r = classification_report(y, pred, ["closed", "open"])
    assert r["confusion"] == [[89, 1], [5, 5]]
    assert abs(r["balanced_accuracy"] - (89 / 90 + 0.5) / 2) < 1e-12
    assert r["per_class"]["open"] == {"precision": 5 / 6, "recall": 0.5, "support": 10}
    text = format_report(r)
    assert "balanced accuracy: 74.44%" in text and "open" in text
