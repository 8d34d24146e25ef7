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


# --- the metadata schema (docs/int8.md section 5), shared by the writer and every reader ----------------
#
# Each object of the metadata is a table key -> (required, rule); `check_object` applies it. A rule is a tuple:
#   ("int", lo, hi)              an integer (not a bool) in [lo, hi]
#   ("num", lo, hi, bounds)      a finite int or float between lo and hi; bounds "[]", "[)", "(]" or "()"
#   ("str", min_len, max_len)    a string without control characters
#   ("enum", choices)            one of these values (strings)
#   ("bool",)                    true or false
#   ("ints", n, lo, hi)          a list of n integers in [lo, hi] (n None: 1 to MAX_LIST, the shapes say how many)
#   ("nums", lo, hi, bounds)     a list of 1 to MAX_LIST finite numbers, each as "num"
#   ("names", min_n, max_n, max_len)   a list of distinct non-empty strings as "str"
#   ("object", table)            a JSON object checked against its own table
#   ("list", min_n, max_n)       a list (its items are checked by the caller: the layers)
# Keys a table does not list are an error, for the writer and the readers alike: a key this reader does not
# know may change what the model means, so it is refused rather than ignored (a new key joins the tables).
# What relates keys to each other (shapes chaining, ROI inside source_size, ...) is checked in code below.

REQUIRED, OPTIONAL = True, False
MAX_SIDE = 4096  # input height/width: what edge.preprocess can resize to
MAX_SOURCE = 16384  # camera frame width/height
MAX_SCALE = 1e6  # quantization scales: the softmax of scale * (q - zp) stays finite
MAX_LIST = MAX_TENSOR
SCALE = ("num", 0, MAX_SCALE, "(]")
SHAPE = ("ints", 3, 1, 1 << 16)
REF = ("ints", 2, 0, MAX_BLOB_LEN)  # [offset, length] in the blob
ZP = ("int", -128, 255)  # the range of its dtype is checked in code
DTYPE = ("enum", ("uint8", "int8"))

INPUT_SCHEMA = {
    "height": (REQUIRED, ("int", 1, MAX_SIDE)),
    "width": (REQUIRED, ("int", 1, MAX_SIDE)),
    "channels": (REQUIRED, ("int", 1, 3)),  # 1 (gray) or 3 (rgb): checked with preprocess.color
    "dtype": (REQUIRED, ("enum", ("uint8",))),
    "zp": (REQUIRED, ("int", 0, 0)),
    "scale": (REQUIRED, SCALE),
}
PREPROCESS_SCHEMA = {
    "color": (REQUIRED, ("enum", ("gray", "rgb"))),
    "resize": (OPTIONAL, ("enum", ("area",))),
    "roi": (OPTIONAL, ("ints", 4, 0, MAX_SOURCE)),  # [x0, y0, x1, y1] in source_size pixels
    "source_size": (OPTIONAL, ("ints", 2, 1, MAX_SOURCE)),  # [width, height] of the frames the ROI was drawn on
}
OUTPUT_SCHEMA = {
    "dtype": (REQUIRED, ("enum", ("int8",))),
    "zp": (REQUIRED, ("int", -128, 127)),
    "scale": (REQUIRED, SCALE),
}
_LAYER_COMMON = {
    "op": (REQUIRED, ("enum", OPS)),
    "in_shape": (REQUIRED, SHAPE),
    "out_shape": (REQUIRED, SHAPE),
    "x_dtype": (REQUIRED, DTYPE),
    "x_zp": (REQUIRED, ZP),
    "y_dtype": (REQUIRED, DTYPE),
    "y_zp": (REQUIRED, ZP),
    "x_scale": (OPTIONAL, SCALE),  # the float scales are for the host (reports, ONNX); the edge ignores them
    "y_scale": (OPTIONAL, SCALE),
}
_WEIGHTED = {
    "relu": (REQUIRED, ("bool",)),
    "weights": (REQUIRED, REF),
    "bias": (REQUIRED, REF),
    "m": (REQUIRED, ("ints", None, 0, INT32_MAX)),  # one per output channel
    "s": (REQUIRED, ("ints", None, 1, 31)),
    "w_scale": (OPTIONAL, ("nums", 0, MAX_SCALE, "(]")),
}
_CONV = {
    "kernel": (REQUIRED, ("ints", 2, 1, 64)),
    "stride": (REQUIRED, ("ints", 2, 1, 64)),
    "pad": (REQUIRED, ("ints", 4, 0, 64)),  # top, left, bottom, right
    "groups": (REQUIRED, ("int", 1, 1 << 16)),  # 1, or C == OC (depthwise)
}
_GAP = {
    "m": (REQUIRED, ("int", 0, INT32_MAX)),
    "s": (REQUIRED, ("int", 1, 31)),
}


