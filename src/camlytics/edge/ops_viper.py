"""int8 kernels as `@micropython.viper` pointer loops (MicroPython only; same convention and
parameter block as ops.py, whose indices appear here as literal numbers: a global name would
be a Python object lookup inside the loops).

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


def prepare_weights(layer):
    """The layer's int8 weights as `w + 128` bytes, followed by a scratch window of one channel's taps."""
    weights = layer.weights
    out = bytearray(weights) + bytearray(len(weights) // layer.out_shape[2])
    _xor80(out, len(weights))
    return out


@micropython.viper
def _xor80(buf: ptr8, n: int):
    for i in range(n):
        buf[i] = buf[i] ^ 0x80


def conv2d(x, w, y, p):
    """Full convolution (groups == 1) on a padded input; dense is the 1x1 case."""
    if p[3] > 1 and (p[4] * p[5]) & 3:
        _conv2d_gather(x, w, y, p)  # short window rows (a first layer's C = 1 or 3): gather them
    else:
        _conv2d_rows(x, w, y, p)


@micropython.viper
def _conv2d_rows(x: ptr8, w: ptr8, y: ptr8, p: ptr32):
    # Dot products straight along the KH window rows of KW * C contiguous bytes each.
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
def _conv2d_gather(x: ptr8, w: ptr8, y: ptr8, p: ptr32):
    # Copies each window into the scratch after the weights, then one contiguous dot product per
    # output channel: better when window rows are too short to unroll.
    oh = p[0]
    ow = p[1]
    oc_n = p[2]
    kh = p[3]
    span = p[4] * p[5]
    k = kh * span
    k4 = k - (k & 3)
    row = p[6]
    sy = p[7]
    sx = p[8]
    yrow = p[10]
    lo = p[12]
    hi = p[13]
    yz = p[14]
    hb = p[15]
    col = ptr8(uint(w) + uint(oc_n * k))
    oy = 0
    while oy < oh:
        yp = p[9] + oy * yrow
        xb = oy * sy
        ox = 0
        while ox < ow:
            tot = 0
            j = 0
            ky = 0
            while ky < kh:
                r = xb + ky * row
                e = r + span
                while r < e:
                    v = x[r]
                    col[j] = v
                    tot += v
                    j += 1
                    r += 1
                ky += 1
            corr = tot << 7
            wp = ptr8(w)
            t = 20
            oc = 0
            while oc < oc_n:
                acc = 0
                i = 0
                while i < k4:
                    acc += col[i] * wp[i] + col[i + 1] * wp[i + 1] + col[i + 2] * wp[i + 2] + col[i + 3] * wp[i + 3]
                    i += 4
                while i < k:
                    acc += col[i] * wp[i]
                    i += 1
                wp = ptr8(uint(wp) + uint(k))
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


def depthwise(x, w, y, p):
    """Depthwise convolution (groups == C == OC) on a padded input."""
    if p[3] == 3 and p[4] == 3:
        _depthwise3x3(x, w, y, p)
    else:
        _depthwise(x, w, y, p)


@micropython.viper
def _depthwise(x: ptr8, w: ptr8, y: ptr8, p: ptr32):
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
def _depthwise3x3(x: ptr8, w: ptr8, y: ptr8, p: ptr32):
    # The common case with the nine taps unrolled: no inner loops at all.
    oh = p[0]
    ow = p[1]
    c_n = p[5]
    c2 = c_n * 2
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
            t = 20
            c = 0
            wi = 0
            r0 = xb
            while c < c_n:
                r1 = r0 + row
                r2 = r1 + row
                v0 = x[r0]
                v1 = x[r0 + c_n]
                v2 = x[r0 + c2]
                v3 = x[r1]
                v4 = x[r1 + c_n]
                v5 = x[r1 + c2]
                v6 = x[r2]
                v7 = x[r2 + c_n]
                v8 = x[r2 + c2]
                acc = (v0 * w[wi] + v1 * w[wi + 1] + v2 * w[wi + 2] + v3 * w[wi + 3] + v4 * w[wi + 4]
                       + v5 * w[wi + 5] + v6 * w[wi + 6] + v7 * w[wi + 7] + v8 * w[wi + 8])
                tot = v0 + v1 + v2 + v3 + v4 + v5 + v6 + v7 + v8
                a0 = p[t]
                acc += a0 - ((a0 & hb) << 1) - (tot << 7)
                v = ((acc * p[t + 1] + p[t + 2]) >> p[t + 3]) + yz
                if v < lo:
                    v = lo
                if v > hi:
                    v = hi
                y[yp + c] = v
                t += 4
                wi += 9
                r0 += 1
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
