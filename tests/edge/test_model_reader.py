"""The edge model reader accepts exactly the valid model files and rejects anything else cleanly.

A bad file (truncated, oversized, corrupt, or breaking a rule of docs/int8.md section 5) raises
`ModelFileError` with a message naming the problem: never another exception, never a huge
allocation, under CPython and under the real MicroPython alike. Its verdicts agree with an
independent checker of the spec written here (the host's reader reuses this one) on thousands of
mutated files.
"""

from __future__ import annotations

import copy
import json
import math
import random
import struct
import zlib

import numpy as np
import pytest

from camlytics.edge.infer import Network
from camlytics.edge.model import MAX_BLOB_LEN, ModelFileError, load_model
from camlytics.errors import ModelError
from camlytics.model.modelfile import read_model
from camlytics.export.testmodels import random_inputs, random_model, random_model_bytes
from camlytics.model import int8ref

ARCHS = ["tiny", "rgb", "zp", "door", "whole"]


def split(data: bytes) -> tuple[dict, bytes]:
    """(metadata, blob) of a model file."""
    meta_len, blob_len = struct.unpack_from("<II", data, 8)
    return json.loads(data[16 : 16 + meta_len]), data[16 + meta_len : 16 + meta_len + blob_len]


def build(meta, blob: bytes, *, header: tuple | None = None) -> bytes:
    """A model file around `meta` (any JSON value) and `blob`, with a correct CRC."""
    text = json.dumps(meta).encode()
    text += b" " * (-len(text) % 4)
    magic, version, size = header or (b"CMLM", 1, 16)
    body = struct.pack("<4sHHII", magic, version, size, len(text), len(blob)) + text + blob
    return body + struct.pack("<I", zlib.crc32(body))


def with_crc(data: bytes) -> bytes:
    """`data` with its last four bytes replaced by the CRC of the rest."""
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


@pytest.fixture(scope="module")
def tiny() -> bytes:
    return random_model_bytes(3, "tiny")


@pytest.mark.parametrize("arch", ARCHS)
def test_reads_what_the_writer_wrote(arch):
    model = random_model(7, arch)
    edge = load_model(model.to_bytes())
    assert edge.classes == model.classes
    assert edge.input_shape == model.input_shape
    assert edge.macs == model.meta["macs"]
    assert edge.output_zp == model.meta["output"]["zp"]
    assert [layer.op for layer in edge.layers] == [layer["op"] for layer in model.layers]
    for layer, meta, w, b in zip(edge.layers, model.layers, model.weights, model.biases):
        assert list(layer.in_shape) == meta["in_shape"] and list(layer.out_shape) == meta["out_shape"]
        if w is None:
            assert layer.weights is None and layer.m == [meta["m"]] and layer.s == [meta["s"]]
        else:
            assert layer.weights == w.tobytes()
            assert list(layer.bias) == b.tolist()
            assert layer.m == meta["m"] and layer.s == meta["s"]


SUMMARY = """
import sys
from camlytics.edge.model import load_model
m = load_model(sys.argv[1])
print(m.name, m.classes, m.input_shape, m.macs, m.output_zp)
for layer in m.layers:
    w = layer.weights
    print(layer.op, layer.in_shape, layer.out_shape, layer.kernel, layer.stride, layer.pad, layer.groups,
          layer.relu, layer.x_zp, layer.y_zp, layer.m, layer.s, None if w is None else sum(w), layer.bias)
"""


def test_micropython_reads_the_same_model(micropython, tmp_path):
    data = random_model_bytes(5, "zp")
    (tmp_path / "model.cml").write_bytes(data)
    out = micropython(SUMMARY, args=[str(tmp_path / "model.cml")])
    m = load_model(data)
    lines = [f"{m.name} {m.classes} {m.input_shape} {m.macs} {m.output_zp}"]
    for layer in m.layers:
        w = layer.weights
        lines.append(
            f"{layer.op} {layer.in_shape} {layer.out_shape} {layer.kernel} {layer.stride} {layer.pad} "
            f"{layer.groups} {layer.relu} {layer.x_zp} {layer.y_zp} {layer.m} {layer.s} "
            f"{None if w is None else sum(w)} {layer.bias}"
        )
    assert out.split("\n")[: len(lines)] == lines


