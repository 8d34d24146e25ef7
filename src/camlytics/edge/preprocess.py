"""JPEG -> model input tensor (docs/int8.md section 4), defined once for the edge and the host.

1. pick the reduced decode scale 1/d, d in (8, 4, 2, 1): the largest d with ROI / d >= input size;
2. decode the luma plane (grey models) or RGB at that scale (`camlytics.edge.jpeg`);
3. crop the ROI at that scale, `[x0 // d, y0 // d, ceil(x1 / d), ceil(y1 / d))`, clipped;
4. integer area-resize the crop to the input size, channels last.

`prepare()` does it all on the edge (on MicroPython the firmware's C module or a viper loop, as
`jpeg.KERNELS` says; numpy on CPython when present, plain Python otherwise). The host uses
`prepare_host()` (Pillow decode, same numbers) or `area_resize_numpy()` on planes it decoded
itself; every path gives identical bytes.
"""

import array
import sys

from camlytics.edge import jpeg

if sys.implementation.name == "micropython":
    import micropython
else:
    micropython = jpeg.micropython
    ptr8 = ptr32 = object  # viper type names, only used in annotations

SCALES = (8, 4, 2, 1)


class PreprocessError(ValueError):
    """The model's preprocessing metadata is invalid for this image (bad ROI, input size, colour)."""


class Plan:
    """How one image size is turned into one model's input: scale, crop box, output size."""

    def __init__(self, width, height, roi, in_w, in_h, channels):
        self.width, self.height = width, height
        self.roi = roi  # full-resolution pixels (x0, y0, x1, y1)
        self.in_w, self.in_h, self.channels = in_w, in_h, channels
        self.scale = choose_scale(roi, in_w, in_h)
        self.box = crop_box(roi, self.scale, width, height)

    def __repr__(self):
        return "Plan(%dx%d roi=%r scale=1/%d box=%r -> %dx%dx%d)" % (
            self.width, self.height, self.roi, self.scale, self.box, self.in_w, self.in_h, self.channels)


