"""int8 kernels in plain Python: the reference loops the viper and numpy backends mirror.

Shared calling convention (built by `camlytics.edge.infer`):
- Activations are bytearrays of unsigned bytes, channels last. An int8 tensor is stored offset by
  128 (`byte = q + 128`) with its zero point offset likewise, so every kernel reads and writes
  unsigned bytes only.
- A convolution's input buffer is already padded with its zero point (`[PH][PW][C]`), so every
  window is complete and padding contributes `(xz - xz) * w = 0`, exactly as docs/int8.md says.
- `p` is an int32 array: the geometry below, then one `[acc0, m, rnd, s]` row per output channel
  with `acc0 = bias - xz * sum(w)`, `rnd = 1 << (s - 1)`; so `acc = acc0 + sum(x * w)`.
- The output `(oy, ox, oc)` goes to `y[YBASE + oy * YROW + ox * OC + oc]`: straight into the
  interior of the next layer's padded input buffer.
"""

import array

# Indices into the parameter block `p`.
OH, OW, OC, KH, KW, C, ROW, SY, SX, YBASE, YROW, SH, LO, HI, YZ, HB, SW, PH, PW = range(19)
TABLE = 20  # first per-output-channel row [acc0, m, rnd, s]


def signed_weights(weights):
    """int8 weights stored as bytes -> list of Python ints in [-128, 127]."""
    return [v - 256 if v > 127 else v for v in weights]


def prepare_weights(layer):
    """The layer's weights as one list of signed ints per output channel."""
    w = signed_weights(layer.weights)
    n = len(w) // layer.out_shape[2]
    return [w[i:i + n] for i in range(0, len(w), n)]


def _store(y, i, acc, p, t):
    """y[i] = clamp(requant(acc, m, s) + yz, lo, hi) with channel row t (docs/int8.md section 3)."""
    v = ((acc * p[t + 1] + p[t + 2]) >> p[t + 3]) + p[YZ]
    y[i] = p[LO] if v < p[LO] else (p[HI] if v > p[HI] else v)


def conv2d(x, w, y, p):
    """Full convolution (groups == 1); also dense layers as a 1x1 convolution on a 1x1 input."""
    oh, ow, oc_n, kh = p[OH], p[OW], p[OC], p[KH]
    span, row, sy, sx = p[KW] * p[C], p[ROW], p[SY], p[SX]
    k = kh * span
    win = [0] * k
    taps = range(k)
    for oy in range(oh):
        yp = p[YBASE] + oy * p[YROW]
        for ox in range(ow):
            xb = oy * sy + ox * sx
            j = 0
            for ky in range(kh):  # gather the window: KH contiguous rows of KW * C bytes
                r = xb + ky * row
                for i in range(r, r + span):
                    win[j] = x[i]
                    j += 1
            t, oc = TABLE, 0
            for wrow in w:
                acc = p[t]
                for i in taps:
                    acc += win[i] * wrow[i]
                _store(y, yp + oc, acc, p, t)
                t += 4
                oc += 1
            yp += oc_n


def depthwise(x, w, y, p):
    """Depthwise convolution (groups == C == OC): channel c sees only input channel c."""
    oh, ow, c_n, kh, kw = p[OH], p[OW], p[C], p[KH], p[KW]
    row, sy, sx = p[ROW], p[SY], p[SX]
    for oy in range(oh):
        yp = p[YBASE] + oy * p[YROW]
        for ox in range(ow):
            xb = oy * sy + ox * sx
            t = TABLE
            for c in range(c_n):
                acc, wrow, wi = p[t], w[c], 0
                for ky in range(kh):
                    r = xb + ky * row + c
                    for kx in range(kw):
                        acc += x[r] * wrow[wi]
                        r += c_n
                        wi += 1
                _store(y, yp + c, acc, p, t)
                t += 4
            yp += c_n


def gap(x, y, p):
    """Global average pool over the `[KH][KW]` = `[H][W]` input (one requant row for all channels)."""
    c_n, n = p[C], p[KH] * p[KW]
    for c in range(c_n):
        acc = p[TABLE]
        for i in range(c, n * c_n, c_n):
            acc += x[i]
        _store(y, p[YBASE] + c, acc, p, TABLE)


def params(n_rows):
    """A zeroed parameter block with `n_rows` per-channel rows."""
    return array.array("i", bytes(4 * (TABLE + 4 * n_rows)))
