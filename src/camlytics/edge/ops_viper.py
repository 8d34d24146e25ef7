"""int8 kernels as `@micropython.viper` pointer loops (MicroPython only; same convention as ops.py).

Differences from the plain loops, and why:
- Weights are stored offset by 128 (`wu = w + 128`, one unsigned byte) because `ptr8` reads
  unsigned bytes; `sum(x * w) = sum(x * wu) - 128 * sum(x)`, and `sum(x)` over a window is shared
  by all output channels of a full convolution, so the hot loop is a plain unsigned dot product.
- `ptr32` reads zero-extend on 64-bit machines: `acc0` (the only value that may be negative) is
  sign-extended with `v - ((v & bit31) << 1)`, which is a no-op on a 32-bit camera.
- Every sum fits 32 bits by the spec's requantization bound (docs/int8.md section 3), so wrapping
  machine words on a 32-bit ARM give the same bits as CPython's unbounded ints.
"""

import micropython

from camlytics.edge.ops import params  # noqa: F401  (the parameter block is the same as ops.py's)


def prepare_weights(weights):
    """int8 weight bytes -> bytearray of `w + 128` (the unsigned form the kernels read)."""
    out = bytearray(weights)
    _xor80(out, len(out))
    return out


@micropython.viper
def _xor80(buf: ptr8, n: int):
    for i in range(n):
        buf[i] = buf[i] ^ 0x80


@micropython.viper
def conv2d(x: ptr8, w: ptr8, y: ptr8, p: ptr32):
    """Full convolution (groups == 1) on a padded input; dense is the 1x1 case."""
    oh = p[0]
    ow = p[1]
    oc_n = p[2]
    kh = p[3]
    span = p[4] * p[5]  # one window row: KW * C contiguous bytes
    row = p[6]
    sy = p[7]
    sx = p[8]
    yrow = p[10]
    lo = p[12]
    hi = p[13]
    yz = p[14]
    hb = p[15]
    span4 = span - (span & 3)
    oy = 0
    while oy < oh:
        yp = p[9] + oy * yrow
        xb = oy * sy
        ox = 0
        while ox < ow:
            # sum(x) over the window, shared by every output channel
            tot = 0
            ky = 0
            while ky < kh:
                r = xb + ky * row
                for i in range(r, r + span):
                    tot += x[i]
                ky += 1
            corr = tot << 7
            wi = 0
            t = 20
            oc = 0
            while oc < oc_n:
                acc = 0
                ky = 0
                while ky < kh:
                    r = xb + ky * row
                    e4 = r + span4
                    e = r + span
                    while r < e4:
                        acc += x[r] * w[wi] + x[r + 1] * w[wi + 1] + x[r + 2] * w[wi + 2] + x[r + 3] * w[wi + 3]
                        r += 4
                        wi += 4
                    while r < e:
                        acc += x[r] * w[wi]
                        r += 1
                        wi += 1
                    ky += 1
                a0 = p[t]
                acc += a0 - ((a0 & hb) << 1) - corr
                v = ((acc * p[t + 1] + p[t + 2]) >> p[t + 3]) + yz
                if v < lo:
                    v = lo
                if v > hi:
                    v = hi
                y[yp + oc] = v
                t += 4
                oc += 1
            yp += oc_n
            xb += sx
            ox += 1
        oy += 1


@micropython.viper
def depthwise(x: ptr8, w: ptr8, y: ptr8, p: ptr32):
    """Depthwise convolution (groups == C == OC) on a padded input."""
    oh = p[0]
    ow = p[1]
    c_n = p[5]
    kh = p[3]
    kw = p[4]
    row = p[6]
    sy = p[7]
    sx = p[8]
    yrow = p[10]
    lo = p[12]
    hi = p[13]
    yz = p[14]
    hb = p[15]
    oy = 0
    while oy < oh:
        yp = p[9] + oy * yrow
        xb = oy * sy
        ox = 0
        while ox < ow:
            wi = 0
            t = 20
            c = 0
            while c < c_n:
                acc = 0
                tot = 0
                ky = 0
                while ky < kh:
                    r = xb + ky * row + c
                    e = r + kw * c_n
                    while r < e:
                        v = x[r]
                        acc += v * w[wi]
                        tot += v
                        r += c_n
                        wi += 1
                    ky += 1
                a0 = p[t]
                acc += a0 - ((a0 & hb) << 1) - (tot << 7)
                v = ((acc * p[t + 1] + p[t + 2]) >> p[t + 3]) + yz
                if v < lo:
                    v = lo
                if v > hi:
                    v = hi
                y[yp + c] = v
                t += 4
                c += 1
            yp += c_n
            xb += sx
            ox += 1
        oy += 1


@micropython.viper
def gap(x: ptr8, y: ptr8, p: ptr32):
    """Global average pool over an unpadded `[H][W][C]` input."""
    c_n = p[5]
    end = p[3] * p[4] * c_n
    a0 = p[20]
    a0 = a0 - ((a0 & p[15]) << 1)
    m = p[21]
    rnd = p[22]
    s = p[23]
    lo = p[12]
    hi = p[13]
    yz = p[14]
    yb = p[9]
    c = 0
    while c < c_n:
        acc = a0
        i = c
        while i < end:
            acc += x[i]
            i += c_n
        v = ((acc * m + rnd) >> s) + yz
        if v < lo:
            v = lo
        if v > hi:
            v = hi
        y[yb + c] = v
        c += 1
