"""Baseline JPEG decoder for the edge: the luma plane (or RGB) at 1/1, 1/2, 1/4 or 1/8 scale.

Runs unchanged on MicroPython (hot loops compiled with `@micropython.viper`) and CPython (the same
loops as plain Python). The integer IDCTs are those of libjpeg(-turbo) (`jpeg_idct_islow` and the
reduced-size `jpeg_idct_4x4/2x2/1x1`), and colour follows libjpeg's upsampling and YCbCr->RGB,
so the output is the same, bit for bit, as Pillow's `Image.draft("L" | "RGB", ...)` decode at
every scale: the host trains on exactly what the camera sees.

Supported: SOF0 baseline and SOF1 extended-sequential 8-bit Huffman JPEG, 1 (grey) or 3
(YCbCr) components, any sampling factors 1..4 (4:4:4, 4:2:2, 4:2:0, ...), interleaved or
non-interleaved scans, restart markers. Everything else (progressive, arithmetic, lossless,
12-bit, hierarchical, CMYK) and every corrupt or truncated file raises `JpegError` with a message;
lengths and sizes are checked before use, so a hostile file cannot make it hang or over-allocate.

Kernels: in a camlytics firmware the C module `_camlytics` (firmware/cmodule/camlytics/jpeg.c) runs
the same kernels with the same buffers; `KERNELS` says which set decodes ("c", "viper" or "pure").
"""

import array
import sys

if sys.implementation.name == "micropython":
    import micropython
else:  # CPython (where PyPI's `micropython` launcher module may exist): kernels run as plain Python.

    class micropython:  # noqa: N801 - stands in for the MicroPython module of that name
        """Identity decorators so `@micropython.viper` code runs unchanged on CPython."""

        @staticmethod
        def viper(func):
            return func

        @staticmethod
        def native(func):
            return func

    ptr8 = ptr16 = ptr32 = object  # viper type names, only used in annotations

# The C module of a camlytics firmware: C twins of the kernels below (jpeg_scan, jpeg_upsample,
# jpeg_ycc_to_rgb, and preprocess's area_resize), used when its version is the one written for.
C_VERSION = 1  # CAMLYTICS_CMODULE_VERSION in firmware/cmodule/camlytics/camlytics.h
try:
    import _camlytics
except ImportError:
    _camlytics = None
if getattr(_camlytics, "VERSION", None) != C_VERSION:  # absent, or from another camlytics
    _camlytics = None

# Limits: the largest image accepted (a camera sends 640x360 .. 4K); beyond, allocation would
# exceed a camera's heap anyway. Callers can pass a smaller `max_pixels`.
MAX_SIDE = 16384
MAX_PIXELS = 1 << 25

# Natural (row-major) index of the k-th coefficient in zig-zag order.
ZIGZAG = bytes((
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
))

# Huffman table slot layout inside one array('H'): a 9-bit lookahead table, then per code length
# (1..16) maxcode + 1, mincode and the index of its first value, then the 256 values.
_LOOK = 9
_MAXC = 512
_MINC = _MAXC + 17
_VALP = _MINC + 17
_VALS = _VALP + 17
_TSZ = 832  # >= _VALS + 256, per table slot; slots 0-3 DC, 4-7 AC

# Plan layout (array('H')): header, then 20 entries per block of an MCU, then the zig-zag table.
_PB = 16
_PBLOCK = 20
_PZZ = _PB + _PBLOCK * 10
_PLAN_SIZE = _PZZ + 64
assert _PZZ == 216  # hard-coded in _scan (viper cannot read module globals as ints)

# Kernel status codes -> messages.
_ERRORS = {
    1: "corrupt entropy-coded data (invalid Huffman code)",
    2: "corrupt entropy-coded data (coefficient out of range)",
    3: "truncated or corrupt data (entropy-coded segment ended early)",
    4: "missing or out-of-order restart marker",
}

# DC predictors are stored biased (literal 0x20000000 in _scan) so that a 32-bit slot never holds
# a negative value: viper's ptr32 loads zero-extend on 64-bit machines.
_BIAS = 1 << 29


class JpegError(ValueError):
    """The bytes are not a JPEG this decoder supports, or they are corrupt or truncated."""


# --------------------------------------------------------------------------------------------
# Kernels (viper on MicroPython). Integers stay within 32 bits on valid data; buffers are written
# only at indices checked against the plan, so corrupt data gives garbage pixels or an error code,
# never an out-of-bounds write.
# --------------------------------------------------------------------------------------------


