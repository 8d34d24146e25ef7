"""int8 kernels of the camlytics C module (`_camlytics`, built into a camlytics MicroPython firmware).

Same buffers and parameter block as ops.py (the C source is firmware/cmodule/camlytics/int8.c);
only the weights take another form, made once per layer by `prepare_weights`: the int8 weights
widened to an `array('h')` laid out for the C loops, which check it against the parameter block
(any mismatch, or a parameter block that does not fit its buffers, raises ValueError).
`input_copier` lets `infer.Network` copy the input into the first layer's padded buffer in C too.
"""

import array

from camlytics.edge.ops import C, HI, KH, KW, LO, OC, OH, OW, ROW, SX, SY, TABLE, YBASE, YROW, YZ, params

try:
    import _camlytics
except ImportError:
    raise ImportError("no camlytics C module here (_camlytics): it is built into a camlytics firmware")

# The C module version this file's weight layout and signatures are written for (int8.c / camlytics.h).
VERSION = 1
if getattr(_camlytics, "VERSION", None) != VERSION:
    raise ImportError("camlytics C module version %r, this edge package needs %d: rebuild the firmware"
                      % (getattr(_camlytics, "VERSION", None), VERSION))

DOT_ALIGN = 8  # conv2d/dense weight rows are zero-padded to a multiple of this many taps (as int8.c)

conv2d = _camlytics.conv2d
depthwise = _camlytics.depthwise
gap = _camlytics.gap


def weight_layout(layer):
    """`(by_tap, k, cols)`: each output channel has `k` taps. Depthwise weights (`by_tap`) are laid out
    `[KH*KW][C]`, so the C loops run along the channels; conv2d/dense weights `[OC][cols]`, each row
    zero-padded to `cols` (k rounded up to a multiple of DOT_ALIGN), so they run along whole rows.
    """
    oc = layer.out_shape[2]
    k = len(layer.weights) // oc
    if layer.depthwise:
        return True, k, oc
    return False, k, (k + DOT_ALIGN - 1) // DOT_ALIGN * DOT_ALIGN


def prepare_weights(layer):
    """The layer's int8 weights (`[OC][KH][KW][C/groups]` bytes) as an int16 array in the C layout."""
    weights = layer.weights
    oc = layer.out_shape[2]
    by_tap, k, cols = weight_layout(layer)
    out = array.array("h", bytes(2 * k * cols if by_tap else 2 * oc * cols))
    step = oc if by_tap else 1
    i = 0
    for o in range(oc):
        j = o if by_tap else o * cols
        for _ in range(k):
            v = weights[i]
            out[j] = v - 256 if v > 127 else v
            i += 1
            j += step
    return out


def input_copier(h, n, base, pitch):
    """`(kernel, w, p)`: `kernel(x, w, buf, p)` copies an `h x n`-byte input into rows `pitch` bytes apart
    from `base` of a padded buffer, in C and allocating nothing (a MicroPython row loop allocates a
    memoryview per row). It is the depthwise kernel over `h` pixels of `n` channels with unit weights
    and the identity requantization `((x * 2 + 0) >> 1) + 0 = x`, clamped to 0..255.
    """
    p = params(n)
    p[OH], p[OW], p[OC], p[KH], p[KW], p[C] = h, 1, n, 1, 1, n
    p[ROW], p[SY], p[SX], p[YBASE], p[YROW] = n, n, 0, base, pitch
    p[LO], p[HI], p[YZ] = 0, 255, 0
    for t in range(TABLE, len(p), 4):
        p[t + 1], p[t + 3] = 2, 1
    return depthwise, array.array("h", [1] * n), p