def _ceil_div(a, b):
    return -(-a // b)


def choose_scale(roi, in_w, in_h):
    """Largest d in (8, 4, 2, 1) such that the ROI divided by d still covers in_w x in_h."""
    rw = roi[2] - roi[0]
    rh = roi[3] - roi[1]
    for d in SCALES:
        if rw >= in_w * d and rh >= in_h * d:
            return d
    return 1


def crop_box(roi, d, width, height):
    """The ROI at scale 1/d, clipped to the decoded ceil(width/d) x ceil(height/d) image."""
    dw = _ceil_div(width, d)
    dh = _ceil_div(height, d)
    x0 = min(roi[0] // d, dw - 1)
    y0 = min(roi[1] // d, dh - 1)
    x1 = max(min(_ceil_div(roi[2], d), dw), x0 + 1)
    y1 = max(min(_ceil_div(roi[3], d), dh), y0 + 1)
    return x0, y0, x1, y1


def area_bounds(length, out):
    """Source index ranges [s0, s1) averaged into each of `out` outputs from `length` inputs."""
    starts = []
    ends = []
    for o in range(out):
        s0 = o * length // out
        starts.append(s0)
        ends.append(max(s0 + 1, (o + 1) * length // out))
    return starts, ends


def _meta_dict(meta):
    return meta.meta if hasattr(meta, "meta") else meta


def make_plan(meta, width, height):
    """Validate a model's `input`/`preprocess` metadata against an image size; return its Plan."""
    meta = _meta_dict(meta)
    try:
        inp = meta["input"]
        in_w, in_h, channels = int(inp["width"]), int(inp["height"]), int(inp["channels"])
    except (KeyError, TypeError, ValueError):
        raise PreprocessError("model metadata lacks input width/height/channels") from None
    if not (1 <= in_w <= 4096 and 1 <= in_h <= 4096):
        raise PreprocessError("model input size %dx%d is out of range" % (in_w, in_h))
    pre = meta.get("preprocess") or {}
    color = pre.get("color", "gray" if channels == 1 else "rgb")
    if (color, channels) not in (("gray", 1), ("rgb", 3)):
        raise PreprocessError("unsupported colour %r with %d input channels (gray/1 or rgb/3)" % (color, channels))
    resize = pre.get("resize", "area")
    if resize != "area":
        raise PreprocessError("unsupported resize %r (only 'area')" % (resize,))
    roi = pre.get("roi")
    if roi is None:
        roi = (0, 0, width, height)
    else:
        if len(roi) != 4:
            raise PreprocessError("roi must be [x0, y0, x1, y1], got %r" % (roi,))
        roi = tuple(int(v) for v in roi)
        src = pre.get("source_size")
        if src and (int(src[0]), int(src[1])) != (width, height):
            # The camera now sends another resolution: the ROI keeps its place in the picture.
            sw, sh = int(src[0]), int(src[1])
            if sw <= 0 or sh <= 0:
                raise PreprocessError("source_size must be positive, got %r" % (src,))
            roi = (roi[0] * width // sw, roi[1] * height // sh,
                   _ceil_div(roi[2] * width, sw), _ceil_div(roi[3] * height, sh))
        x0, y0, x1, y1 = roi
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, width), min(y1, height)
        if x1 <= x0 or y1 <= y0:
            raise PreprocessError("roi %r is empty inside the %dx%d image" % (tuple(roi), width, height))
        roi = (x0, y0, x1, y1)
    return Plan(width, height, roi, in_w, in_h, channels)


@micropython.viper
def _area_resize(src: ptr8, dst: ptr8, b: ptr32, p: ptr32):
    """dst[oy][ox][c] = rounded mean of src over the rows/columns ranges in `b` (see area_resize)."""
    sw = int(p[0])
    ch = int(p[1])
    ow = int(p[2])
    oh = int(p[3])
    o = 0
    oy = 0
    while oy < oh:
        y0 = int(b[2 * ow + oy])
        y1 = int(b[2 * ow + oh + oy])
        ox = 0
        while ox < ow:
            x0 = int(b[ox])
            x1 = int(b[ow + ox])
            n = (y1 - y0) * (x1 - x0)
            c = 0
            while c < ch:
                s = 0
                y = y0
                while y < y1:
                    i = (y * sw + x0) * ch + c
                    e = (y * sw + x1) * ch + c
                    while i < e:
                        s += int(src[i])
                        i += ch
                    y += 1
                dst[o] = (s + (n >> 1)) // n
                o += 1
                c += 1
            ox += 1
        oy += 1


def area_resize(src, width, height, channels, box, out_w, out_h, out=None):
    """Crop `box` from an HxWxC uint8 buffer and area-resize it to out_w x out_h -> bytearray."""
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise PreprocessError("crop box %r outside the %dx%d image" % (tuple(box), width, height))
    if len(src) < width * height * channels:
        raise PreprocessError("image buffer too small for %dx%dx%d" % (width, height, channels))
    xs, xe = area_bounds(x1 - x0, out_w)
    ys, ye = area_bounds(y1 - y0, out_h)
    bounds = array.array("i", [x0 + v for v in xs] + [x0 + v for v in xe] + [y0 + v for v in ys] + [y0 + v for v in ye])
    params = array.array("i", (width, channels, out_w, out_h))
    if out is None:
        out = bytearray(out_w * out_h * channels)
    jpeg.kernel("area_resize", _area_resize)(src, out, bounds, params)
    return out


def area_resize_numpy(image, box, out_w, out_h):
    """numpy version of `area_resize` for an (H, W) or (H, W, C) uint8 array -> (out_h, out_w, C)."""
    import numpy as np

    img = np.asarray(image)
    if img.ndim == 2:
        img = img[:, :, None]
    x0, y0, x1, y1 = box
    h, w = img.shape[:2]
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise PreprocessError("crop box %r outside the %dx%d image" % (tuple(box), w, h))
    crop = img[y0:y1, x0:x1].astype(np.int64)
    # Integral image with a zero row/column in front: any rectangle sum is 4 lookups.
    integral = np.zeros((crop.shape[0] + 1, crop.shape[1] + 1, crop.shape[2]), np.int64)
    integral[1:, 1:] = crop.cumsum(0).cumsum(1)
    xs, xe = (np.array(v) for v in area_bounds(x1 - x0, out_w))
    ys, ye = (np.array(v) for v in area_bounds(y1 - y0, out_h))
    total = (integral[ye][:, xe] - integral[ys][:, xe] - integral[ye][:, xs] + integral[ys][:, xs])
    n = ((ye - ys)[:, None] * (xe - xs)[None, :])[:, :, None]
    return ((total + n // 2) // n).astype(np.uint8)


def _numpy():
    if sys.implementation.name == "micropython":
        return None
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def prepare(jpeg_bytes, meta, plan=None):
    """Decode, crop and resize a JPEG for a model (its metadata dict or Model) -> input bytearray."""
    if plan is None:
        width, height, _ = jpeg.info(jpeg_bytes)
        plan = make_plan(meta, width, height)
    d = plan.scale
    if plan.channels == 1:
        # Only the blocks under the ROI are transformed and kept (the rest is just skipped).
        x, y, w, h, pixels = jpeg.decode_luma_region(jpeg_bytes, d, plan.box)
    else:
        x, y = 0, 0
        w, h, pixels = jpeg.decode_rgb(jpeg_bytes, d)
    if x + w < plan.box[2] or y + h < plan.box[3]:
        raise PreprocessError("image is smaller at 1/%d than its %dx%d header says" % (d, plan.width, plan.height))
    box = (plan.box[0] - x, plan.box[1] - y, plan.box[2] - x, plan.box[3] - y)
    np = _numpy()
    if np is not None:
        image = np.frombuffer(pixels, np.uint8).reshape(h, w, plan.channels)
        return bytearray(area_resize_numpy(image, box, plan.in_w, plan.in_h).tobytes())
    return area_resize(pixels, w, h, plan.channels, box, plan.in_w, plan.in_h)


def decode_pillow(jpeg_bytes, scale, channels=1):
    """Host only: Pillow's reduced-size decode (`Image.draft`) -> (H, W, C) uint8 numpy array.

    The luma plane is identical to `jpeg.decode_luma` at every scale (both are libjpeg's integer
    IDCTs); it is just faster on the host.
    """
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(jpeg_bytes)) as im:
        if im.format != "JPEG":
            raise PreprocessError("not a JPEG image (%s)" % im.format)
        w, h = im.size
        if scale > 1 and w >= scale and h >= scale:
            # draft() uses the largest power of two <= min(w // rw, h // rh): floor sizes give `scale`.
            im.draft("L" if channels == 1 else "RGB", (w // scale, h // scale))
        elif channels == 1:
            im.draft("L", None)
        if im.size != (_ceil_div(w, scale), _ceil_div(h, scale)):
            raise PreprocessError("Pillow could not decode %dx%d at 1/%d" % (w, h, scale))
        arr = np.asarray(im.convert("L" if channels == 1 else "RGB"))
    return arr.reshape(arr.shape[0], arr.shape[1], channels)


def prepare_host(jpeg_bytes, meta):
    """Host only: the same input tensor as `prepare()`, decoded by Pillow -> (IH, IW, C) uint8 array."""
    width, height, _ = jpeg.info(jpeg_bytes)
    plan = make_plan(meta, width, height)
    image = decode_pillow(jpeg_bytes, plan.scale, plan.channels)
    return area_resize_numpy(image, plan.box, plan.in_w, plan.in_h)