@micropython.viper
def _idct8(coef: ptr16, qt: ptr16, out: ptr8, a: ptr32):
    """libjpeg's jpeg_idct_islow: 8x8 coefficients -> 8x8 pixels, clipped to a[3] x a[4]."""
    qo = int(a[0])
    ws = a
    # Pass 1: columns -> workspace a[8..72), biased by 2**28: a 32-bit load never sign-extends.
    col = 0
    while col < 8:
        c1 = (int(coef[8 + col]) ^ 0x8000) - 0x8000
        c2 = (int(coef[16 + col]) ^ 0x8000) - 0x8000
        c3 = (int(coef[24 + col]) ^ 0x8000) - 0x8000
        c4 = (int(coef[32 + col]) ^ 0x8000) - 0x8000
        c5 = (int(coef[40 + col]) ^ 0x8000) - 0x8000
        c6 = (int(coef[48 + col]) ^ 0x8000) - 0x8000
        c7 = (int(coef[56 + col]) ^ 0x8000) - 0x8000
        c0 = ((int(coef[col]) ^ 0x8000) - 0x8000) * int(qt[qo + col])
        if c1 == 0 and c2 == 0 and c3 == 0 and c4 == 0 and c5 == 0 and c6 == 0 and c7 == 0:
            dc = (c0 << 2) + 0x10000000
            i = 8 + col
            while i < 72:
                ws[i] = dc
                i += 8
            col += 1
            continue
        z2 = c2 * int(qt[qo + 16 + col])
        z3 = c6 * int(qt[qo + 48 + col])
        z1 = (z2 + z3) * 4433
        t2 = z1 - z3 * 15137
        t3 = z1 + z2 * 6270
        z3 = c4 * int(qt[qo + 32 + col])
        t0 = (c0 + z3) << 13
        t1 = (c0 - z3) << 13
        t10 = t0 + t3
        t13 = t0 - t3
        t11 = t1 + t2
        t12 = t1 - t2
        t0 = c7 * int(qt[qo + 56 + col])
        t1 = c5 * int(qt[qo + 40 + col])
        t2 = c3 * int(qt[qo + 24 + col])
        t3 = c1 * int(qt[qo + 8 + col])
        z1 = t0 + t3
        z2 = t1 + t2
        z3 = t0 + t2
        z4 = t1 + t3
        z5 = (z3 + z4) * 9633
        t0 = t0 * 2446
        t1 = t1 * 16819
        t2 = t2 * 25172
        t3 = t3 * 12299
        z1 = z1 * -7373
        z2 = z2 * -20995
        z3 = z3 * -16069 + z5
        z4 = z4 * -3196 + z5
        t0 += z1 + z3
        t1 += z2 + z4
        t2 += z2 + z3
        t3 += z1 + z4
        i = 8 + col
        ws[i] = ((t10 + t3 + 1024) >> 11) + 0x10000000
        ws[i + 56] = ((t10 - t3 + 1024) >> 11) + 0x10000000
        ws[i + 8] = ((t11 + t2 + 1024) >> 11) + 0x10000000
        ws[i + 48] = ((t11 - t2 + 1024) >> 11) + 0x10000000
        ws[i + 16] = ((t12 + t1 + 1024) >> 11) + 0x10000000
        ws[i + 40] = ((t12 - t1 + 1024) >> 11) + 0x10000000
        ws[i + 24] = ((t13 + t0 + 1024) >> 11) + 0x10000000
        ws[i + 32] = ((t13 - t0 + 1024) >> 11) + 0x10000000
        col += 1
    # Pass 2: rows -> pixels, with libjpeg's range limiting (x & 1023, then clamp or wrap).
    o = int(a[1])
    stride = int(a[2])
    w = int(a[3])
    h = int(a[4])
    row = 0
    while row < h:
        i = 8 + row * 8
        w0 = int(ws[i]) - 0x10000000
        w1 = int(ws[i + 1]) - 0x10000000
        w2 = int(ws[i + 2]) - 0x10000000
        w3 = int(ws[i + 3]) - 0x10000000
        w4 = int(ws[i + 4]) - 0x10000000
        w5 = int(ws[i + 5]) - 0x10000000
        w6 = int(ws[i + 6]) - 0x10000000
        w7 = int(ws[i + 7]) - 0x10000000
        z1 = (w2 + w6) * 4433
        t2 = z1 - w6 * 15137
        t3 = z1 + w2 * 6270
        t0 = (w0 + w4) << 13
        t1 = (w0 - w4) << 13
        t10 = t0 + t3
        t13 = t0 - t3
        t11 = t1 + t2
        t12 = t1 - t2
        z1 = w7 + w1
        z2 = w5 + w3
        z3 = w7 + w3
        z4 = w5 + w1
        z5 = (z3 + z4) * 9633
        t0 = w7 * 2446
        t1 = w5 * 16819
        t2 = w3 * 25172
        t3 = w1 * 12299
        z1 = z1 * -7373
        z2 = z2 * -20995
        z3 = z3 * -16069 + z5
        z4 = z4 * -3196 + z5
        t0 += z1 + z3
        t1 += z2 + z4
        t2 += z2 + z3
        t3 += z1 + z4
        # Outputs in column order 0..7, each descaled by 18 bits and range-limited.
        col = 0
        while col < w:
            if col == 0:
                v = t10 + t3
            elif col == 1:
                v = t11 + t2
            elif col == 2:
                v = t12 + t1
            elif col == 3:
                v = t13 + t0
            elif col == 4:
                v = t13 - t0
            elif col == 5:
                v = t12 - t1
            elif col == 6:
                v = t11 - t2
            else:
                v = t10 - t3
            v = ((v + 131072) >> 18) & 1023
            if v < 128:
                v += 128
            elif v < 512:
                v = 255
            elif v < 896:
                v = 0
            else:
                v -= 896
            out[o + col] = v
            col += 1
        o += stride
        row += 1


@micropython.viper
def _idct4(coef: ptr16, qt: ptr16, out: ptr8, a: ptr32):
    """libjpeg's jpeg_idct_4x4: 8x8 coefficients -> 4x4 pixels, clipped to a[3] x a[4]."""
    qo = int(a[0])
    ws = a
    col = 0
    while col < 8:
        if col == 4:  # column 4 does not contribute to a 4x4 output
            col += 1
            continue
        c0 = ((int(coef[col]) ^ 0x8000) - 0x8000) * int(qt[qo + col])
        z2 = ((int(coef[16 + col]) ^ 0x8000) - 0x8000) * int(qt[qo + 16 + col])
        z3 = ((int(coef[48 + col]) ^ 0x8000) - 0x8000) * int(qt[qo + 48 + col])
        t0 = c0 << 14
        t2 = z2 * 15137 - z3 * 6270
        t10 = t0 + t2
        t12 = t0 - t2
        z1 = ((int(coef[56 + col]) ^ 0x8000) - 0x8000) * int(qt[qo + 56 + col])
        z2 = ((int(coef[40 + col]) ^ 0x8000) - 0x8000) * int(qt[qo + 40 + col])
        z3 = ((int(coef[24 + col]) ^ 0x8000) - 0x8000) * int(qt[qo + 24 + col])
        z4 = ((int(coef[8 + col]) ^ 0x8000) - 0x8000) * int(qt[qo + 8 + col])
        t0 = z1 * -1730 + z2 * 11893 - z3 * 17799 + z4 * 8697
        t2 = z1 * -4176 - z2 * 4926 + z3 * 7373 + z4 * 20995
        i = 8 + col
        ws[i] = ((t10 + t2 + 2048) >> 12) + 0x10000000
        ws[i + 24] = ((t10 - t2 + 2048) >> 12) + 0x10000000
        ws[i + 8] = ((t12 + t0 + 2048) >> 12) + 0x10000000
        ws[i + 16] = ((t12 - t0 + 2048) >> 12) + 0x10000000
        col += 1
    o = int(a[1])
    stride = int(a[2])
    w = int(a[3])
    h = int(a[4])
    row = 0
    while row < h:
        i = 8 + row * 8
        t0 = (int(ws[i]) - 0x10000000) << 14
        t2 = (int(ws[i + 2]) - 0x10000000) * 15137 - (int(ws[i + 6]) - 0x10000000) * 6270
        t10 = t0 + t2
        t12 = t0 - t2
        z1 = int(ws[i + 7]) - 0x10000000
        z2 = int(ws[i + 5]) - 0x10000000
        z3 = int(ws[i + 3]) - 0x10000000
        z4 = int(ws[i + 1]) - 0x10000000
        t0 = z1 * -1730 + z2 * 11893 - z3 * 17799 + z4 * 8697
        t2 = z1 * -4176 - z2 * 4926 + z3 * 7373 + z4 * 20995
        col = 0
        while col < w:
            if col == 0:
                v = t10 + t2
            elif col == 1:
                v = t12 + t0
            elif col == 2:
                v = t12 - t0
            else:
                v = t10 - t2
            v = ((v + 262144) >> 19) & 1023
            if v < 128:
                v += 128
            elif v < 512:
                v = 255
            elif v < 896:
                v = 0
            else:
                v -= 896
            out[o + col] = v
            col += 1
        o += stride
        row += 1