def _merged(*tables):
    out = {}
    for table in tables:
        out.update(table)
    return out


LAYER_SCHEMAS = {
    "conv2d": _merged(_LAYER_COMMON, _WEIGHTED, _CONV),
    "dense": _merged(_LAYER_COMMON, _WEIGHTED),
    "gap": _merged(_LAYER_COMMON, _GAP),
}
META_SCHEMA = {
    "format": (REQUIRED, ("enum", ("camlytics-int8",))),
    "version": (REQUIRED, ("int", FORMAT_VERSION, FORMAT_VERSION)),
    "name": (OPTIONAL, ("str", 0, 128)),
    "classes": (REQUIRED, ("names", 1, 256, 64)),  # in logit order; as many as the last layer's outputs
    "input": (REQUIRED, ("object", INPUT_SCHEMA)),
    "preprocess": (OPTIONAL, ("object", PREPROCESS_SCHEMA)),  # absent: the whole frame, colour from channels
    "output": (REQUIRED, ("object", OUTPUT_SCHEMA)),
    "macs": (OPTIONAL, ("int", 0, 1 << 53)),  # when present, equal to the count from the layers
    # below this top-class probability the edge app reports "unknown" (absent: always the top class)
    "min_confidence": (OPTIONAL, ("num", 0, 1, "[)")),
    # the class that means "something is there" (drives the virtual input; one of the classes, not "unknown")
    "active_class": (OPTIONAL, ("str", 1, 64)),
    # Home Assistant's device class for a two-class model (door, occupancy, garage_door, window, ...)
    "device_class": (OPTIONAL, ("str", 1, 32)),
    "layers": (REQUIRED, ("list", 1, MAX_LAYERS)),
}


def _finite(value):
    return type(value) in (int, float) and value == value and value not in (float("inf"), float("-inf"))


def _in(value, lo, hi, bounds):
    return (lo <= value if bounds[0] == "[" else lo < value) and (value <= hi if bounds[1] == "]" else value < hi)


def _text(value, lo, hi):
    if not isinstance(value, str) or not lo <= len(value) <= hi:
        return False
    for ch in value:
        if ch < " " or ch == "\x7f":
            return False
    return True


def _rule_ok(value, rule):
    """True when `value` follows `rule` (see the table above)."""
    kind = rule[0]
    if kind == "int":
        return type(value) is int and rule[1] <= value <= rule[2]
    if kind == "num":
        return _finite(value) and _in(value, rule[1], rule[2], rule[3])
    if kind == "str":
        return _text(value, rule[1], rule[2])
    if kind == "enum":
        return isinstance(value, str) and value in rule[1]
    if kind == "bool":
        return type(value) is bool
    if not isinstance(value, list):
        return kind == "object" and isinstance(value, dict)
    if kind == "ints":
        n = rule[1]
        if (len(value) != n) if n is not None else not 1 <= len(value) <= MAX_LIST:
            return False
        for v in value:
            if type(v) is not int or not rule[2] <= v <= rule[3]:
                return False
        return True
    if kind == "nums":
        if not 1 <= len(value) <= MAX_LIST:
            return False
        for v in value:
            if not (_finite(v) and _in(v, rule[1], rule[2], rule[3])):
                return False
        return True
    if kind == "names":
        if not rule[1] <= len(value) <= rule[2]:
            return False
        for i, v in enumerate(value):
            if not _text(v, 1, rule[3]) or v in value[:i]:
                return False
        return True
    return kind == "list" and rule[1] <= len(value) <= rule[2]


