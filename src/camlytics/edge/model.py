"""Edge model file reader (docs/int8.md section 5): every length and shape is checked before use.

Runs under MicroPython and CPython. A bad file raises `ModelFileError` (a ValueError) whose message
names the bad field; the host maps it to `camlytics.errors.ModelError`.
"""

import binascii
import json
import struct

MODEL_FILE = "model.cml"  # the model file's name inside a model directory (and on the camera)
MAGIC = b"CMLM"
FORMAT_VERSION = 1
HEADER_SIZE = 16
MAX_META_LEN = 1 << 20
MAX_BLOB_LEN = 4 << 20
# Largest tensor (elements, padding included) a model may ask the runtime to allocate: bounds memory
# for hostile shapes, which carry no weights to be limited by the blob size (gap, depthwise).
MAX_TENSOR = 1 << 22
MAX_LAYERS = 256
INT32_MAX = 2147483647
DTYPE_RANGE = {"uint8": (0, 255), "int8": (-128, 127)}
OPS = ("conv2d", "dense", "gap")


class ModelFileError(ValueError):
    """The model file is truncated, corrupt, too large or breaks a rule of docs/int8.md."""


class Layer:
    """One validated layer. A dense layer is also described as a 1x1 convolution on a 1x1 input."""

    def __init__(self, meta, weights, bias):
        self.meta = meta  # the layer's JSON object, as in the file
        self.op = meta["op"]
        self.in_shape = tuple(meta["in_shape"])
        self.out_shape = tuple(meta["out_shape"])
        conv = self.op == "conv2d"
        self.kernel = tuple(meta["kernel"]) if conv else (1, 1)
        self.stride = tuple(meta["stride"]) if conv else (1, 1)
        self.pad = tuple(meta["pad"]) if conv else (0, 0, 0, 0)
        self.groups = meta["groups"] if conv else 1
        self.relu = bool(meta.get("relu", False))
        self.weights = weights  # bytes: int8 values, layout [OC][KH][KW][C/groups]; None for gap
        self.bias = bias  # tuple of int32; None for gap
        m, s = meta["m"], meta["s"]
        self.m = list(m) if isinstance(m, list) else [m]
        self.s = list(s) if isinstance(s, list) else [s]
        self.x_zp, self.x_dtype = meta["x_zp"], meta["x_dtype"]
        self.y_zp, self.y_dtype = meta["y_zp"], meta["y_dtype"]

    @property
    def depthwise(self):
        """True for a depthwise convolution (groups == C == OC > 1)."""
        return self.op == "conv2d" and self.groups != 1

    def macs(self):
        """Multiply-accumulates (gap: one add per input element)."""
        h, w, c = self.in_shape
        if self.op == "gap":
            return h * w * c
        oh, ow, _ = self.out_shape
        return oh * ow * len(self.weights)


class Model:
    """A validated edge model: metadata plus each layer's weights and biases."""

    def __init__(self, meta, layers):
        self.meta = meta
        self.layers = layers
        self.name = meta.get("name", "")
        self.classes = list(meta["classes"])
        inp = meta["input"]
        self.input_shape = (inp["height"], inp["width"], inp["channels"])
        out = meta["output"]
        self.output_zp = out["zp"]
        self.output_scale = out["scale"]
        self.preprocess = meta.get("preprocess") or {}
        # below this top-class probability the edge app reports "unknown" (None: always the top class)
        self.min_confidence = meta.get("min_confidence")
        self.macs = sum(layer.macs() for layer in layers)


def _fail(msg):
    raise ModelFileError(msg)


