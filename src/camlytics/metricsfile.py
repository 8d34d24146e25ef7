"""A trained model directory's `metrics.json` (written by `camlytics train`), read for people: `info --model`
and `annotate --model`. Ground floor: only the file, no model code."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from camlytics.errors import ModelError


def read_metrics(model_dir: str | pathlib.Path, what: str = "--model") -> dict[str, Any]:
    """MODEL_DIR/metrics.json as a dict; ModelError naming `what` and the problem (one line) otherwise."""
    folder = pathlib.Path(model_dir).expanduser()
    if not folder.is_dir():
        raise ModelError(f"{what} {folder}: no such directory (it does not exist)" if not folder.exists()
                         else f"{what} {folder} is a file, expected a model directory from `camlytics train`")
    path = folder / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{what} {folder} has no metrics.json; is it a model directory from `camlytics train`?") \
            from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ModelError(f"cannot read {path}: {exc}") from None
    if not isinstance(metrics, dict):
        raise ModelError(f"{path}: expected a JSON object, got {type(metrics).__name__}")
    return metrics