def describe(rule):
    """What `rule` asks for, in words (error messages, docs)."""
    kind = rule[0]
    if kind == "int":
        return "an integer in [%d, %d]" % (rule[1], rule[2])
    if kind in ("num", "nums"):
        what = "a finite number in %s%g, %g%s" % (rule[3][0], rule[1], rule[2], rule[3][1])
        return what if kind == "num" else "a list of numbers, each " + what
    if kind == "str":
        return "a string of %d to %d characters without control characters" % (rule[1], rule[2])
    if kind == "enum":
        return "one of " + ", ".join(repr(v) for v in rule[1])
    if kind == "bool":
        return "true or false"
    if kind == "ints":
        n = "%d integers" % rule[1] if rule[1] is not None else "integers"
        return "a list of %s in [%d, %d]" % (n, rule[2], rule[3])
    if kind == "names":
        return "a list of %d to %d distinct non-empty strings of at most %d characters, no control characters" % (
            rule[1], rule[2], rule[3])
    if kind == "object":
        return "an object"
    return "a list of %d to %d items" % (rule[1], rule[2])


def check_object(obj, table, where):
    """Check the JSON object `obj` against a schema table; ModelFileError naming the first bad key."""
    label = where.rstrip(" .") or "model metadata"
    if not isinstance(obj, dict):
        _fail("%s must be an object, got %s" % (label, _show(obj)))
    for key in obj:
        if key not in table:
            _fail("%s: unknown key %s (known: %s)" % (label, _show(key), ", ".join(sorted(table))))
    for key in table:
        required, rule = table[key]
        if key not in obj:
            if required:
                _fail("%s%s is missing" % (where, key))
            continue
        value = obj[key]
        if not _rule_ok(value, rule):
            _fail("%s%s must be %s, got %s" % (where, key, describe(rule), _show(value)))
        if rule[0] == "object":
            check_object(value, rule[1], where + key + ".")


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
    """Validate one layer's metadata (LAYER_SCHEMAS, then its relations to the previous output); its Layer."""
    if not isinstance(layer, dict) or layer.get("op") not in OPS:
        _fail("layer %d: unknown op %s" % (i, _show(layer.get("op") if isinstance(layer, dict) else layer)))
    op = layer["op"]
    where = "layer %d (%s)" % (i, op)
    check_object(layer, LAYER_SCHEMAS[op], where + " ")
    in_shape, out_shape = layer["in_shape"], layer["out_shape"]
    if in_shape != prev_shape:
        _fail("%s: in_shape %s != previous output %s" % (where, in_shape, prev_shape))
    if layer["x_dtype"] != prev_dtype or layer["x_zp"] != prev_zp:
        _fail("%s: input %s/zp %s != previous output %s/%d"
              % (where, _show(layer["x_dtype"]), _show(layer["x_zp"]), prev_dtype, prev_zp))
    lo, hi = DTYPE_RANGE[layer["y_dtype"]]
    _int(layer["y_zp"], where + " y_zp", lo, hi)
    h, w, c = in_shape
    oh, ow, oc = out_shape
    if h * w * c > MAX_TENSOR or oh * ow * oc > MAX_TENSOR:
        _fail("%s: tensor %s -> %s larger than %d elements" % (where, in_shape, out_shape, MAX_TENSOR))
    xlo, xhi = DTYPE_RANGE[prev_dtype]
    r = max(abs(xlo - prev_zp), abs(xhi - prev_zp))  # R of the spec
    if op == "gap":
        if out_shape != [1, 1, c]:
            _fail("%s: out_shape %s != [1, 1, %d]" % (where, out_shape, c))
        _check_bound(where, h * w * r, layer["m"], layer["s"])
        return Layer(layer, None, None)
    if op == "dense":
        if in_shape[:2] != [1, 1] or out_shape[:2] != [1, 1]:
            _fail("%s: dense needs 1x1 input and output, got %s -> %s" % (where, in_shape, out_shape))
        per_oc = c
    else:
        kh, kw = layer["kernel"]
        sh, sw = layer["stride"]
        top, left, bottom, right = layer["pad"]
        groups = layer["groups"]
        if not (groups == 1 or groups == c == oc):
            _fail("%s: groups %s must be 1 or equal C == OC (%d, %d)" % (where, _show(groups), c, oc))
        eh, ew = h + top + bottom - kh, w + left + right - kw
        if eh < 0 or ew < 0 or [eh // sh + 1, ew // sw + 1] != out_shape[:2]:
            _fail("%s: out_shape %s does not follow from %s, kernel, stride, pad" % (where, out_shape, in_shape))
        if (h + top + bottom) * (w + left + right) * c > MAX_TENSOR:
            _fail("%s: padded input larger than %d elements" % (where, MAX_TENSOR))
        per_oc = kh * kw * (c // groups)
    if oc * per_oc > MAX_BLOB_LEN:
        _fail("%s: %d weights, more than a blob can hold" % (where, oc * per_oc))
    for key in ("m", "s", "w_scale"):
        if key in layer and len(layer[key]) != oc:
            _fail("%s %s must list %d values (one per output channel), got %d" % (where, key, oc, len(layer[key])))
    m, s = layer["m"], layer["s"]
    weights = _blob_slice(where, layer, "weights", blob, oc * per_oc)
    bias = struct.unpack("<%di" % oc, _blob_slice(where, layer, "bias", blob, 4 * oc))
    for k in range(oc):
        _check_bound("%s channel %d" % (where, k), abs(bias[k]) + _sum_abs(weights, k * per_oc, per_oc) * r, m[k], s[k])
    return Layer(layer, weights, bias)


def _check_preprocess(meta, channels):
    """What the edge's preprocessing will do with this model must work for any frame size."""
    pre = meta.get("preprocess", {})
    color = pre.get("color", "gray" if channels == 1 else "rgb")
    if (color, channels) not in (("gray", 1), ("rgb", 3)):
        _fail("preprocess color %s does not fit %d input channels (gray: 1, rgb: 3)" % (_show(color), channels))
    roi, size = pre.get("roi"), pre.get("source_size")
    if roi is not None:
        if size is None:
            _fail("preprocess roi needs the source_size it was drawn on")
        x0, y0, x1, y1 = roi
        if not (x0 < x1 <= size[0] and y0 < y1 <= size[1]):
            _fail("preprocess roi %s is empty or outside the %dx%d source_size" % (roi, size[0], size[1]))


def _check_meta(meta, blob):
    if not isinstance(meta, dict) or meta.get("format") != "camlytics-int8" or meta.get("version") != 1:
        fmt = meta.get("format") if isinstance(meta, dict) else meta
        ver = meta.get("version") if isinstance(meta, dict) else None
        _fail("unsupported model format %s version %s" % (_show(fmt), _show(ver)))
    check_object(meta, META_SCHEMA, "")
    inp = meta["input"]
    shape = [inp["height"], inp["width"], inp["channels"]]
    _check_preprocess(meta, inp["channels"])
    dtype, zp, parsed = "uint8", 0, []
    for i, layer in enumerate(meta["layers"]):
        parsed.append(_check_layer(i, layer, blob, shape, dtype, zp))
        shape, dtype, zp = layer["out_shape"], layer["y_dtype"], layer["y_zp"]
    classes = meta["classes"]
    if shape[:2] != [1, 1] or len(classes) != shape[2]:
        _fail("%d classes for output shape %s" % (len(classes), shape))
    if "active_class" in meta and (meta["active_class"] not in classes or meta["active_class"] == "unknown"):
        _fail("active_class %s must be one of the classes %s other than 'unknown'" % (_show(meta["active_class"]),
                                                                                     _show(classes)))
    if "min_confidence" in meta and "unknown" in classes:
        _fail("a class named 'unknown' is ambiguous with min_confidence (the edge reports 'unknown' below it)")
    out = meta["output"]
    if dtype != "int8" or out["zp"] != zp:
        _fail("output must be int8 with the last layer's zp %d, got %s zp %s" % (zp, dtype, _show(out["zp"])))
    model = Model(meta, parsed)
    if "macs" in meta and meta["macs"] != model.macs:
        _fail("macs %d != %d counted from the layers" % (meta["macs"], model.macs))
    return model


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