def test_reads_paths_and_model_directories(tiny, tmp_path):
    (tmp_path / "model.cml").write_bytes(tiny)
    assert load_model(tmp_path / "model.cml").classes == ["closed", "open"]
    assert load_model(str(tmp_path)).input_shape == (16, 16, 1)
    with pytest.raises(ModelFileError, match="cannot read model file"):
        load_model(tmp_path / "missing.cml")
    big = tmp_path / "big.cml"
    with open(big, "wb") as f:
        f.truncate(MAX_BLOB_LEN + (2 << 20))  # sparse: the size is checked before any read
    with pytest.raises(ModelFileError, match="more than the .* allowed"):
        load_model(big)


def test_host_can_ask_for_its_own_error_class(tiny):
    with pytest.raises(ModelError, match="CRC mismatch"):
        load_model(tiny[:-1] + bytes([tiny[-1] ^ 1]), error=ModelError)


def _layer_edit(index, key, value):
    def edit(meta):
        meta["layers"][index][key] = value
    return edit


def _set(path, value):
    def edit(meta):
        node = meta
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


# (description, edit of the metadata, expected message)
META_CASES = [
    ("format", _set(["format"], "onnx"), "unsupported model format"),
    ("version", _set(["version"], 2), "unsupported model format"),
    ("input dtype", _set(["input", "dtype"], "int8"), "input.dtype must be one of 'uint8', got 'int8'"),
    ("input height", _set(["input", "height"], 0), "input.height must be an integer in \\[1, 4096\\], got 0"),
    ("no layers", _set(["layers"], []), "layers must be a list of 1 to 256 items"),
    ("layers not a list", _set(["layers"], {"op": "gap"}), "layers must be a list"),
    ("unknown op", _layer_edit(0, "op", "maxpool"), "unknown op 'maxpool'"),
    ("chain", _layer_edit(1, "in_shape", [8, 8, 9]), "in_shape .* != previous output"),
    ("out shape formula", _layer_edit(0, "out_shape", [9, 8, 8]), "does not follow"),
    ("stride 0", _layer_edit(0, "stride", [0, 2]), "stride must be"),
    ("pad negative", _layer_edit(0, "pad", [-1, 1, 1, 1]), "pad must be"),
    ("float kernel", _layer_edit(0, "kernel", [3.0, 3]), "kernel must be"),
    ("groups", _layer_edit(1, "groups", 4), "groups 4 must be 1 or equal"),
    ("relu not bool", _layer_edit(0, "relu", 1), "relu must be true or false"),
    ("y dtype", _layer_edit(0, "y_dtype", "int16"), "y_dtype must be one of 'uint8', 'int8', got 'int16'"),
    ("y zp range", _layer_edit(0, "y_zp", -1), "y_zp must be an integer in \\[0, 255\\]"),
    ("x zp chain", _layer_edit(1, "x_zp", 3), "input 'uint8'/zp 3 != previous output"),
    ("m count", _layer_edit(0, "m", [1]), "m must list 8 values \\(one per output channel\\), got 1"),
    ("m negative", _layer_edit(2, "m", [-1] * 12), "m must be"),
    ("s zero", _layer_edit(0, "s", [0] * 8), "s must be a list of integers in \\[1, 31\\]"),
    ("s 32", _layer_edit(0, "s", [32] * 8), "s must be"),
    ("overflow bound", _layer_edit(0, "m", [2**31 - 1] * 8), "requantization may overflow 32 bits"),
    ("gap overflow", _layer_edit(5, "m", 2**31 - 1), "layer 5 \\(gap\\): requantization may overflow"),
    ("bias misaligned", lambda meta: meta["layers"][0]["bias"].__setitem__(0, meta["layers"][0]["bias"][0] + 2), "unaligned"),
    ("weights past blob", lambda meta: meta["layers"][0]["weights"].__setitem__(0, 1 << 20), "outside the blob"),
    ("weights short", lambda meta: meta["layers"][0]["weights"].__setitem__(1, 71), "weights length 71 != 72"),
    ("bias ref", _layer_edit(0, "bias", "x" * 500), "bias must be a list of 2 integers .* got 'xxxx.*\\.\\.\\.$"),
    ("classes", _set(["classes"], ["a", "b", "c"]), "3 classes for output shape"),
    ("class type", _set(["classes"], ["a", 2]), "classes must be a list of 1 to 256 distinct non-empty strings"),
    ("output zp", _set(["output", "zp"], 99), "output must be int8 with the last layer's zp"),
    ("output scale", _set(["output", "scale"], "big"), "output.scale must be a finite number in \\(0, "),
    ("dense shape", _layer_edit(6, "in_shape", [2, 1, 8]), "in_shape"),
    ("huge input", lambda meta: (meta["input"].update(height=4096, width=4096),
                                 meta["layers"][0].update(in_shape=[4096, 4096, 1])), "larger than .* elements"),
    # every other key and type of the schema (issue #28: preprocess was not validated at all)
    ("preprocess source_size [0]", _set(["preprocess", "source_size"], [0]), "preprocess.source_size must be a list of 2"),
    ("preprocess source_size 0", _set(["preprocess", "source_size"], [0, 128]), "source_size must be .* \\[1, 16384\\]"),
    ("preprocess source_size huge", _set(["preprocess", "source_size"], [2**63, 128]), "source_size must be"),
    ("preprocess source_size float", _set(["preprocess", "source_size"], [128.0, 128]), "source_size must be"),
    ("preprocess roi outside", _set(["preprocess", "roi"], [0, 0, 129, 128]), "roi .* outside the 128x128 source_size"),
    ("preprocess roi empty", _set(["preprocess", "roi"], [5, 0, 5, 128]), "roi .* empty"),
    ("preprocess roi negative", _set(["preprocess", "roi"], [-1, 0, 5, 128]), "preprocess.roi must be a list of 4"),
    ("preprocess roi short", _set(["preprocess", "roi"], [0, 0, 5]), "preprocess.roi must be a list of 4"),
    ("preprocess roi alone", lambda meta: meta["preprocess"].pop("source_size"), "roi needs the source_size"),
    ("preprocess colour", _set(["preprocess", "color"], "cmyk"), "preprocess.color must be one of 'gray', 'rgb'"),
    ("preprocess colour vs channels", _set(["preprocess", "color"], "rgb"), "color 'rgb' does not fit 1 input channels"),
    ("preprocess resize", _set(["preprocess", "resize"], "nearest"), "preprocess.resize must be one of 'area'"),
    ("preprocess not an object", _set(["preprocess"], [1, 2]), "preprocess must be an object"),
    ("preprocess unknown key", _set(["preprocess", "crop"], 1), "preprocess: unknown key 'crop'"),
    ("preprocess missing colour", lambda meta: meta["preprocess"].pop("color"), "preprocess.color is missing"),
    ("channels 2", lambda meta: (meta.pop("preprocess"), meta["input"].update(channels=2),
                                 meta["layers"][0].update(in_shape=[16, 16, 2])), "does not fit 2 input channels"),
    ("input too wide", _set(["input", "width"], 5000), "input.width must be an integer in \\[1, 4096\\]"),
    ("input scale 0", _set(["input", "scale"], 0), "input.scale must be a finite number in \\(0, "),
    ("input unknown key", _set(["input", "mean"], 0.5), "input: unknown key 'mean'"),
    ("input missing", lambda meta: meta.pop("input"), "^input is missing$"),
    ("unknown top key", _set(["labels"], ["a"]), "model metadata: unknown key 'labels'"),
    ("unknown layer key", _layer_edit(0, "dilation", [1, 1]), "layer 0 \\(conv2d\\): unknown key 'dilation'"),
    ("gap relu", _layer_edit(5, "relu", True), "layer 5 \\(gap\\): unknown key 'relu'"),
    ("missing layer key", lambda meta: meta["layers"][0].pop("kernel"), "layer 0 \\(conv2d\\) kernel is missing"),
    ("layer not an object", _set(["layers"], [7]), "layer 0: unknown op 7"),
    ("x scale", _layer_edit(0, "x_scale", -1.0), "x_scale must be a finite number"),
    ("w scale count", _layer_edit(0, "w_scale", [1.0]), "w_scale must list 8 values"),
    ("w scale nan", _layer_edit(0, "w_scale", [float("nan")] * 8), "w_scale must be"),
    ("classes duplicate", _set(["classes"], ["open", "open"]), "distinct"),
    ("classes empty name", _set(["classes"], ["", "open"]), "non-empty"),
    ("classes control char", _set(["classes"], ["clo\nsed", "open"]), "control characters"),
    ("classes long", _set(["classes"], ["x" * 65, "open"]), "at most 64 characters"),
    ("classes missing", lambda meta: meta.pop("classes"), "classes is missing"),
    ("name type", _set(["name"], 5), "name must be a string"),
    ("name long", _set(["name"], "n" * 129), "name must be a string of 0 to 128"),
    ("macs wrong", lambda meta: meta.update(macs=meta["macs"] + 1), "macs \\d+ != \\d+ counted from the layers"),
    ("macs type", _set(["macs"], "many"), "macs must be an integer"),
    ("output dtype", _set(["output", "dtype"], "uint8"), "output.dtype must be one of 'int8'"),
    ("output scale inf", _set(["output", "scale"], float("inf")), "output.scale must be"),
    ("output scale huge", _set(["output", "scale"], 1e300), "output.scale must be"),
    ("version bool", _set(["version"], True), "version must be an integer in \\[1, 1\\], got True"),
    ("min_confidence 1", _set(["min_confidence"], 1.0), "min_confidence must be a finite number in \\[0, 1\\)"),
    ("min_confidence and a class named unknown", lambda meta: meta.update(min_confidence=0.5, classes=["unknown", "open"]),
     "class named 'unknown' is ambiguous"),
]