@micropython.viper
def _idct2(coef: ptr16, qt: ptr16, out: ptr8, a: ptr32):
    """libjpeg's jpeg_idct_2x2: 8x8 coefficients -> 2x2 pixels, clipped to a[3] x a[4]."""
    qo = int(a[0])
    ws = a
    col = 0
    while col < 8:
        t10 = (((int(coef[col]) ^ 0x8000) - 0x8000) * int(qt[qo + col])) << 15
        t0 = ((int(coef[56 + col]) ^ 0x8000) - 0x8000) * int(qt[qo + 56 + col]) * -5906
        t0 += ((int(coef[40 + col]) ^ 0x8000) - 0x8000) * int(qt[qo + 40 + col]) * 6967
        t0 += ((int(coef[24 + col]) ^ 0x8000) - 0x8000) * int(qt[qo + 24 + col]) * -10426
        t0 += ((int(coef[8 + col]) ^ 0x8000) - 0x8000) * int(qt[qo + 8 + col]) * 29692
        ws[8 + col] = ((t10 + t0 + 4096) >> 13) + 0x10000000
        ws[16 + col] = ((t10 - t0 + 4096) >> 13) + 0x10000000
        col += 1 if col == 0 else 2  # columns 0, 1, 3, 5, 7 only
    o = int(a[1])
    stride = int(a[2])
    w = int(a[3])
    h = int(a[4])
    row = 0
    while row < h:
        i = 8 + row * 8
        t10 = (int(ws[i]) - 0x10000000) << 15
        t0 = (int(ws[i + 7]) - 0x10000000) * -5906 + (int(ws[i + 5]) - 0x10000000) * 6967
        t0 += (int(ws[i + 3]) - 0x10000000) * -10426 + (int(ws[i + 1]) - 0x10000000) * 29692
        col = 0
        while col < w:
            v = t10 + t0 if col == 0 else t10 - t0
            v = ((v + 524288) >> 20) & 1023
            if v < 128:
                v += 128
            elif v < 512:
                v = 255
            elif v < 896:
                v = 0
            else:
                v -= 896
            out[o + col] = v
            col += 1
        o += stride
        row += 1



# CPython with numpy: the per-block IDCT calls of _scan are collected and run as one vectorised
# batch (same integer formulas, so the same bytes); without numpy the plain functions above run.
_np = None
if sys.implementation.name != "micropython":
    try:
        import numpy as _np
    except ImportError:
        _np = None
USE_NUMPY = _np is not None  # tests switch it off to check the plain-Python path

if _np is not None:
    import threading

    _batch = threading.local()

    def _deferred(size, pure):
        def idct(coef, qt, out, a):
            blocks = getattr(_batch, "blocks", None)
            if blocks is None:
                return pure(coef, qt, out, a)
            blocks.append((size, coef.tobytes(), a[0], a[1], a[2], a[3], a[4]))
        return idct

    _idct8 = _deferred(8, _idct8)
    _idct4 = _deferred(4, _idct4)
    _idct2 = _deferred(2, _idct2)

    def _range_limit_table():
        v = _np.arange(1024)
        return _np.where(v < 128, v + 128, _np.where(v < 512, 255, _np.where(v < 896, 0, v - 896))).astype(_np.uint8)

    _RANGE_LIMIT = _range_limit_table()

    def _islow_1d(x, shift, rnd):
        z1 = (x[..., 2] + x[..., 6]) * 4433
        t2 = z1 - x[..., 6] * 15137
        t3 = z1 + x[..., 2] * 6270
        t0 = (x[..., 0] + x[..., 4]) << 13
        t1 = (x[..., 0] - x[..., 4]) << 13
        t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
        t0, t1, t2, t3 = x[..., 7], x[..., 5], x[..., 3], x[..., 1]
        z1, z2, z3, z4 = t0 + t3, t1 + t2, t0 + t2, t1 + t3
        z5 = (z3 + z4) * 9633
        t0, t1, t2, t3 = t0 * 2446, t1 * 16819, t2 * 25172, t3 * 12299
        z1, z2 = z1 * -7373, z2 * -20995
        z3, z4 = z3 * -16069 + z5, z4 * -3196 + z5
        t0, t1, t2, t3 = t0 + z1 + z3, t1 + z2 + z4, t2 + z2 + z3, t3 + z1 + z4
        outs = (t10 + t3, t11 + t2, t12 + t1, t13 + t0, t13 - t0, t12 - t1, t11 - t2, t10 - t3)
        return _np.stack([(o + rnd) >> shift for o in outs], -1)

    def _red4_1d(x, shift, rnd):
        t0 = x[..., 0] << 14
        t2 = x[..., 2] * 15137 - x[..., 6] * 6270
        t10, t12 = t0 + t2, t0 - t2
        z1, z2, z3, z4 = x[..., 7], x[..., 5], x[..., 3], x[..., 1]
        t0 = z1 * -1730 + z2 * 11893 - z3 * 17799 + z4 * 8697
        t2 = z1 * -4176 - z2 * 4926 + z3 * 7373 + z4 * 20995
        return _np.stack([(v + rnd) >> shift for v in (t10 + t2, t12 + t0, t12 - t0, t10 - t2)], -1)

    def _red2_1d(x, shift, rnd):
        t10 = x[..., 0] << 15
        t0 = x[..., 7] * -5906 + x[..., 5] * 6967 + x[..., 3] * -10426 + x[..., 1] * 29692
        return _np.stack([(t10 + t0 + rnd) >> shift, (t10 - t0 + rnd) >> shift], -1)

    # (1-D transform, pass-1 shift, pass-2 shift) per output size, as in jidctint.c / jidctred.c
    _PASSES = {8: (_islow_1d, 11, 18), 4: (_red4_1d, 12, 19), 2: (_red2_1d, 13, 20)}

    def _flush_batch(blocks, qt, out):
        """Run the collected IDCTs of one scan and write their pixels into `out`."""
        target = _np.frombuffer(out, _np.uint8)
        quant = _np.frombuffer(qt, _np.uint16).astype(_np.int64)
        for size, (fn, s1, s2) in _PASSES.items():
            group = [b for b in blocks if b[0] == size]
            if not group:
                continue
            raw = _np.frombuffer(b"".join(b[1] for b in group), _np.uint16).reshape(-1, 64).astype(_np.int64)
            info = _np.array([b[2:] for b in group], _np.int64)  # qo, offset, stride, w, h
            coef = ((raw ^ 0x8000) - 0x8000) * quant[info[:, :1] + _np.arange(64)]
            cols = coef.reshape(-1, 8, 8).transpose(0, 2, 1)  # [block][column][row]
            ws = fn(cols, s1, 1 << (s1 - 1))  # [block][column][output row]
            pix = fn(ws.transpose(0, 2, 1), s2, 1 << (s2 - 1))  # [block][output row][output column]
            pix = _RANGE_LIMIT[pix & 1023]
            r = _np.arange(size)
            index = info[:, 1, None, None] + r[None, :, None] * info[:, 2, None, None] + r[None, None, :]
            keep = (r[None, :, None] < info[:, 4, None, None]) & (r[None, None, :] < info[:, 3, None, None])
            target[index[keep]] = pix[keep]


