"""int8 kernels with numpy (CPython accelerator; same buffers and parameter block as ops.py)."""

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from camlytics.edge.ops import C, HI, KH, KW, LO, OC, OH, OW, PW, SH, SW, TABLE, YBASE, YROW, YZ


def prepare_weights(layer):
    """The layer's int8 weights as a float64 vector (products and sums of these integers are exact)."""
    return np.frombuffer(layer.weights, dtype=np.int8).astype(np.float64)


def _table(p):
    t = np.frombuffer(p, dtype=np.int32)[TABLE:].reshape(-1, 4).astype(np.int64)
    return t[:, 0], t[:, 1], t[:, 2], t[:, 3]


def _store(acc, y, p, n_c):
    """Requantize int64 accumulators `[OH, OW, n_c]` and write them into `y`'s interior."""
    _, m, rnd, s = _table(p)
    v = np.clip(((acc * m + rnd) >> s) + p[YZ], p[LO], p[HI]).astype(np.uint8)
    out = np.frombuffer(y, dtype=np.uint8)[p[YBASE]:]
    as_strided(out, shape=v.shape, strides=(p[YROW], n_c, 1), writeable=True)[...] = v


def _windows(x, p):
    """The padded input's KH x KW windows at the output positions: `[OH, OW, KH, KW, C]`."""
    oh, ow, kh, kw, c, pw = p[OH], p[OW], p[KH], p[KW], p[C], p[PW]
    rows = (oh - 1) * p[SH] + kh
    xa = np.frombuffer(x, dtype=np.uint8, count=rows * pw * c).reshape(rows, pw, c)
    win = sliding_window_view(xa, (kh, kw, c))[:: p[SH], :: p[SW], 0]
    return win[:oh, :ow]


def conv2d(x, w, y, p):
    """Full convolution (groups == 1); dense is the 1x1 case."""
    oc = p[OC]
    win = _windows(x, p)
    cols = win.reshape(p[OH] * p[OW], -1).astype(np.float64)
    acc = np.rint(cols @ w.reshape(oc, -1).T).astype(np.int64).reshape(p[OH], p[OW], oc)
    _store(acc + _table(p)[0], y, p, oc)


def depthwise(x, w, y, p):
    """Depthwise convolution (groups == C == OC)."""
    c = p[C]
    win = _windows(x, p).astype(np.int64)  # [OH, OW, KH, KW, C]
    wk = w.reshape(c, p[KH], p[KW]).transpose(1, 2, 0).astype(np.int64)  # [KH, KW, C]
    acc = (win * wk).sum(axis=(2, 3))
    _store(acc + _table(p)[0], y, p, c)


def gap(x, y, p):
    """Global average pool over an unpadded `[H][W][C]` input."""
    c, n = p[C], p[KH] * p[KW]
    xa = np.frombuffer(x, dtype=np.uint8, count=n * c).reshape(n, c).astype(np.int64)
    acc0, m, rnd, s = _table(p)
    v = np.clip(((xa.sum(axis=0) + acc0[0]) * m[0] + rnd[0] >> s[0]) + p[YZ], p[LO], p[HI])
    np.frombuffer(y, dtype=np.uint8)[p[YBASE]:p[YBASE] + c] = v.astype(np.uint8)
