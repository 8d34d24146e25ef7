"""Run an int8 edge model: buffers allocated once per Network, kernels from the chosen backend.

    net = Network(load_model("model.cml"))          # backend "auto": the fastest one here (see BACKENDS)
    index, scores = net.predict(input_bytes)        # input: uint8 [H][W][C] bytes, as preprocess makes
"""

import array
import sys

from camlytics.edge.model import DTYPE_RANGE, Model, load_model
from camlytics.edge.ops import (
    C, HB, HI, KH, KW, LO, OC, OH, OW, PH, PW, ROW, SH, SW, SX, SY, TABLE, YBASE, YROW, YZ, params,
)

# "c": the camlytics C module of a camlytics firmware (MicroPython); "viper": @micropython.viper
# kernels (MicroPython with a native emitter: x86, x86-64, ARM Thumb-2, not aarch64); "numpy": CPython
# with numpy; "pure": plain Python anywhere. "auto" takes the first of AUTO_ORDER this interpreter has.
BACKENDS = ("auto", "c", "viper", "numpy", "pure")
IS_MICROPYTHON = sys.implementation.name == "micropython"
AUTO_ORDER = ("c", "viper", "pure") if IS_MICROPYTHON else ("numpy", "pure")
_BYTES_LIKE = (bytes, bytearray, memoryview)  # built once: a tuple built per run() is a heap allocation


def backend_module(name="auto"):
    """`(name, module)` of a kernel backend; "auto" picks the fastest one this interpreter has."""
    if name not in BACKENDS:
        raise ValueError("backend must be one of %s, got %r" % (", ".join(BACKENDS), name))
    if name == "auto":
        for candidate in AUTO_ORDER[:-1]:
            try:
                return backend_module(candidate)
            except ValueError:
                pass
        name = AUTO_ORDER[-1]
    if name == "c" and not IS_MICROPYTHON:
        raise ValueError("backend 'c' needs MicroPython with the camlytics C module (a camlytics firmware)")
    if name == "viper" and not IS_MICROPYTHON:
        raise ValueError("backend 'viper' needs MicroPython")
    if name == "numpy" and IS_MICROPYTHON:
        raise ValueError("backend 'numpy' needs CPython with numpy")
    try:
        if name == "c":
            from camlytics.edge import ops_c as module
        elif name == "viper":
            from camlytics.edge import ops_viper as module
        elif name == "numpy":
            from camlytics.edge import ops_numpy as module
        else:
            from camlytics.edge import ops as module
    except (ImportError, SyntaxError) as exc:  # no numpy or C module, or a MicroPython without viper
        if name == "viper":  # a SyntaxError from the source, or the firmware that leaves ops_viper out
            raise ValueError("backend 'viper' is not available here: this MicroPython has no native code "
                             "emitter for its CPU (MicroPython 1.28 has none for aarch64); use 'c' or 'pure'")
        raise ValueError("backend %r is not available here: %s" % (name, exc))
    return name, module


class _Step:
    """One layer ready to run: its kernel, weights in the backend's form and parameter block."""

    def __init__(self, kernel, weights, x, y, p):
        self.kernel = kernel
        self.weights = weights
        self.x = x
        self.y = y
        self.p = p

    def run(self):
        """Compute the layer from `x` into `y`."""
        if self.weights is None:
            self.kernel(self.x, self.y, self.p)
        else:
            self.kernel(self.x, self.weights, self.y, self.p)


def _padded_buffer(layer):
    """The layer's input buffer `[PH][PW][C]`, its border filled with the (unsigned) zero point."""
    h, w, c = layer.in_shape
    top, left, bottom, right = layer.pad
    xz = layer.x_zp - DTYPE_RANGE[layer.x_dtype][0]
    ph, pw = h + top + bottom, w + left + right
    buf = bytearray(ph * pw * c)
    if xz:
        for i in range(len(buf)):
            buf[i] = xz
    return buf, ph, pw


def _fill_params(layer, p, ph, pw, ybase, yrow):
    """Write the layer's geometry and per-channel `[acc0, m, rnd, s]` rows into `p` (see ops.py)."""
    h, w, c = layer.in_shape
    oh, ow, oc = layer.out_shape
    kh, kw = (h, w) if layer.op == "gap" else layer.kernel
    sh, sw = layer.stride
    ylo = DTYPE_RANGE[layer.y_dtype][0]
    p[OH], p[OW], p[OC], p[KH], p[KW], p[C] = oh, ow, oc, kh, kw, c
    p[ROW], p[SY], p[SX], p[SH], p[SW], p[PH], p[PW] = pw * c, sh * pw * c, sw * c, sh, sw, ph, pw
    p[YBASE], p[YROW] = ybase, yrow
    p[YZ] = layer.y_zp - ylo
    p[LO] = max(0, p[YZ]) if layer.relu else 0
    p[HI] = DTYPE_RANGE[layer.y_dtype][1] - ylo
    p[HB] = -2147483648  # bit 31, for sign-extending ptr32 reads in the viper kernels
    xz = layer.x_zp - DTYPE_RANGE[layer.x_dtype][0]
    t = TABLE
    for k in range(len(layer.m)):
        if layer.op == "gap":
            acc0 = -xz * h * w
        else:
            n = len(layer.weights) // oc
            wsum = 0
            for v in layer.weights[k * n:(k + 1) * n]:
                wsum += v - 256 if v > 127 else v
            acc0 = layer.bias[k] - xz * wsum  # padding holds xz, so this is exact at the borders too
        p[t], p[t + 1], p[t + 2], p[t + 3] = acc0, layer.m[k], 1 << (layer.s[k] - 1), layer.s[k]
        t += 4


