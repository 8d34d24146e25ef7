"""`camlytics train`'s options as values: the epochs text, and the TrainConfig the options make.

The command's parser (train/commands.py) and `fleet train` (a fleet file's train tables) both build a
run's TrainConfig here, so one set of options gives one config, whichever way it was written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from camlytics import validate
from camlytics.errors import TrainingError

if TYPE_CHECKING:
    from camlytics.train.pipeline import TrainConfig

STAGES = ("teacher", "student", "finetune", "qat")
# Each option (the command's argparse dest) and the TrainConfig field it sets; `epochs` (parse_epochs's dict)
# sets the epochs_* fields. A missing option takes TrainConfig's default, which is the command's default.
TRAIN_OPTIONS = {"classes": "classes", "roi": "roi", "input": "input_wh", "color": "color",
                 "budget_macs": "budget_macs", "budget_bytes": "budget_bytes", "teacher_weights": "teacher_weights",
                 "epochs": None, "pool": "pool", "family": "family", "distill": "distill", "folds": "folds",
                 "min_confidence": "min_confidence", "seed": "seed", "candidates": "candidates", "check": "check",
                 "jobs": "jobs", "threads": "threads"}


def parse_epochs(text: str, error: type[Exception] = TrainingError) -> dict[str, int]:
    """'N' (scales every stage) or 'teacher=N,student=N,finetune=N,qat=N' -> {stage: epochs}; `error` if neither."""
    try:
        if "=" not in text:
            n = int(text)
            if n < 1:
                raise ValueError
            # One number sets the student stages; the teacher and fine-tuning get proportionate shares.
            return {"teacher": max(1, n // 2), "student": n, "finetune": max(1, (2 * n) // 5),
                    "qat": max(1, n // 4)}
        out = {}
        for part in text.split(","):
            key, value = part.split("=")
            if key.strip() not in STAGES or int(value) < 1:
                raise ValueError
            out[key.strip()] = int(value)
        return out
    except ValueError:
        raise error(f"expected a number >= 1 or e.g. teacher=20,student=30,finetune=12,qat=8; got {text!r}") from None


def parse_input(text: str, error: type[Exception] = TrainingError) -> tuple[int, int]:
    """'WxH' -> (W, H), the CNN's input size, each side 4..256; `error` otherwise."""
    return validate.parse_resolution(text, what="input size", sides=(4, 256), error=error)


def train_config(options: Mapping[str, Any]) -> TrainConfig:
    """The TrainConfig of parsed `camlytics train` options (None or missing: the default)."""
    from camlytics.train.pipeline import TrainConfig

    given = {k: v for k, v in options.items() if TRAIN_OPTIONS.get(k) and v is not None}
    cfg = TrainConfig(**{TRAIN_OPTIONS[k]: v for k, v in given.items()})
    for stage, n in (options.get("epochs") or {}).items():
        setattr(cfg, f"epochs_{stage}", n)
    if not isinstance(cfg.threads, int) or cfg.threads < 0:
        raise TrainingError(f"--threads must be >= 0, got {cfg.threads}")
    return cfg
