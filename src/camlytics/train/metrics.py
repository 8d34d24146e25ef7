"""Classification metrics: confusion matrix, balanced accuracy, per-class precision and recall."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts with rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Mean recall over the classes present in `y_true` (0.0 for no samples)."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return 0.0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Balanced accuracy, accuracy, per-class precision/recall/support and the confusion matrix."""
    k = len(classes)
    cm = confusion_matrix(y_true, y_pred, k)
    per_class = {}
    for i, name in enumerate(classes):
        predicted, support = int(cm[:, i].sum()), int(cm[i, :].sum())
        per_class[name] = {"precision": float(cm[i, i] / predicted) if predicted else 0.0,
                           "recall": float(cm[i, i] / support) if support else 0.0,
                           "support": support}
    n = int(cm.sum())
    return {"n": n, "balanced_accuracy": balanced_accuracy(y_true, y_pred, k),
            "accuracy": float(np.trace(cm) / n) if n else 0.0,
            "per_class": per_class, "classes": list(classes), "confusion": cm.tolist()}


def format_report(report: dict[str, Any]) -> str:
    """A plain-text rendering of `classification_report` for the terminal."""
    classes = report["classes"]
    width = max(8, *(len(c) for c in classes))
    lines = [f"images: {report['n']}   balanced accuracy: {100 * report['balanced_accuracy']:.2f}%   "
             f"accuracy: {100 * report['accuracy']:.2f}%", "",
             f"{'class':<{width}}  precision  recall  support"]
    for name in classes:
        pc = report["per_class"][name]
        lines.append(f"{name:<{width}}  {100 * pc['precision']:8.2f}%  {100 * pc['recall']:5.1f}%  {pc['support']:7d}")
    lines += ["", "confusion (rows = true, columns = predicted):",
              " " * (width + 2) + "  ".join(f"{c:>{width}}" for c in classes)]
    for name, row in zip(classes, report["confusion"]):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{v:>{width}d}" for v in row))
    return "\n".join(lines)