@micropython.viper
def _scan(data: ptr8, lut: ptr16, plan: ptr16, st: ptr32, coef: ptr16, qt: ptr16, out: ptr8, a: ptr32) -> int:
    """Decode one scan: Huffman-decode every MCU; write the emitted components' pixels to `out`.

    Each block of the MCU has a plan entry (tables, component, output plane and its origin in
    blocks, output block size bs: 1 = DC only, 2/4/8 = reduced or full IDCT). Blocks outside their
    plane are Huffman-decoded and skipped, so a region costs little more than the 1/8 decode. st: [pos, end, ..., DC predictors at 6..9].
    Returns 0 or an error code (see _ERRORS).
    """
    nb = int(plan[0])
    mx = int(plan[1])
    my = int(plan[2])
    ri = int(plan[3])
    pos = int(st[0])
    end = int(st[1])
    acc = 0
    nbits = 0
    fake = 0
    left = ri
    rstn = 0
    mcuy = 0
    while mcuy < my:
        mcux = 0
        while mcux < mx:
            if ri != 0:
                if left == 0:
                    if fake > nbits:
                        return 3
                    nbits = 0
                    acc = 0
                    fake = 0
                    if pos + 1 < end and int(data[pos]) == 0xFF and int(data[pos + 1]) == 0xD0 + rstn:
                        pos += 2
                    else:
                        return 4
                    rstn = (rstn + 1) & 7
                    left = ri
                    st[6] = 0x20000000
                    st[7] = 0x20000000
                    st[8] = 0x20000000
                    st[9] = 0x20000000
                left -= 1
            b = 0
            while b < nb:
                pb = 16 + b * 20
                # --- DC coefficient ---
                if nbits < 16:
                    while nbits <= 24:
                        c = 0
                        if pos < end:
                            c = int(data[pos])
                            if c == 0xFF:
                                if pos + 1 < end and int(data[pos + 1]) == 0:
                                    pos += 2
                                else:
                                    c = 0
                                    fake += 8
                            else:
                                pos += 1
                        else:
                            fake += 8
                        acc = ((acc & 0xFFFFFF) << 8) | c
                        nbits += 8
                t = int(plan[pb])
                e = int(lut[t + ((acc >> (nbits - 9)) & 511)])
                if e != 0:
                    nbits -= e >> 8
                    s = e & 255
                else:
                    ln = 10
                    code = (acc >> (nbits - 10)) & 1023
                    while ln <= 16 and code >= int(lut[t + 512 + ln]):
                        ln += 1
                        if ln > 16:  # no code that long: stop before a negative shift (an error on CPython)
                            break
                        code = (acc >> (nbits - ln)) & ((1 << ln) - 1)
                    if ln > 16:
                        return 1
                    s = int(lut[t + 563 + int(lut[t + 546 + ln]) + code - int(lut[t + 529 + ln])])
                    nbits -= ln
                v = 0
                if s != 0:
                    if s > 11:
                        return 2
                    if nbits < s:
                        while nbits <= 24:
                            c = 0
                            if pos < end:
                                c = int(data[pos])
                                if c == 0xFF:
                                    if pos + 1 < end and int(data[pos + 1]) == 0:
                                        pos += 2
                                    else:
                                        c = 0
                                        fake += 8
                                else:
                                    pos += 1
                            else:
                                fake += 8
                            acc = ((acc & 0xFFFFFF) << 8) | c
                            nbits += 8
                    v = (acc >> (nbits - s)) & ((1 << s) - 1)
                    nbits -= s
                    if v < (1 << (s - 1)):
                        v -= (1 << s) - 1
                ci = 6 + int(plan[pb + 2])
                dc = int(st[ci]) - 0x20000000 + v
                st[ci] = dc + 0x20000000
                # Where this block's pixels go: block (bx, by) of its component's output plane,
                # whose origin is block (plan[pb + 15], plan[pb + 16]); wl x hl pixels of it.
                bs = int(plan[pb + 14])  # output block size of this component: 1, 2, 4 or 8
                wl = 0
                hl = 0
                bx = 0
                by = 0
                if int(plan[pb + 3]) != 0:
                    bx = mcux * int(plan[pb + 7]) + int(plan[pb + 4]) - int(plan[pb + 15])
                    by = mcuy * int(plan[pb + 8]) + int(plan[pb + 5]) - int(plan[pb + 16])
                    if bx >= 0 and by >= 0:
                        wl = int(plan[pb + 11]) - bx * bs
                        hl = int(plan[pb + 12]) - by * bs
                keep = wl > 0 and hl > 0 and bs > 1
                if keep:
                    i = 1
                    while i < 64:
                        coef[i] = 0
                        i += 1
                    coef[0] = dc & 0xFFFF
                anyac = 0
                # --- AC coefficients (stored only when an IDCT will use them) ---
                t = int(plan[pb + 1])
                k = 1
                while k < 64:
                    if nbits < 16:
                        while nbits <= 24:
                            c = 0
                            if pos < end:
                                c = int(data[pos])
                                if c == 0xFF:
                                    if pos + 1 < end and int(data[pos + 1]) == 0:
                                        pos += 2
                                    else:
                                        c = 0
                                        fake += 8
                                else:
                                    pos += 1
                            else:
                                fake += 8
                            acc = ((acc & 0xFFFFFF) << 8) | c
                            nbits += 8
                    e = int(lut[t + ((acc >> (nbits - 9)) & 511)])
                    if e != 0:
                        nbits -= e >> 8
                        rs = e & 255
                    else:
                        ln = 10
                        code = (acc >> (nbits - 10)) & 1023
                        while ln <= 16 and code >= int(lut[t + 512 + ln]):
                            ln += 1
                            if ln > 16:  # no code that long: stop before a negative shift (an error on CPython)
                                break
                            code = (acc >> (nbits - ln)) & ((1 << ln) - 1)
                        if ln > 16:
                            return 1
                        rs = int(lut[t + 563 + int(lut[t + 546 + ln]) + code - int(lut[t + 529 + ln])])
                        nbits -= ln
                    s = rs & 15
                    if s == 0:
                        if rs != 0xF0:
                            break  # end of block
                        k += 16
                        continue
                    k += rs >> 4
                    if k > 63:
                        return 2
                    if nbits < s:
                        while nbits <= 24:
                            c = 0
                            if pos < end:
                                c = int(data[pos])
                                if c == 0xFF:
                                    if pos + 1 < end and int(data[pos + 1]) == 0:
                                        pos += 2
                                    else:
                                        c = 0
                                        fake += 8
                                else:
                                    pos += 1
                            else:
                                fake += 8
                            acc = ((acc & 0xFFFFFF) << 8) | c
                            nbits += 8
                    if keep:
                        v = (acc >> (nbits - s)) & ((1 << s) - 1)
                        if v < (1 << (s - 1)):
                            v -= (1 << s) - 1
                        coef[int(plan[216 + k])] = v & 0xFFFF
                        anyac = 1
                    nbits -= s
                    k += 1
                if k > 64:
                    return 2
                # --- output ---
                if wl > 0 and hl > 0:
                    if wl > bs:
                        wl = bs
                    if hl > bs:
                        hl = bs
                    o = (int(plan[pb + 9]) << 16) + int(plan[pb + 10]) + by * bs * int(plan[pb + 13]) + bx * bs
                    qo = int(plan[pb + 6])
                    if anyac == 0:
                        # DC only: every IDCT size gives the block mean, as jpeg_idct_1x1 does.
                        v = ((dc * int(qt[qo]) + 4) >> 3) & 1023
                        if v < 128:
                            v += 128
                        elif v < 512:
                            v = 255
                        elif v < 896:
                            v = 0
                        else:
                            v -= 896
                        y = 0
                        while y < hl:
                            x = 0
                            while x < wl:
                                out[o + x] = v
                                x += 1
                            o += int(plan[pb + 13])
                            y += 1
                    else:
                        a[0] = qo
                        a[1] = o
                        a[2] = int(plan[pb + 13])
                        a[3] = wl
                        a[4] = hl
                        if bs == 8:
                            _idct8(coef, qt, out, a)
                        elif bs == 4:
                            _idct4(coef, qt, out, a)
                        else:
                            _idct2(coef, qt, out, a)
                b += 1
            mcux += 1
        mcuy += 1
    if fake > nbits:
        return 3
    st[0] = pos
    return 0


