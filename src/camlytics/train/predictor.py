"""Load a trained model directory as a predictor: Frame -> class probabilities.

Runtimes are looked up in a small registry so that other runtimes ("edge", "micropython", "c")
can be plugged in by their own modules with `register_runtime`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from camlytics.errors import ModelError
from camlytics.frames import Frame
from camlytics.train.data import InputSpec, load_input


class Predictor:
    """Class probabilities for frames (or for already preprocessed input tensors) from one runtime."""

    def __init__(self, runtime: str, classes: list[str], spec: InputSpec,
                 batch_probs: Callable[[np.ndarray], np.ndarray]) -> None:
        self.runtime = runtime
        self.classes = classes
        self.spec = spec
        self._batch_probs = batch_probs

    def inputs(self, frame: Frame) -> np.ndarray:
        """The network input (H, W, C uint8) of a frame, computed from its JPEG bytes."""
        return load_input(frame.to_jpeg(95), self.spec, f"frame {frame.source}@{frame.timestamp}")

    def probs(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) for input tensors (N, H, W, C uint8)."""
        return self._batch_probs(x)

    def __call__(self, frame: Frame) -> dict[str, float]:
        p = self.probs(self.inputs(frame)[None])[0]
        return {c: float(v) for c, v in zip(self.classes, p)}


RuntimeFactory = Callable[[Path], Predictor]
RUNTIMES: dict[str, RuntimeFactory] = {}


def register_runtime(name: str, factory: RuntimeFactory) -> None:
    """Make `load_predictor(model_dir, name)` use `factory(model_dir)`."""
    RUNTIMES[name] = factory


def load_predictor(model_dir: str | Path, runtime: str = "int8") -> Predictor:
    """A predictor for a model directory written by `camlytics train`."""
    model_dir = Path(model_dir)
    import camlytics.runtime.predictors  # noqa: F401 - registers the "edge", "micropython" and "c" runtimes
    if runtime not in RUNTIMES:
        raise ModelError(f"unknown runtime {runtime!r}: choose one of {sorted(RUNTIMES)}")
    if not model_dir.is_dir():
        raise ModelError(f"model directory {model_dir} does not exist")
    return RUNTIMES[runtime](model_dir)


def _float_predictor(model_dir: Path) -> Predictor:
    import torch

    from camlytics.train.augment import to_tensor
    from camlytics.train.models import load_student

    model, meta = load_student(model_dir / "student.pt")
    if "input" not in meta or "classes" not in meta:
        raise ModelError(f"{model_dir / 'student.pt'}: metadata lacks the input description or the classes")

    def probs(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(model(to_tensor(x)), dim=1).numpy()
    return Predictor("float", list(meta["classes"]), InputSpec.from_dict(meta["input"]), probs)


def spec_from_model_meta(meta: dict) -> InputSpec:
    """The InputSpec written into an edge model file's metadata (docs/int8.md section 5)."""
    try:
        inp, pre = meta["input"], meta["preprocess"]
        return InputSpec(int(inp["width"]), int(inp["height"]), str(pre["color"]),
                         tuple(int(v) for v in pre["roi"]), tuple(int(v) for v in pre["source_size"]))  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"model file metadata lacks the input/preprocess description ({exc})") from None


def _int8_predictor(model_dir: Path) -> Predictor:
    from camlytics.export.modelfile import locate_model_file
    from camlytics.train import int8ref

    model = int8ref.as_model(locate_model_file(model_dir))

    def probs(x: np.ndarray) -> np.ndarray:
        return int8ref.scores(model, int8ref.forward(model, x))
    return Predictor("int8", model.classes, spec_from_model_meta(model.meta), probs)


register_runtime("float", _float_predictor)
register_runtime("int8", _int8_predictor)