@pytest.mark.parametrize("name,edit,message", META_CASES, ids=[c[0] for c in META_CASES])
def test_rejects_metadata_that_breaks_the_spec(tiny, name, edit, message):
    meta, blob = split(tiny)
    edit(meta)
    with pytest.raises(ModelFileError, match=message):
        load_model(build(meta, blob))


def test_rejects_bad_headers_and_sizes(tiny):
    meta, blob = split(tiny)
    nested: list = []
    for _ in range(200):
        nested = [nested]
    cases = {
        b"": "too short",
        b"CMLM" + bytes(12): "too short",
        tiny[:-1]: "model file size \\d+ != \\d+ \\(truncated\\?\\)",
        tiny + b"\0\0\0\0": "model file size",
        b"PK\3\4" + tiny[4:]: "not a camlytics model file",
        build(meta, blob, header=(b"CMLM", 2, 16)): "unsupported model file version 2",
        build(meta, blob, header=(b"CMLM", 1, 20)): "header size 20",
        tiny[:-4] + bytes(4): "CRC mismatch",
        tiny[:8] + struct.pack("<II", 0xFFFFFFF0, 0xFFFFFFF0) + tiny[16:]: "bad section lengths",
        with_crc(tiny[:8] + struct.pack("<I", struct.unpack_from("<I", tiny, 8)[0] - 1) + tiny[12:]): "bad section lengths",
        build(meta, blob + b"\0\0"): "bad section lengths",
        with_crc(tiny[:16] + b"\xff" + tiny[17:]): "not valid JSON",
        build(nested, blob): "unsupported model format",
    }
    for data, message in cases.items():
        with pytest.raises(ModelFileError, match=message):
            load_model(data)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random corruption: truncation, extension, bit flips (CRC fixed or not), absurd lengths."""
    kind = rng.randrange(7)
    if kind == 0:
        return data[: rng.randrange(len(data))]
    if kind == 1:
        return data + bytes(rng.randrange(1, 64))
    if kind == 2:  # bit flips anywhere, CRC left stale
        out = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        return bytes(out)
    if kind == 3:  # an absurd header length
        field = rng.choice([8, 12])
        value = rng.choice([0, 3, 1 << 20, (1 << 20) + 4, 4 << 20, 0xFFFFFFFC, rng.randrange(1 << 32)])
        return data[:field] + struct.pack("<I", value) + data[field + 4 :]
    meta, blob = split(data)
    if kind == 4:  # a byte of the metadata text changed, CRC fixed: the parser must go deeper
        out = bytearray(data)
        out[16 + rng.randrange(len(data) - 20 - len(blob))] = rng.choice(b'0123456789-,:[]{}" .e')
        return with_crc(bytes(out))
    if kind == 5:  # blob bit flips, CRC fixed: still a valid file unless a bound breaks
        out = bytearray(blob)
        for _ in range(rng.randrange(1, 8)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        return build(meta, bytes(out))
    # a hostile value at a random place in the metadata, CRC fixed
    nodes = [(meta, key) for key in meta]
    for layer in meta["layers"]:
        nodes += [(layer, key) for key in layer]
    for part in ("input", "output", "preprocess"):
        nodes += [(meta[part], key) for key in meta[part]]
    node, key = rng.choice(nodes)
    action = rng.randrange(10)
    if action == 0:  # a key removed
        del node[key]
    elif action == 1:  # a key nobody knows, or one that belongs elsewhere
        node[rng.choice(["extra", "relu", "kernel", "roi", "min_confidence", "scale"])] = rng.choice([0, 0.5, [1, 1]])
    else:
        node[key] = rng.choice([None, -1, 0, 1, 2, 3, 255, 256, 2**31, 2**63, -(2**40), 1.5, 0.5, True, "x", "",
                                "gray", "rgb", "area", "unknown", [], {}, [0], [1, 1], [3, 3, 3], [0, 0, 0, 0],
                                [0, 0, 16, 16], [0, 0, 64, 64], [64, 64], [2**31] * 3, ["a", "a"], ["a", "b"],
                                float("nan"), float("inf"), 1e300, list(range(1000))])
    return build(meta, blob)


class SpecViolation(Exception):
    """Raised by the independent checker below."""


def _need(condition) -> None:
    if not condition:
        raise SpecViolation


def _is_int(v, lo: int, hi: int) -> bool:
    return type(v) is int and lo <= v <= hi


def _ints(v, n: int, lo: int, hi: int) -> bool:
    return isinstance(v, list) and len(v) == n and all(_is_int(x, lo, hi) for x in v)


def _finite(v, lo: float, hi: float, hi_open: bool = False, lo_open: bool = True) -> bool:
    if type(v) not in (int, float) or not math.isfinite(v):
        return False
    return (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)


def _plain(v, lo: int, hi: int) -> bool:
    return isinstance(v, str) and lo <= len(v) <= hi and all(ord(ch) >= 32 and ord(ch) != 127 for ch in v)


def _keys(obj, required: set, optional: set = frozenset()) -> bool:
    return isinstance(obj, dict) and required <= set(obj) <= required | optional


LAYER_KEYS = {"op", "in_shape", "out_shape", "x_dtype", "x_zp", "y_dtype", "y_zp"}
WEIGHTED_KEYS = {"relu", "weights", "bias", "m", "s"}


def _spec_check(data: bytes) -> None:
    """docs/int8.md section 5, read independently of the edge reader (which the host now reuses)."""
    int32_max = 2**31 - 1
    ranges = {"uint8": (0, 255), "int8": (-128, 127)}
    _need(len(data) >= 20)
    magic, version, header_size, meta_len, blob_len = struct.unpack_from("<4sHHII", data)
    _need(magic == b"CMLM" and version == 1 and header_size == 16)
    _need(meta_len <= 1 << 20 and blob_len <= 4 << 20 and meta_len % 4 == 0 and blob_len % 4 == 0)
    _need(len(data) == 16 + meta_len + blob_len + 4)
    _need(zlib.crc32(data[:-4]) == struct.unpack("<I", data[-4:])[0])
    try:
        meta = json.loads(data[16 : 16 + meta_len].decode("utf-8"))
    except (ValueError, RecursionError):
        raise SpecViolation from None
    blob = data[16 + meta_len : 16 + meta_len + blob_len]
    _need(_keys(meta, {"format", "version", "classes", "input", "output", "layers"},
                {"name", "preprocess", "macs", "min_confidence"}))
    _need(meta["format"] == "camlytics-int8" and type(meta["version"]) is int and meta["version"] == 1)
    _need("name" not in meta or _plain(meta["name"], 0, 128))
    classes = meta["classes"]
    _need(isinstance(classes, list) and 1 <= len(classes) <= 256 and all(_plain(c, 1, 64) for c in classes))
    _need(len(set(classes)) == len(classes))
    if "min_confidence" in meta:
        _need(_finite(meta["min_confidence"], 0, 1, hi_open=True, lo_open=False) and "unknown" not in classes)
    inp = meta["input"]
    _need(_keys(inp, {"height", "width", "channels", "dtype", "zp", "scale"}))
    _need(_is_int(inp["height"], 1, 4096) and _is_int(inp["width"], 1, 4096) and _is_int(inp["channels"], 1, 3))
    _need(inp["dtype"] == "uint8" and _is_int(inp["zp"], 0, 0) and _finite(inp["scale"], 0, 1e6))
    pre = meta.get("preprocess", {})
    _need(_keys(pre, set(), {"color", "resize", "roi", "source_size"}))
    _need(pre.get("color", ["gray", None, "rgb"][inp["channels"] - 1]) == ["gray", None, "rgb"][inp["channels"] - 1])
    _need(("color" in pre) == ("preprocess" in meta) and pre.get("resize", "area") == "area")
    if "source_size" in pre:
        _need(_ints(pre["source_size"], 2, 1, 16384))
    if "roi" in pre:
        _need(_ints(pre["roi"], 4, 0, 16384) and "source_size" in pre)
        (x0, y0, x1, y1), (sw, sh) = pre["roi"], pre["source_size"]
        _need(x0 < x1 <= sw and y0 < y1 <= sh)
    out = meta["output"]
    _need(_keys(out, {"dtype", "zp", "scale"}) and _is_int(out["zp"], -128, 127) and _finite(out["scale"], 0, 1e6))
    layers = meta["layers"]
    _need(isinstance(layers, list) and 1 <= len(layers) <= 256)
    shape = [inp["height"], inp["width"], inp["channels"]]
    dtype, zp, macs = "uint8", 0, 0
    for layer in layers:
        _need(isinstance(layer, dict) and layer.get("op") in ("conv2d", "dense", "gap"))
        op = layer["op"]
        scales = {"x_scale", "y_scale"}
        if op == "gap":
            _need(_keys(layer, LAYER_KEYS | {"m", "s"}, scales))
        else:
            conv = {"kernel", "stride", "pad", "groups"} if op == "conv2d" else set()
            _need(_keys(layer, LAYER_KEYS | WEIGHTED_KEYS | conv, scales | {"w_scale"}))
        _need(all(_finite(layer[k], 0, 1e6) for k in scales if k in layer))
        in_shape, out_shape = layer["in_shape"], layer["out_shape"]
        _need(_ints(in_shape, 3, 1, 1 << 16) and _ints(out_shape, 3, 1, 1 << 16) and in_shape == shape)
        _need(layer["x_dtype"] == dtype and type(layer["x_zp"]) is int and layer["x_zp"] == zp)
        y_dtype = layer["y_dtype"]
        _need(isinstance(y_dtype, str) and y_dtype in ranges and _is_int(layer["y_zp"], *ranges[y_dtype]))
        h, w, c = in_shape
        oh, ow, oc = out_shape
        # the edge reader's memory limit on any tensor (padding included), see its MAX_TENSOR
        _need(h * w * c <= 1 << 22 and oh * ow * oc <= 1 << 22)
        lo, hi = ranges[dtype]
        r = max(abs(lo - zp), abs(hi - zp))
        if op == "gap":
            m, s = layer["m"], layer["s"]
            _need(out_shape == [1, 1, c] and _is_int(m, 0, int32_max) and _is_int(s, 1, 31))
            _need(h * w * r * m + (1 << (s - 1)) <= int32_max and h * w * r <= int32_max)
            macs += h * w * c
        else:
            _need(type(layer["relu"]) is bool)
            if op == "dense":
                _need(in_shape[:2] == [1, 1] and out_shape[:2] == [1, 1])
                k = c
            else:
                kernel, stride, pad, groups = layer["kernel"], layer["stride"], layer["pad"], layer["groups"]
                _need(_ints(kernel, 2, 1, 64) and _ints(stride, 2, 1, 64) and _ints(pad, 4, 0, 64))
                _need(type(groups) is int and (groups == 1 or groups == c == oc))
                ph, pw = h + pad[0] + pad[2], w + pad[1] + pad[3]
                _need(ph >= kernel[0] and pw >= kernel[1] and ph * pw * c <= 1 << 22)
                _need([(ph - kernel[0]) // stride[0] + 1, (pw - kernel[1]) // stride[1] + 1] == out_shape[:2])
                k = kernel[0] * kernel[1] * (c // groups)
            m, s = layer["m"], layer["s"]
            _need(_ints(m, oc, 0, int32_max) and _ints(s, oc, 1, 31) and oc * k <= 4 << 20)
            if "w_scale" in layer:
                w_scale = layer["w_scale"]
                _need(isinstance(w_scale, list) and len(w_scale) == oc and all(_finite(v, 0, 1e6) for v in w_scale))
            arrays = []
            for key, size, dt in (("weights", oc * k, "<i1"), ("bias", 4 * oc, "<i4")):
                ref = layer[key]
                _need(_ints(ref, 2, 0, 4 << 20))
                off, length = ref
                _need(off % 4 == 0 and off + length <= blob_len and length == size)
                arrays.append(np.frombuffer(blob, dtype=dt, count=size // np.dtype(dt).itemsize, offset=off))
            wsum = np.abs(arrays[0].astype(np.int64)).reshape(oc, k).sum(axis=1)
            for b, ws, mm, ss in zip(arrays[1].tolist(), wsum.tolist(), m, s):
                bound = abs(b) + ws * r
                _need(bound <= int32_max and bound * mm + (1 << (ss - 1)) <= int32_max)
            macs += oh * ow * oc * k
        shape, dtype, zp = out_shape, y_dtype, layer["y_zp"]
    _need(shape[:2] == [1, 1] and len(classes) == shape[2])
    _need(dtype == "int8" and out["dtype"] == "int8" and out["zp"] == zp)
    _need("macs" not in meta or (_is_int(meta["macs"], 0, 1 << 53) and meta["macs"] == macs))


def spec_verdict(data: bytes) -> str:
    """"ok" when `data` is a valid model file by the independent checker, else "error"."""
    try:
        _spec_check(data)
    except SpecViolation:
        return "error"
    return "ok"


def test_fuzzed_files_give_model_file_errors_and_agree_with_the_host(tiny):
    """Random corruptions: only ModelFileError escapes, and exactly the files the spec allows load.

    Every file accepted runs on the edge runtime and matches int8ref.
    """
    rng = random.Random(1234)
    zp = random_model_bytes(4, "zp")
    accepted = 0
    for i in range(1500):
        data = mutate(zp if i % 3 == 0 else tiny, rng)
        try:
            model = load_model(data)
        except ModelFileError:
            verdict = "error"
        else:
            verdict = "ok"
            accepted += 1
            x = random_inputs(read_model(data), 1, i)[0]
            assert list(Network(model, "numpy").run(x)) == int8ref.forward(data, x).tolist()
        assert verdict == spec_verdict(data), f"mutation {i}: edge {verdict}"
    assert 20 < accepted < 1000  # both outcomes are exercised


MPY_FUZZ = """
import sys
from camlytics.edge.model import ModelFileError, load_model
for i in range(int(sys.argv[2])):
    try:
        load_model(sys.argv[1] + "/%d.cml" % i)
        print("ok")
    except ModelFileError:
        print("error")
    except Exception as exc:
        print("CRASH", type(exc).__name__, exc)