def _step(layer, ops, x, ph, pw, y, ybase, yrow):
    """The runnable form of `layer` reading the padded buffer `x` and writing into `y`."""
    p = params(len(layer.m))
    _fill_params(layer, p, ph, pw, ybase, yrow)
    if layer.op == "gap":
        return _Step(ops.gap, None, x, y, p)
    kernel = ops.depthwise if layer.depthwise else ops.conv2d
    return _Step(kernel, ops.prepare_weights(layer), x, y, p)


def run_layer(layer, x, backend="auto"):
    """One layer on its input bytes (`[H][W][C]` in the layer's x dtype, int8 as two's complement).

    Returns the output bytes `[OH][OW][OC]` in the layer's y dtype. For tests and debugging: a
    Network chains layers without these copies.
    """
    _, ops = backend_module(backend)
    buf, ph, pw = _padded_buffer(layer)
    h, w, c = layer.in_shape
    if len(x) != h * w * c:
        raise ValueError("layer input must be %d bytes, got %d" % (h * w * c, len(x)))
    top, left = layer.pad[0], layer.pad[1]
    flip = 0x80 if layer.x_dtype == "int8" else 0  # two's complement -> offset by 128
    for r in range(h):
        for i in range(w * c):
            buf[((top + r) * pw + left) * c + i] = x[r * w * c + i] ^ flip
    oh, ow, oc = layer.out_shape
    y = bytearray(oh * ow * oc)
    _step(layer, ops, buf, ph, pw, y, 0, ow * oc).run()
    if layer.y_dtype == "int8":
        for i in range(len(y)):
            y[i] ^= 0x80
    return y


class Network:
    """An int8 network with its activation buffers preallocated once; `run` allocates almost nothing."""

    def __init__(self, model, backend="auto"):
        if not isinstance(model, Model):
            model = load_model(model)
        self.model = model
        self.backend, ops = backend_module(backend)
        layers = model.layers
        bufs = [_padded_buffer(layer) for layer in layers]
        n_out = layers[-1].out_shape[2]
        self._out = bytearray(n_out)
        self.logits = array.array("b", bytes(n_out))
        self._steps = []
        for i, layer in enumerate(layers):
            x, ph, pw = bufs[i]
            if i + 1 < len(layers):
                y, _, ypw = bufs[i + 1]
                top, left = layers[i + 1].pad[0], layers[i + 1].pad[1]
                oc = layer.out_shape[2]
                self._steps.append(_step(layer, ops, x, ph, pw, y, (top * ypw + left) * oc, ypw * oc))
            else:
                self._steps.append(_step(layer, ops, x, ph, pw, self._out, 0, n_out))
        first = layers[0]
        self._in = bufs[0][0]
        h, w, c = first.in_shape
        top, left = first.pad[0], first.pad[1]
        self._in_rows = (h, w * c, (top * bufs[0][2] + left) * c, bufs[0][2] * c)
        copier = getattr(ops, "input_copier", None)  # a backend's own row copy (ops_c)
        self._copy = copier(*self._in_rows) if copier else None

    def run(self, x):
        """int8 logits (an `array('b')`, reused by the next call) of a uint8 `[H][W][C]` input."""
        h, n, base, pitch = self._in_rows
        if not isinstance(x, _BYTES_LIKE):
            x = bytes(x)  # numpy arrays, array('B'), lists of ints
        if len(x) != h * n:
            raise ValueError("input must be %d bytes (%r uint8), got %d" % (h * n, self.model.input_shape, len(x)))
        buf = self._in
        if base == 0 and pitch == n:
            buf[0:h * n] = x
        elif self._copy:
            kernel, w, p = self._copy
            kernel(x, w, buf, p)
        else:  # into the padded buffer's interior, row by row (memoryview slices copy nothing)
            src, dst = memoryview(x), memoryview(buf)
            for r in range(h):
                dst[base + r * pitch:base + r * pitch + n] = src[r * n:(r + 1) * n]
        for step in self._steps:
            step.run()
        logits = self.logits
        for i in range(len(logits)):
            logits[i] = self._out[i] - 128  # int8 output stored offset by 128
        return logits

    def predict(self, x):
        """`(class index, scores)`: the first largest logit wins; scores are display probabilities."""
        logits = self.run(x)
        return argmax(logits), softmax(logits, self.model.output_scale, self.model.output_zp)


def argmax(values):
    """Index of the first largest value (ties go to the lower index, as docs/int8.md says)."""
    best = 0
    for i in range(1, len(values)):
        if values[i] > values[best]:
            best = i
    return best


def softmax(logits, scale, zp):
    """Probabilities `softmax(scale * (q - zp))` of int8 logits (not part of the bit-exact contract)."""
    z = [scale * (q - zp) for q in logits]
    top = max(z)
    e = [2.718281828459045 ** (v - top) for v in z]
    total = sum(e)
    return [v / total for v in e]
