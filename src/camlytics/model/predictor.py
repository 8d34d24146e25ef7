"""Load a trained model directory as a predictor: Frame -> class probabilities, in any runtime.

`load_predictor(model_dir, runtime)` looks the runtime up in a registry. The model layer defines the
two host references itself: "int8" (the numpy reference of the edge arithmetic) and "float" (the float
student). Runtimes defined in a stage register themselves with `register_runtime` when their module is
imported; the model layer knows them only by module name (RUNTIME_MODULES) and imports that module
the first time one of its runtimes is asked for. A runtime may take an option after a colon
(`"firmware:armv7hf"`): register it with `option=True` and its factory gets `(model_dir, option)`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

import numpy as np

from camlytics.errors import ModelError
from camlytics.frames import Frame
from camlytics.model.inputs import InputSpec, load_input


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


RuntimeFactory = Callable[..., Predictor]  # factory(model_dir), or factory(model_dir, option)
RUNTIMES: dict[str, tuple[RuntimeFactory, bool]] = {}  # name -> (factory, takes an option)

# Runtimes defined in the stages: the module that registers each one when it is imported.
RUNTIME_MODULES: dict[str, str] = {
    "edge": "camlytics.runtime.predictors",
    "micropython": "camlytics.runtime.predictors",
    "c": "camlytics.runtime.predictors",
    "firmware": "camlytics.runtime.firmware",  # firmware:ARCH
}


def register_runtime(name: str, factory: RuntimeFactory, *, option: bool = False) -> None:
    """Make `load_predictor(model_dir, name)` call `factory(model_dir)`; with `option`, NAME:OPTION (or NAME)
    calls `factory(model_dir, OPTION or None)`."""
    RUNTIMES[name] = (factory, option)


def runtime_names() -> list[str]:
    """Every runtime `load_predictor` knows, registered or not yet imported."""
    return sorted(set(RUNTIMES) | set(RUNTIME_MODULES))


def load_predictor(model_dir: str | Path, runtime: str = "int8") -> Predictor:
    """A predictor for a model directory written by `camlytics train`, in the named runtime."""
    model_dir = Path(model_dir)
    name, _, option = runtime.partition(":")
    if name not in RUNTIMES and name in RUNTIME_MODULES:
        importlib.import_module(RUNTIME_MODULES[name])  # registers the runtimes it defines
    if name not in RUNTIMES:
        raise ModelError(f"unknown runtime {runtime!r}: choose one of {runtime_names()}")
    factory, takes_option = RUNTIMES[name]
    if option and not takes_option:
        raise ModelError(f"runtime {name!r} takes no option, got {runtime!r}")
    if not model_dir.is_dir():
        raise ModelError(f"model directory {model_dir} does not exist")
    return factory(model_dir, option or None) if takes_option else factory(model_dir)


def int8_predictor(model_dir: Path) -> Predictor:
    """Runtime "int8": the numpy reference of the edge arithmetic on the model's `model.cml`."""
    from camlytics.model import int8ref
    from camlytics.model.modelfile import locate_model_file, read_model

    model = read_model(locate_model_file(model_dir))

    def probs(x: np.ndarray) -> np.ndarray:
        return int8ref.scores(model, int8ref.forward(model, x))
    return Predictor("int8", model.classes, InputSpec.from_model_meta(model.meta), probs)


def float_predictor(model_dir: Path) -> Predictor:
    """Runtime "float": the float student (`student.pt`) in PyTorch."""
    import torch

    from camlytics.model.student import load_student, to_tensor

    model, meta = load_student(model_dir / "student.pt")
    if "input" not in meta or "classes" not in meta:
        raise ModelError(f"{model_dir / 'student.pt'}: metadata lacks the input description or the classes")

    def probs(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(model(to_tensor(x)), dim=1).numpy()
    return Predictor("float", list(meta["classes"]), InputSpec.from_dict(meta["input"]), probs)


register_runtime("float", float_predictor)
register_runtime("int8", int8_predictor)