"""


def test_micropython_rejects_fuzzed_files_like_the_host(tiny, micropython, tmp_path):
    """Inside MicroPython with a 256 KiB heap: the spec's verdicts, no other exception, no MemoryError."""
    rng = random.Random(99)
    files = [mutate(tiny, rng) for _ in range(300)]
    for i, data in enumerate(files):
        (tmp_path / f"{i}.cml").write_bytes(data)
    out = micropython(MPY_FUZZ, args=[str(tmp_path), str(len(files))], heapsize="256k").split("\n")
    got = [line for line in out if line]
    assert len(got) == len(files)
    lenient = 0
    for i, (verdict, data) in enumerate(zip(got, files)):
        expected = spec_verdict(data)
        if verdict == "ok" and expected == "error" and json_syntax_error(data):
            lenient += 1  # MicroPython's json accepts e.g. a missing comma that CPython's rejects
            continue
        assert verdict == expected, f"file {i}"
    assert lenient < 10


def json_syntax_error(data: bytes) -> bool:
    meta_len = struct.unpack_from("<I", data, 8)[0]
    try:
        json.loads(data[16 : 16 + meta_len])
    except ValueError:
        return True
    return False


def test_meta_cases_really_differ_from_a_valid_file(tiny):
    """Guard for the table above: the unedited metadata rebuilds into a file both readers accept."""
    meta, blob = split(tiny)
    data = build(copy.deepcopy(meta), blob)
    assert load_model(data).classes == ["closed", "open"]
    assert spec_verdict(data) == "ok"
    assert np.array_equal(read_model(data).weights[0], read_model(tiny).weights[0])


def test_min_confidence_is_optional_and_in_zero_one(tiny):
    meta, blob = split(tiny)
    assert load_model(tiny).min_confidence is None
    meta["min_confidence"] = 0.6
    assert load_model(build(meta, blob)).min_confidence == 0.6
    for bad in (1, 1.0, -0.1, "0.5", True, None, [0.5]):
        meta["min_confidence"] = bad
        with pytest.raises(ModelFileError, match="min_confidence"):
            load_model(build(meta, blob))
