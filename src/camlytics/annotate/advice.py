"""`annotate --model`: the "do I have enough labels?" advice of a trained model, read from its metrics.json."""

from __future__ import annotations

import math
import pathlib
from typing import Any

from camlytics.errors import ModelError
from camlytics.metricsfile import read_metrics

VERDICTS = ("enough", "more", "harder")


def load_advice(model_dir: str | pathlib.Path) -> dict[str, Any]:
    """The advice the page shows, from MODEL_DIR/metrics.json (written by `camlytics train`); ModelError if unusable.

    Returns {"verdict", "advice", "worst", "errors_by_kind" (largest first), "shipped", "cv_mean"}.
    """
    metrics = read_metrics(model_dir)
    path = pathlib.Path(model_dir).expanduser() / "metrics.json"
    more = metrics.get("more_labels")
    if not isinstance(more, dict):
        raise ModelError(f"{path} has no \"more_labels\" advice; retrain with this version of `camlytics train`")
    return {
        "verdict": _verdict(path, more.get("verdict")),
        "advice": _text(path, "more_labels.advice", more.get("advice")),
        "worst": None if more.get("worst") is None else _text(path, "more_labels.worst", more.get("worst")),
        "errors_by_kind": _errors_by_kind(path, more.get("errors_by_kind", {})),
        "shipped": metrics["shipped"] if isinstance(metrics.get("shipped"), str) else None,
        "cv_mean": _cv_mean(metrics),
    }


def _verdict(path: pathlib.Path, value: Any) -> str:
    if value not in VERDICTS:
        raise ModelError(f"{path}: more_labels.verdict={value!r}: expected one of {', '.join(VERDICTS)}")
    return value


def _text(path: pathlib.Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ModelError(f"{path}: {key}={value!r}: expected a non-empty string")
    return value


def _errors_by_kind(path: pathlib.Path, value: Any) -> dict[str, int]:
    """{"class / light": errors}, checked, most errors first (the page shows the top few)."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in value.items()
    ):
        raise ModelError(f"{path}: more_labels.errors_by_kind: expected {{\"class / light\": error count, ...}}")
    return dict(sorted(value.items(), key=lambda kv: (-kv[1], kv[0])))


def _cv_mean(metrics: dict[str, Any]) -> float | None:
    """The shipped recipe's cross-validated balanced accuracy (0..1), or None when the file has none."""
    cv = metrics.get("cv")
    shipped = cv.get("shipped") if isinstance(cv, dict) else None
    mean = shipped.get("mean") if isinstance(shipped, dict) else None
    if isinstance(mean, bool) or not isinstance(mean, (int, float)) or not math.isfinite(mean):
        return None
    return float(mean)
