"""The edge model file (`model.cml`, docs/int8.md section 5): in-memory form, writer, host reader."""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# the one reader and the one metadata schema, shared with the camera (the writer checks what it wrote with them)
from camlytics.edge.model import (FORMAT_VERSION, HEADER_SIZE, LAYER_SCHEMAS, MAGIC, META_SCHEMA, MODEL_FILE,
                                  ModelFileError, describe, load_model)
from camlytics.errors import ModelError, host_error_type

_HEADER = struct.Struct("<4sHHII")


def locate_model_file(model: str | os.PathLike) -> Path:
    """The edge model file of MODEL: MODEL_DIR/model.cml, or MODEL itself when it names the file.

    Every command that takes a model directory finds its model file here, so they all accept the same two
    spellings and give the same one-line error (ModelError) when there is none."""
    path = Path(model)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise ModelError(f"no edge model file at {path} (train a model first: camlytics train DATASET --out MODEL_DIR)")
    return path


@dataclass
class Int8Model:
    """A quantized network: the metadata dict of the file plus each layer's int8 weights and int32 bias.

    `meta["layers"][i]` describes layer i; `weights[i]` is int8 shaped `[OC, KH, KW, C/groups]`
    (conv2d) or `[OC, C]` (dense) and `biases[i]` int32 `[OC]`; both are None for `gap`.
    The `weights`/`bias` offsets in the metadata are filled in by `to_bytes`.
    """

    meta: dict
    weights: list = field(default_factory=list)
    biases: list = field(default_factory=list)

    @property
    def layers(self) -> list[dict]:
        """The layer descriptions, in execution order."""
        return self.meta["layers"]

    @property
    def classes(self) -> list[str]:
        """Class names, in logit order."""
        return list(self.meta["classes"])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """`(height, width, channels)` of the uint8 input tensor."""
        inp = self.meta["input"]
        return int(inp["height"]), int(inp["width"]), int(inp["channels"])

    def to_bytes(self) -> bytes:
        """The model file bytes (validated first: an invalid model is never written)."""
        return to_bytes(self)


def _aligned(n: int) -> int:
    return (n + 3) & ~3


def pack(model: Int8Model) -> bytes:
    """The model file bytes of `model`, without validation (tests use it to build hostile files)."""
    meta = json.loads(json.dumps(model.meta))  # deep copy; offsets are written into the copy
    blob = bytearray()
    for layer, w, b in zip(meta["layers"], model.weights, model.biases):
        if layer["op"] == "gap":
            continue
        for key, arr, dtype in (("weights", w, "<i1"), ("bias", b, "<i4")):
            data = np.ascontiguousarray(arr, dtype=dtype).tobytes()
            blob.extend(b"\0" * (_aligned(len(blob)) - len(blob)))
            layer[key] = [len(blob), len(data)]
            blob.extend(data)
    blob.extend(b"\0" * (_aligned(len(blob)) - len(blob)))
    text = json.dumps(meta, separators=(",", ":")).encode("utf-8")
    text += b" " * (_aligned(len(text)) - len(text))
    body = _HEADER.pack(MAGIC, FORMAT_VERSION, HEADER_SIZE, len(text), len(blob)) + text + bytes(blob)
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def to_bytes(model: Int8Model) -> bytes:
    """The model file bytes of `model`, checked by the edge reader first: an invalid model is never written."""
    for layer, w, b in zip(model.layers, model.weights, model.biases):
        if layer["op"] != "gap":
            for name, arr, lo, hi in (("weights", w, -128, 127), ("bias", b, -(2**31), 2**31 - 1)):
                if arr is None or np.asarray(arr).min(initial=0) < lo or np.asarray(arr).max(initial=0) > hi:
                    raise ModelError(f"layer {layer.get('op')} {layer.get('out_shape')}: {name} missing or out of range")
    try:
        data = pack(model)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # not JSON, or no layer list to fill
        raise ModelError(f"model metadata cannot be written: {exc!r}") from None
    read_model(data)
    return data


def schema_rows() -> list[tuple[str, bool, str]]:
    """`(key, required, rule in words)` for every metadata key of the schema, nested keys dotted, layer keys as
    `layers[].KEY (ops)`: the documentation's table, generated from the schema the readers apply."""
    rows = []

    def walk(table: dict, prefix: str) -> None:
        for key, (required, rule) in table.items():
            if rule[0] == "object":
                rows.append((prefix + key, required, "an object"))
                walk(rule[1], prefix + key + ".")
            else:
                rows.append((prefix + key, required, describe(rule)))

    walk(META_SCHEMA, "")
    layer_keys: dict[tuple[str, bool, str], list[str]] = {}
    for op, table in LAYER_SCHEMAS.items():
        for key, (required, rule) in table.items():
            layer_keys.setdefault((key, required, describe(rule)), []).append(op)
    for (key, required, what), ops in layer_keys.items():
        rows.append((f"layers[].{key} ({', '.join(ops)})", required, what))
    return rows


def write_model(model: Int8Model, path: str | os.PathLike) -> Path:
    """Write `model` to `path` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    data = to_bytes(model)
    fd, tmp = tempfile.mkstemp(prefix=".model-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_model(source: bytes | bytearray | str | os.PathLike) -> Int8Model:
    """Parse and fully validate a model file (bytes or path) into an `Int8Model` (host side)."""
    return from_edge(read_edge_model(source))


def read_edge_model(source: bytes | bytearray | str | os.PathLike) -> Any:
    """The edge reader's model (`camlytics.edge.model.Model`) of a file or bytes; ModelError naming the file."""
    if not isinstance(source, (bytes, bytearray, memoryview)):
        source = os.fspath(source)
    try:
        return load_model(source)
    except ModelFileError as exc:
        where = "" if isinstance(source, (bytes, bytearray, memoryview)) or source in str(exc) else f"{source}: "
        raise host_error_type(exc)(f"{where}{exc}") from None


def from_edge(edge: Any) -> Int8Model:
    """The `Int8Model` of a model the edge reader has parsed and validated (numpy views, no second parse)."""
    weights = [None if lay.weights is None else np.frombuffer(lay.weights, dtype=np.int8).reshape(_wshape(lay))
               for lay in edge.layers]
    biases = [None if lay.bias is None else np.array(lay.bias, dtype=np.int32) for lay in edge.layers]
    return Int8Model(edge.meta, weights, biases)


def _wshape(layer) -> tuple[int, ...]:
    oc = layer.out_shape[2]
    if layer.op == "dense":
        return (oc, layer.in_shape[2])
    return (oc, layer.kernel[0], layer.kernel[1], layer.in_shape[2] // layer.groups)