@micropython.viper
def _upsample(src: ptr8, dst: ptr8, p: ptr32):
    """Chroma plane (sw x sh) -> (sw*hx x sh*vx), as libjpeg's upsampler does it.

    p = [sw, sh, hx, vx, fancy]. fancy: libjpeg's triangle filters for 2x1 (h2v1), 1x2 (h1v2) and
    2x2 (h2v2) with its rounding biases and edge rules; otherwise pixel replication.
    """
    sw = int(p[0])
    sh = int(p[1])
    hx = int(p[2])
    vx = int(p[3])
    fancy = int(p[4])
    dw = sw * hx
    o = 0
    y = 0
    while y < sh:
        r0 = y * sw
        v = 0
        while v < vx:
            if fancy != 0 and vx == 2:
                # nearer row is y, the further one above (v == 0) or below (v == 1), clamped
                if v == 0:
                    r1 = (y - 1) * sw if y > 0 else r0
                else:
                    r1 = (y + 1) * sw if y + 1 < sh else r0
                if hx == 2:
                    if sw == 1:
                        c = int(src[r0]) * 3 + int(src[r1])
                        dst[o] = (c * 4 + 8) >> 4
                        dst[o + 1] = (c * 4 + 7) >> 4
                    else:
                        this = int(src[r0]) * 3 + int(src[r1])
                        nxt = int(src[r0 + 1]) * 3 + int(src[r1 + 1])
                        dst[o] = (this * 4 + 8) >> 4
                        dst[o + 1] = (this * 3 + nxt + 7) >> 4
                        last = this
                        this = nxt
                        x = 2
                        while x < sw:
                            nxt = int(src[r0 + x]) * 3 + int(src[r1 + x])
                            dst[o + 2 * x - 2] = (this * 3 + last + 8) >> 4
                            dst[o + 2 * x - 1] = (this * 3 + nxt + 7) >> 4
                            last = this
                            this = nxt
                            x += 1
                        dst[o + 2 * sw - 2] = (this * 3 + last + 8) >> 4
                        dst[o + 2 * sw - 1] = (this * 4 + 7) >> 4
                else:
                    bias = 1 if v == 0 else 2
                    x = 0
                    while x < sw:
                        dst[o + x] = (int(src[r0 + x]) * 3 + int(src[r1 + x]) + bias) >> 2
                        x += 1
            elif fancy != 0 and hx == 2 and vx == 1:
                if sw == 1:
                    dst[o] = src[r0]
                    dst[o + 1] = src[r0]
                else:
                    val = int(src[r0])
                    dst[o] = val
                    dst[o + 1] = (val * 3 + int(src[r0 + 1]) + 2) >> 2
                    x = 1
                    while x < sw - 1:
                        val = int(src[r0 + x]) * 3
                        dst[o + 2 * x] = (val + int(src[r0 + x - 1]) + 1) >> 2
                        dst[o + 2 * x + 1] = (val + int(src[r0 + x + 1]) + 2) >> 2
                        x += 1
                    val = int(src[r0 + sw - 1])
                    dst[o + 2 * sw - 2] = (val * 3 + int(src[r0 + sw - 2]) + 1) >> 2
                    dst[o + 2 * sw - 1] = val
            else:
                x = 0
                while x < dw:
                    dst[o + x] = src[r0 + x // hx]
                    x += 1
            o += dw
            v += 1
        y += 1


@micropython.viper
def _ycc_to_rgb(yp: ptr8, cb: ptr8, cr: ptr8, dst: ptr8, p: ptr32):
    """libjpeg's YCbCr -> RGB (16-bit fixed point, its rounding) for a w x h image.

    p = [w, h, luma stride, Cb stride, Cr stride]; dst is w*h*3 bytes, RGB interleaved.
    """
    w = int(p[0])
    h = int(p[1])
    ys = int(p[2])
    bs = int(p[3])
    rs = int(p[4])
    o = 0
    y = 0
    while y < h:
        x = 0
        while x < w:
            lum = int(yp[y * ys + x])
            b = int(cb[y * bs + x]) - 128
            r = int(cr[y * rs + x]) - 128
            v = lum + ((91881 * r + 32768) >> 16)
            dst[o] = 0 if v < 0 else (255 if v > 255 else v)
            v = lum + ((-22554 * b - 46802 * r + 32768) >> 16)
            dst[o + 1] = 0 if v < 0 else (255 if v > 255 else v)
            v = lum + ((116130 * b + 32768) >> 16)
            dst[o + 2] = 0 if v < 0 else (255 if v > 255 else v)
            o += 3
            x += 1
        y += 1


def _plain():
    pass


def _kind(kernel):
    """How `kernel` runs: "viper" (MicroPython compiled it to machine code) or "pure" (bytecode, CPython)."""
    return "pure" if type(kernel) is type(_plain) else "viper"


# Which kernels decode (and preprocess): "c" (the firmware's C module), "viper" or "pure" (the
# functions above, which MicroPython compiles as viper unless its build or a frozen copy without
# the decorators says otherwise). The fastest one here by default; tests and benchmarks set it.
KERNELS = "c" if _camlytics is not None else _kind(_scan)


def kernel(name, own):
    """The kernel to call in place of `own` (this package's): the C module's `name` when KERNELS is "c"."""
    if KERNELS == "c":
        if _camlytics is None:
            raise ValueError("KERNELS = 'c' needs the camlytics firmware's C module (_camlytics version %d)"
                             % C_VERSION)
        return getattr(_camlytics, name)
    if KERNELS != _kind(own):
        raise ValueError("KERNELS = %r is not available here: this interpreter runs %r kernels%s" % (
            KERNELS, _kind(own), " or 'c'" if _camlytics is not None else ""))
    return own


@micropython.viper
def _next_marker(data: ptr8, pos: int, end: int) -> int:
    """Position of the next marker (0xFF followed by neither 0x00 nor RSTn nor 0xFF), or `end`."""
    while pos + 1 < end:
        if int(data[pos]) == 0xFF:
            c = int(data[pos + 1])
            if c != 0 and c != 0xFF and (c < 0xD0 or c > 0xD7):
                return pos
        pos += 1
    return end


# --------------------------------------------------------------------------------------------
# Headers (plain Python: runs once per image)
# --------------------------------------------------------------------------------------------


def _u16(data, pos):
    return (data[pos] << 8) | data[pos + 1]


# Built tables by DHT content: a camera sends the same tables in every snapshot, and building one
# costs ~0.4 ms of MicroPython bytecode per frame.
_HUFFMAN_CACHE = {}


def _build_huffman(lut, slot, counts, values):
    """Fill table `slot` of `lut` from a DHT's 16 code-length counts and its values."""
    key = bytes(counts) + bytes(values)
    table = _HUFFMAN_CACHE.get(key)
    if table is None:
        table = _huffman_table(counts, values)
        if len(_HUFFMAN_CACHE) >= 16:
            _HUFFMAN_CACHE.clear()
        _HUFFMAN_CACHE[key] = table
    base = slot * _TSZ
    lut[base:base + _TSZ] = table


def _huffman_table(counts, values):
    """One table slot (see _LOOK.._VALS) for a DHT's code-length counts and values."""
    lut = array.array("H", bytes(2 * _TSZ))
    base = 0
    code = 0
    k = 0
    for ln in range(1, 17):
        n = counts[ln - 1]
        lut[base + _MINC + ln] = code & 0xFFFF
        lut[base + _VALP + ln] = k
        for _ in range(n):
            if code + 1 >= (1 << ln):  # before the lookup fill: an over-full table would write past its slot
                raise JpegError("invalid Huffman table (too many codes of length %d)" % ln)
            if ln <= _LOOK:
                shift = _LOOK - ln
                entry = (ln << 8) | values[k]
                first = code << shift
                for j in range(first, first + (1 << shift)):
                    lut[base + j] = entry
            code += 1
            k += 1
        # codes < maxcode + 1 have this length; 0 when the length has no codes
        lut[base + _MAXC + ln] = code if n else 0
        code <<= 1
    for i in range(k):
        lut[base + _VALS + i] = values[i]
    return lut


class _Frame:
    """What the headers say: size, components, tables, restart interval."""

    def __init__(self):
        self.width = 0
        self.height = 0
        self.comps = []  # [id, h, v, tq]
        self.hmax = 1
        self.vmax = 1
        self.qt = array.array("H", bytes(2 * 4 * 64))
        self.qdefined = [False] * 4
        self.lut = array.array("H", bytes(2 * 8 * _TSZ))
        self.hdefined = [False] * 8
        self.restart = 0


def _read_dqt(f, data, pos, end):
    while pos < end:
        pq = data[pos] >> 4
        tq = data[pos] & 15
        pos += 1
        if tq > 3 or pq > 1:
            raise JpegError("invalid quantization table (precision %d, id %d)" % (pq, tq))
        n = 128 if pq else 64
        if pos + n > end:
            raise JpegError("truncated quantization table")
        for k in range(64):
            q = _u16(data, pos + 2 * k) if pq else data[pos + k]
            if q == 0:
                raise JpegError("invalid quantization table (zero entry)")
            f.qt[tq * 64 + ZIGZAG[k]] = q
        f.qdefined[tq] = True
        pos += n


def _read_dht(f, data, pos, end):
    while pos < end:
        if pos + 17 > end:
            raise JpegError("truncated Huffman table")
        tc = data[pos] >> 4
        th = data[pos] & 15
        if tc > 1 or th > 3:
            raise JpegError("invalid Huffman table (class %d, id %d)" % (tc, th))
        counts = data[pos + 1:pos + 17]
        total = sum(counts)
        pos += 17
        if total > 256 or pos + total > end:
            raise JpegError("invalid or truncated Huffman table (%d values)" % total)
        _build_huffman(f.lut, tc * 4 + th, counts, data[pos:pos + total])
        f.hdefined[tc * 4 + th] = True
        pos += total


def _read_sof(f, data, pos, end, marker, max_pixels):
    if end - pos < 6:
        raise JpegError("truncated frame header")
    precision = data[pos]
    f.height = _u16(data, pos + 1)
    f.width = _u16(data, pos + 3)
    n = data[pos + 5]
    if precision != 8:
        raise JpegError("%d-bit JPEG is not supported (8-bit only)" % precision)
    if f.height == 0:
        raise JpegError("JPEG with height 0 (DNL) is not supported")
    if f.width == 0 or f.width > MAX_SIDE or f.height > MAX_SIDE or f.width * f.height > max_pixels:
        raise JpegError("image size %dx%d is out of range (max %d pixels)" % (f.width, f.height, max_pixels))
    if n not in (1, 3):
        raise JpegError("JPEG with %d components is not supported (1 or 3)" % n)
    if end - pos != 6 + 3 * n:
        raise JpegError("invalid frame header length")
    for i in range(n):
        cid = data[pos + 6 + 3 * i]
        h = data[pos + 7 + 3 * i] >> 4
        v = data[pos + 7 + 3 * i] & 15
        tq = data[pos + 8 + 3 * i]
        if not (1 <= h <= 4 and 1 <= v <= 4) or tq > 3:
            raise JpegError("invalid component %d (sampling %dx%d, table %d)" % (cid, h, v, tq))
        f.comps.append([cid, h, v, tq])
    f.hmax = max(c[1] for c in f.comps)
    f.vmax = max(c[2] for c in f.comps)
    if f.comps[0][1] != f.hmax or f.comps[0][2] != f.vmax:
        raise JpegError("JPEG whose first component is subsampled is not supported")
    if n == 1:  # a single-component image has one block per MCU whatever its factors say
        f.comps[0][1] = f.comps[0][2] = f.hmax = f.vmax = 1
    if sum(c[1] * c[2] for c in f.comps) > 10:
        raise JpegError("invalid sampling factors (more than 10 blocks per MCU)")


_UNSUPPORTED = {
    0xC2: "progressive JPEG (SOF2) is not supported; save baseline (progressive=False)",
    0xC3: "lossless JPEG (SOF3) is not supported",
    0xC9: "arithmetic-coded JPEG is not supported",
    0xCA: "arithmetic-coded progressive JPEG is not supported",
    0xCB: "arithmetic-coded lossless JPEG is not supported",
}


def _ceil_div(a, b):
    return -(-a // b)


def _plane_size(f, comp, block):
    """(width, height) of a component's plane decoded with `block`-pixel IDCT output (libjpeg's
    downsampled_width/height)."""
    return (_ceil_div(f.width * comp[1] * block, f.hmax * 8),
            _ceil_div(f.height * comp[2] * block, f.vmax * 8))


def _decode(data, scale_denom, targets, max_pixels):
    """Parse and decode `data` -> (frame, out).

    `targets(frame)` is called once the frame header is known and returns ({component index:
    (offset, stride, width, height, block)}, out): where each wanted component's plane goes in
    the `out` bytearray and with which IDCT output size; other components are only skipped.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise JpegError("expected JPEG bytes, got %s" % type(data).__name__)
    if scale_denom not in (1, 2, 4, 8):
        raise JpegError("scale_denom must be 1, 2, 4 or 8, got %r" % (scale_denom,))
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise JpegError("not a JPEG (no SOI marker)")
    f = _Frame()
    out = None
    plan_targets = None
    st = array.array("i", [0] * 16)
    a = array.array("i", [0] * 80)  # IDCT arguments and workspace
    coef = array.array("H", bytes(128))
    plan = array.array("H", bytes(2 * _PLAN_SIZE))
    for k in range(64):
        plan[_PZZ + k] = ZIGZAG[k]
    scanned = set()
    scan = kernel("jpeg_scan", _scan)
    pos = 2
    while True:
        if pos + 2 > n:
            raise JpegError("truncated JPEG (no EOI marker)")
        if data[pos] != 0xFF:
            raise JpegError("corrupt JPEG: expected a marker at byte %d" % pos)
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            break
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            raise JpegError("corrupt JPEG: unexpected marker 0xFF%02X at byte %d" % (marker, pos))
        if pos + 4 > n:
            raise JpegError("truncated JPEG at byte %d" % pos)
        length = _u16(data, pos + 2)
        seg = pos + 4
        end = pos + 2 + length
        if length < 2 or end > n:
            raise JpegError("truncated or corrupt JPEG segment 0xFF%02X at byte %d" % (marker, pos))
        if marker == 0xDB:
            _read_dqt(f, data, seg, end)
        elif marker == 0xC4:
            _read_dht(f, data, seg, end)
        elif marker == 0xDD:
            if length != 4:
                raise JpegError("invalid restart interval segment")
            f.restart = _u16(data, seg)
        elif marker in (0xC0, 0xC1):
            if f.comps:
                raise JpegError("corrupt JPEG: more than one frame header")
            _read_sof(f, data, seg, end, marker, max_pixels)
            # Every block costs at least 2 bits (a DC code and an end of block): a header claiming
            # more blocks than the file can hold is corrupt; refuse it before allocating.
            if _ceil_div(f.width, 8) * _ceil_div(f.height, 8) > 4 * n:
                raise JpegError("corrupt JPEG: %dx%d pixels cannot fit in %d bytes" % (f.width, f.height, n))
            try:
                plan_targets, out = targets(f)
            except MemoryError:
                raise JpegError("image %dx%d at 1/%d does not fit in memory" % (
                    f.width, f.height, scale_denom)) from None
        elif marker in _UNSUPPORTED or 0xC5 <= marker <= 0xCF and marker not in (0xC8, 0xCC):
            raise JpegError(_UNSUPPORTED.get(marker, "hierarchical/differential JPEG (SOF%d) is not supported" % (marker - 0xC0)))
        elif marker == 0xDA:
            if not f.comps:
                raise JpegError("corrupt JPEG: scan before frame header")
            end = _start_scan(f, data, seg, end, plan, plan_targets, scale_denom, scanned)
            st[0] = end
            st[1] = n
            for i in range(6, 10):
                st[i] = _BIAS
            if USE_NUMPY and _np is not None and scan is _scan:
                _batch.blocks = []
                try:
                    err = _scan(data, f.lut, plan, st, coef, f.qt, out, a)
                    if not err:
                        _flush_batch(_batch.blocks, f.qt, out)
                finally:
                    _batch.blocks = None
            else:
                err = scan(data, f.lut, plan, st, coef, f.qt, out, a)
            if err:
                raise JpegError(_ERRORS.get(err, "corrupt JPEG data (code %d)" % err))
            end = _next_marker(data, st[0], n)
        pos = end
    if not f.comps:
        raise JpegError("JPEG without a frame header")
    missing = [i for i in plan_targets if i not in scanned]
    if missing:
        raise JpegError("truncated JPEG: component %d has no scan" % f.comps[missing[0]][0])
    return f, out


def _start_scan(f, data, pos, end, plan, plan_targets, scale_denom, scanned):
    """Fill `plan` for the scan whose header is data[pos:end]; return where its data starts."""
    ns = data[pos]
    if not 1 <= ns <= 4 or end - pos != 4 + 2 * ns:
        raise JpegError("invalid scan header")
    if data[end - 3] != 0 or data[end - 2] != 63 or data[end - 1] != 0:
        raise JpegError("invalid scan header for a sequential JPEG (Ss, Se, Ah/Al)")
    comps = []
    for i in range(ns):
        cid = data[pos + 1 + 2 * i]
        tables = data[pos + 2 + 2 * i]
        idx = [j for j, c in enumerate(f.comps) if c[0] == cid]
        if not idx:
            raise JpegError("scan refers to unknown component %d" % cid)
        td, ta = tables >> 4, tables & 15
        if td > 3 or ta > 3 or not f.hdefined[td] or not f.hdefined[4 + ta]:
            raise JpegError("scan of component %d uses an undefined Huffman table" % cid)
        comps.append((idx[0], td, ta))
    if ns == 1:
        ci = comps[0][0]
        c = f.comps[ci]
        mx = _ceil_div(_ceil_div(f.width * c[1], f.hmax), 8)
        my = _ceil_div(_ceil_div(f.height * c[2], f.vmax), 8)
        layout = [(ci, comps[0][1], comps[0][2], 0, 0, 1, 1)]
    else:
        mx = _ceil_div(f.width, 8 * f.hmax)
        my = _ceil_div(f.height, 8 * f.vmax)
        layout = []
        for ci, td, ta in comps:
            c = f.comps[ci]
            for by in range(c[2]):
                for bx in range(c[1]):
                    layout.append((ci, td, ta, bx, by, c[1], c[2]))
        if len(layout) > 10:
            raise JpegError("invalid scan: more than 10 blocks per MCU")
    for ci, td, ta, bx, by, h, v in layout:
        if not f.qdefined[f.comps[ci][3]]:
            raise JpegError("component %d uses an undefined quantization table" % f.comps[ci][0])
    plan[0] = len(layout)
    plan[1] = mx
    plan[2] = my
    plan[3] = f.restart
    for b, (ci, td, ta, bx, by, h, v) in enumerate(layout):
        p = _PB + _PBLOCK * b
        target = plan_targets.get(ci)
        plan[p] = td * _TSZ
        plan[p + 1] = (4 + ta) * _TSZ
        plan[p + 2] = ci
        plan[p + 3] = 1 if target is not None else 0
        plan[p + 4] = bx
        plan[p + 5] = by
        plan[p + 6] = f.comps[ci][3] * 64
        plan[p + 7] = h
        plan[p + 8] = v
        if target is not None:
            off, stride, w, hgt, blk, ox, oy = target
            plan[p + 14] = blk
            plan[p + 15] = ox
            plan[p + 16] = oy
            plan[p + 9] = off >> 16
            plan[p + 10] = off & 0xFFFF
            plan[p + 11] = w
            plan[p + 12] = hgt
            plan[p + 13] = stride
        scanned.add(ci)
    return end


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def info(jpeg_bytes):
    """(width, height, components) from the frame header, without decoding."""
    data = jpeg_bytes
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise JpegError("not a JPEG (no SOI marker)")
    pos = 2
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise JpegError("corrupt JPEG: expected a marker at byte %d" % pos)
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length = _u16(data, pos + 2)
        if length < 2 or pos + 2 + length > n:
            break
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if length < 8:
                break
            return _u16(data, pos + 7), _u16(data, pos + 5), data[pos + 9]
        if marker == 0xDA or marker == 0xD9:
            break
        pos += 2 + length
    raise JpegError("truncated JPEG: no frame header")


def decode_luma(jpeg_bytes, scale_denom=1, max_pixels=MAX_PIXELS):
    """Decode the luma (Y) plane at 1/scale_denom size -> (width, height, bytearray of width*height).

    The size is (ceil(W / d), ceil(H / d)); pixels equal libjpeg's scaled decode (Pillow's
    `draft("L", ...)`). At d = 8 each pixel is a block's DC value, the AC coefficients are only
    skipped. A grey JPEG gives its only plane.
    """
    size = [0, 0]

    def targets(f):
        block = 8 // scale_denom
        w, h = _plane_size(f, f.comps[0], block)
        size[0], size[1] = w, h
        return {0: (0, w, w, h, block, 0, 0)}, bytearray(w * h)

    f, out = _decode(jpeg_bytes, scale_denom, targets, max_pixels)
    return size[0], size[1], out


def decode_luma_region(jpeg_bytes, scale_denom, box, max_pixels=MAX_PIXELS):
    """Decode only the part of the luma plane at 1/scale_denom that covers `box` (x0, y0, x1, y1
    in pixels at that scale) -> (x, y, width, height, bytearray): the pixels of the block-aligned
    region [x, x + width) x [y, y + height) of the plane (clipped to it), equal to decode_luma's.

    Blocks outside the region are Huffman-decoded but get no IDCT and no memory: a door ROI at
    1/2 costs little more than the whole picture at 1/8.
    """
    region = [0, 0, 0, 0]

    def targets(f):
        block = 8 // scale_denom
        fw, fh = _plane_size(f, f.comps[0], block)
        x0, y0, x1, y1 = (int(v) for v in box)
        x1, y1 = min(x1, fw), min(y1, fh)
        if not (0 <= x0 < x1 and 0 <= y0 < y1):
            raise JpegError("region %r is outside the %dx%d plane at 1/%d" % (tuple(box), fw, fh, scale_denom))
        ox, oy = x0 // block, y0 // block
        w, h = x1 - ox * block, y1 - oy * block
        region[:] = [ox * block, oy * block, w, h]
        return {0: (0, w, w, h, block, ox, oy)}, bytearray(w * h)

    f, out = _decode(jpeg_bytes, scale_denom, targets, max_pixels)
    return region[0], region[1], region[2], region[3], out


def _idct_sizes(f, block):
    """Per-component IDCT output size, as libjpeg chooses it: chroma of a subsampled image is
    decoded with a larger IDCT where that replaces upsampling (e.g. 4:2:0 at 1/2 -> 8x8 chroma)."""
    sizes = []
    for c in f.comps:
        ssize = block
        while ssize < 8 and (f.hmax * block) % (c[1] * ssize * 2) == 0 and (f.vmax * block) % (c[2] * ssize * 2) == 0:
            ssize *= 2
        sizes.append(ssize)
    return sizes


def decode_rgb(jpeg_bytes, scale_denom=1, max_pixels=MAX_PIXELS):
    """Decode to RGB at 1/scale_denom size -> (width, height, bytearray of width*height*3, RGB).

    Follows libjpeg's pipeline (per-component IDCT sizes, fancy upsampling, fixed-point colour
    conversion), i.e. Pillow's `draft("RGB", ...)` decode. A grey JPEG gives R = G = B = Y.
    """
    layout = {}

    def targets(f):
        block = 8 // scale_denom
        sizes = _idct_sizes(f, block) if len(f.comps) == 3 else [block]
        planes = {}
        off = 0
        for ci, comp in enumerate(f.comps):
            w, h = _plane_size(f, comp, sizes[ci])
            planes[ci] = (off, w, w, h, sizes[ci], 0, 0)
            off += w * h
        layout["planes"] = planes
        layout["block"] = block
        return planes, bytearray(off)

    f, out = _decode(jpeg_bytes, scale_denom, targets, max_pixels)
    planes = layout["planes"]
    yoff, w, _, h = planes[0][:4]
    if len(f.comps) == 1:
        rgb = bytearray(w * h * 3)
        for i in range(w * h):  # grey -> RGB: small and rare, plain Python is enough
            v = out[i]
            rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = v
        return w, h, rgb
    try:
        return _to_rgb(f, out, layout["planes"], layout["block"])
    except MemoryError:
        raise JpegError("image %dx%d at 1/%d does not fit in memory" % (f.width, f.height, scale_denom)) from None


def _to_rgb(f, out, planes, block):
    """Upsample the chroma planes of `out` and convert to interleaved RGB -> (w, h, bytearray)."""
    yoff, w, _, h = planes[0][:4]
    luma = memoryview(out)[yoff:yoff + w * h]
    chroma = []
    strides = [w]
    for ci in (1, 2):
        off, cw, _, ch, ssize = planes[ci][:5]
        comp = f.comps[ci]
        hx = f.hmax * block // (comp[1] * ssize)
        vx = f.vmax * block // (comp[2] * ssize)
        src = memoryview(out)[off:off + cw * ch]
        if hx == 1 and vx == 1:
            chroma.append(src)
            strides.append(cw)
            continue
        up = bytearray(cw * hx * ch * vx)
        # libjpeg: fancy (triangle) upsampling for 2x1, 1x2 and 2x2 unless decoding at 1/8 or
        # the plane is at most 2 columns wide (1x2 has no width condition); else replication.
        fancy = block > 1 and ((hx, vx) == (1, 2) or ((hx, vx) in ((2, 1), (2, 2)) and cw > 2))
        kernel("jpeg_upsample", _upsample)(src, up, array.array("i", (cw, ch, hx, vx, 1 if fancy else 0)))
        chroma.append(up)
        strides.append(cw * hx)
    rgb = bytearray(w * h * 3)
    kernel("jpeg_ycc_to_rgb", _ycc_to_rgb)(luma, chroma[0], chroma[1], rgb, array.array("i", [w, h] + strides))
    return w, h, rgb