def _show(value):
    """repr() cut short: a hostile file must not turn an error message into megabytes."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _int(value, what, lo, hi):
    # `type(v) is int` rejects bools and floats, like the host's check.
    if type(value) is not int or not lo <= value <= hi:
        _fail("%s must be an integer in [%d, %d], got %s" % (what, lo, hi, _show(value)))
    return value


def _ints(value, n, what, lo, hi):
    if not isinstance(value, list) or len(value) != n:
        _fail("%s must be a list of %d integers, got %s" % (what, n, _show(value)))
    for v in value:
        _int(v, what, lo, hi)
    return value


def _number(value, what):
    if type(value) not in (int, float) or not (value == value) or value in (float("inf"), float("-inf")):
        _fail("%s must be a finite number, got %s" % (what, _show(value)))
    return value


def _read_source(source, max_size):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return source
    path = source.__fspath__() if hasattr(source, "__fspath__") else source
    if not isinstance(path, str):
        _fail("expected model file bytes or a path, got %s" % type(source).__name__)
    import os

    try:
        if os.stat(path)[0] & 0x4000:  # a model directory holds model.cml
            path = path.rstrip("/") + "/" + MODEL_FILE
        size = os.stat(path)[6]
    except OSError as exc:
        _fail("cannot read model file %s: %s" % (_show(path), exc))
    if size > max_size:
        _fail("model file %s is %d bytes, more than the %d allowed" % (_show(path), size, max_size))
    with open(path, "rb") as f:
        return f.read()


def _sum_abs(weights, start, n):
    """sum(|w|) of n int8 values stored as bytes."""
    total = 0
    for i in range(start, start + n):
        v = weights[i]
        total += v if v < 128 else 256 - v
    return total


def _check_bound(where, bound, m, s):
    # docs/int8.md section 3: B * m + (1 << (s - 1)) must fit a signed 32-bit word.
    if bound > INT32_MAX or bound * m + (1 << (s - 1)) > INT32_MAX:
        _fail("%s: requantization may overflow 32 bits (bound %d, m %d, s %d)" % (where, bound, m, s))


def _blob_slice(where, layer, key, blob, size):
    ref = layer.get(key)
    if not isinstance(ref, list) or len(ref) != 2 or type(ref[0]) is not int or type(ref[1]) is not int:
        _fail("%s: bad %s reference %s" % (where, key, _show(ref)))
    off, length = ref
    if off < 0 or length < 0 or off % 4 or off + length > len(blob):
        _fail("%s: %s [%d, %d] outside the blob (%d bytes) or unaligned" % (where, key, off, length, len(blob)))
    if length != size:
        _fail("%s: %s length %d != %d expected from the shapes" % (where, key, length, size))
    return bytes(blob[off : off + length])


def _check_layer(i, layer, blob, prev_shape, prev_dtype, prev_zp):
    """Validate one layer's metadata against the previous output; return its Layer."""
    if not isinstance(layer, dict) or layer.get("op") not in OPS:
        _fail("layer %d: unknown op %s" % (i, _show(layer.get("op") if isinstance(layer, dict) else layer)))
    op = layer["op"]
    where = "layer %d (%s)" % (i, op)
    in_shape = _ints(layer.get("in_shape"), 3, where + " in_shape", 1, 1 << 16)
    out_shape = _ints(layer.get("out_shape"), 3, where + " out_shape", 1, 1 << 16)
    if in_shape != prev_shape:
        _fail("%s: in_shape %s != previous output %s" % (where, in_shape, prev_shape))
    if layer.get("x_dtype") != prev_dtype or layer.get("x_zp") != prev_zp:
        _fail("%s: input %s/zp %s != previous output %s/%d"
              % (where, _show(layer.get("x_dtype")), _show(layer.get("x_zp")), prev_dtype, prev_zp))
    y_dtype = layer.get("y_dtype")
    if y_dtype not in ("uint8", "int8"):  # a tuple: a hostile list value must not hit dict hashing
        _fail("%s: y_dtype %s is not uint8 or int8" % (where, _show(y_dtype)))
    lo, hi = DTYPE_RANGE[y_dtype]
    _int(layer.get("y_zp"), where + " y_zp", lo, hi)
    h, w, c = in_shape
    oh, ow, oc = out_shape
    if h * w * c > MAX_TENSOR or oh * ow * oc > MAX_TENSOR:
        _fail("%s: tensor %s -> %s larger than %d elements" % (where, in_shape, out_shape, MAX_TENSOR))
    xlo, xhi = DTYPE_RANGE[prev_dtype]
    r = max(abs(xlo - prev_zp), abs(xhi - prev_zp))  # R of the spec
    if op == "gap":
        if out_shape != [1, 1, c]:
            _fail("%s: out_shape %s != [1, 1, %d]" % (where, out_shape, c))
        m = _int(layer.get("m"), where + " m", 0, INT32_MAX)
        s = _int(layer.get("s"), where + " s", 1, 31)
        _check_bound(where, h * w * r, m, s)
        return Layer(layer, None, None)
    if type(layer.get("relu")) is not bool:
        _fail("%s: relu must be true or false, got %s" % (where, _show(layer.get("relu"))))
    if op == "dense":
        if in_shape[:2] != [1, 1] or out_shape[:2] != [1, 1]:
            _fail("%s: dense needs 1x1 input and output, got %s -> %s" % (where, in_shape, out_shape))
        per_oc = c
    else:
        kh, kw = _ints(layer.get("kernel"), 2, where + " kernel", 1, 64)
        sh, sw = _ints(layer.get("stride"), 2, where + " stride", 1, 64)
        top, left, bottom, right = _ints(layer.get("pad"), 4, where + " pad", 0, 64)
        groups = layer.get("groups")
        if not (groups == 1 or (type(groups) is int and groups == c == oc)):
            _fail("%s: groups %s must be 1 or equal C == OC (%d, %d)" % (where, _show(groups), c, oc))
        eh, ew = h + top + bottom - kh, w + left + right - kw
        if eh < 0 or ew < 0 or [eh // sh + 1, ew // sw + 1] != out_shape[:2]:
            _fail("%s: out_shape %s does not follow from %s, kernel, stride, pad" % (where, out_shape, in_shape))
        if (h + top + bottom) * (w + left + right) * c > MAX_TENSOR:
            _fail("%s: padded input larger than %d elements" % (where, MAX_TENSOR))
        per_oc = kh * kw * (c // groups)
    if oc * per_oc > MAX_BLOB_LEN:
        _fail("%s: %d weights, more than a blob can hold" % (where, oc * per_oc))
    m = _ints(layer.get("m"), oc, where + " m", 0, INT32_MAX)
    s = _ints(layer.get("s"), oc, where + " s", 1, 31)
    weights = _blob_slice(where, layer, "weights", blob, oc * per_oc)
    bias = struct.unpack("<%di" % oc, _blob_slice(where, layer, "bias", blob, 4 * oc))
    for k in range(oc):
        _check_bound("%s channel %d" % (where, k), abs(bias[k]) + _sum_abs(weights, k * per_oc, per_oc) * r, m[k], s[k])
    return Layer(layer, weights, bias)


def _check_meta(meta, blob):
    if not isinstance(meta, dict) or meta.get("format") != "camlytics-int8" or meta.get("version") != 1:
        fmt = meta.get("format") if isinstance(meta, dict) else meta
        ver = meta.get("version") if isinstance(meta, dict) else None
        _fail("unsupported model format %s version %s" % (_show(fmt), _show(ver)))
    inp = meta.get("input")
    if not isinstance(inp, dict):
        _fail("model metadata has no 'input' object")
    shape = _ints([inp.get("height"), inp.get("width"), inp.get("channels")], 3,
                  "input height/width/channels", 1, 1 << 16)
    if inp.get("dtype") != "uint8" or inp.get("zp") != 0:
        _fail("input must be uint8 with zp 0, got %s zp %s" % (_show(inp.get("dtype")), _show(inp.get("zp"))))
    layers = meta.get("layers")
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        _fail("model metadata needs a 'layers' list of 1 to %d layers" % MAX_LAYERS)
    dtype, zp, parsed = "uint8", 0, []
    for i, layer in enumerate(layers):
        parsed.append(_check_layer(i, layer, blob, shape, dtype, zp))
        shape, dtype, zp = layer["out_shape"], layer["y_dtype"], layer["y_zp"]
    classes = meta.get("classes")
    if shape[:2] != [1, 1] or not isinstance(classes, list) or len(classes) != shape[2]:
        _fail("%s classes for output shape %s" % (len(classes) if isinstance(classes, list) else _show(classes), shape))
    for name in classes:
        if not isinstance(name, str):
            _fail("class names must be strings, got %s" % (_show(classes),))
    out = meta.get("output")
    if not isinstance(out, dict) or dtype != "int8" or out.get("dtype") != "int8" or out.get("zp") != zp:
        _fail("output must be int8 with the last layer's zp %d, got %s" % (zp, _show(out)))
    _number(out.get("scale"), "output scale")
    conf = meta.get("min_confidence")
    if "min_confidence" in meta and not (type(conf) in (int, float) and 0 <= conf < 1):
        _fail("min_confidence must be a number in [0, 1), got %s" % _show(conf))
    return Model(meta, parsed)


def parse_header(data):
    """`(meta_len, blob_len)` of a model file after checking magic, version, lengths and size."""
    if len(data) < HEADER_SIZE + 4:
        _fail("model file too short: %d bytes" % len(data))
    magic, version, header_size, meta_len, blob_len = struct.unpack_from("<4sHHII", data, 0)
    if magic != MAGIC:
        _fail("not a camlytics model file: magic %s" % (_show(bytes(magic)),))
    if version != FORMAT_VERSION or header_size != HEADER_SIZE:
        _fail("unsupported model file version %d (header size %d)" % (version, header_size))
    if meta_len > MAX_META_LEN or blob_len > MAX_BLOB_LEN or meta_len % 4 or blob_len % 4:
        _fail("bad section lengths: metadata %d, blob %d" % (meta_len, blob_len))
    if len(data) != HEADER_SIZE + meta_len + blob_len + 4:
        _fail("model file size %d != %d (truncated?)" % (len(data), HEADER_SIZE + meta_len + blob_len + 4))
    return meta_len, blob_len


def load_model(source, error=None):
    """Read and fully validate a model file (bytes, or a path to the file or its model directory).

    A bad file raises ModelFileError, or `error(message)` when given (the host passes
    `camlytics.errors.ModelError`, which edge code cannot import on the camera).
    """
    try:
        return _load(source)
    except ModelFileError as exc:
        if error is None:
            raise
        raise error(str(exc)) from None


def _load(source):
    data = _read_source(source, HEADER_SIZE + MAX_META_LEN + MAX_BLOB_LEN + 4)
    meta_len, blob_len = parse_header(data)
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if binascii.crc32(memoryview(data)[:-4]) & 0xFFFFFFFF != crc:
        _fail("model file CRC mismatch (corrupt file)")
    try:
        meta = json.loads(str(bytes(data[HEADER_SIZE:HEADER_SIZE + meta_len]), "utf-8"))
    except Exception as exc:  # ValueError, UnicodeError, RuntimeError (nesting too deep)...
        _fail("model metadata is not valid JSON: %s" % (_show(str(exc)),))
    blob = memoryview(data)[HEADER_SIZE + meta_len:HEADER_SIZE + meta_len + blob_len]
    return _check_meta(meta, blob)
