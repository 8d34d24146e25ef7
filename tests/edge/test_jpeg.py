"""The edge JPEG decoder: libjpeg's luma plane, bit for bit, at 1/1, 1/2, 1/4 and 1/8 scale;
clear errors for what it does not support and for corrupt or truncated data.

Reference: Pillow (libjpeg-turbo) `Image.draft("L", ...)` — the Y plane at the same reduced
scale. Maximum pixel difference measured and asserted: 0 at every scale.
"""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pytest
from PIL import Image

from camlytics.edge.jpeg import JpegError, decode_luma, decode_luma_region, decode_rgb, info

SCALES = (8, 4, 2, 1)


def scene(width: int, height: int, seed: int = 0, colour: bool = True) -> np.ndarray:
    """A camera-like test picture: gradients, hard edges, texture and sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    r = (x * 255 // max(width - 1, 1)).astype(np.int32)
    g = (y * 255 // max(height - 1, 1)).astype(np.int32)
    b = (((x // 7) + (y // 5)) % 2) * 200 + 20
    img = np.stack([r, g, b], -1)
    img[height // 3: height // 2, width // 4: width // 2] = (250, 10, 30)  # a saturated box (overshoot)
    img = img + rng.integers(-25, 25, img.shape)
    img = img.clip(0, 255).astype(np.uint8)
    return img if colour else img[:, :, 1].copy()


def encode(img: np.ndarray, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", **options)
    return buf.getvalue()


def pillow_luma(data: bytes, d: int) -> np.ndarray:
    """Pillow's Y plane at 1/d (draft picks 1/d for a requested size of floor(size / d))."""
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        im.draft("L", (w // d, h // d) if d > 1 else None)
        assert im.size == (-(-w // d), -(-h // d))
        return np.asarray(im if im.mode == "L" else im.convert("L"))


def pillow_rgb(data: bytes, d: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        if d > 1:
            im.draft("RGB", (w // d, h // d))
        return np.asarray(im.convert("RGB"))


def decoded(data: bytes, d: int) -> np.ndarray:
    w, h, out = decode_luma(data, d)
    assert len(out) == w * h
    return np.frombuffer(bytes(out), np.uint8).reshape(h, w)


# A corpus of real encoder outputs: qualities 10..100, the three subsamplings, grey, restart
# intervals in blocks and in rows, odd sizes.
CASES = [
    dict(size=(17, 9), quality=75, subsampling=2),
    dict(size=(33, 20), quality=10, subsampling=0),
    dict(size=(33, 20), quality=100, subsampling=1),
    dict(size=(40, 24), quality=50, subsampling=2, restart_marker_blocks=1),
    dict(size=(48, 40), quality=90, subsampling=0, restart_marker_rows=1),
    dict(size=(57, 31), quality=30, grey=True),
    dict(size=(64, 48), quality=95, grey=True, restart_marker_blocks=3),
    dict(size=(23, 61), quality=85, subsampling=1, restart_marker_blocks=5),
    dict(size=(96, 72), quality=100, subsampling=2, restart_marker_rows=2),
]


def case_bytes(case: dict, seed: int = 0) -> bytes:
    case = dict(case)
    w, h = case.pop("size")
    grey = case.pop("grey", False)
    return encode(scene(w, h, seed, colour=not grey), **case)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_luma_equals_pillow_at_every_scale(case):
    data = case_bytes(case)
    for d in SCALES:
        ours, ref = decoded(data, d), pillow_luma(data, d)
        assert ours.shape == ref.shape
        assert int(np.abs(ours.astype(int) - ref).max()) == 0, f"1/{d}"


RGB_CASES = [
    dict(size=(37, 21), quality=80, subsampling=0),
    dict(size=(37, 21), quality=20, subsampling=1),
    dict(size=(37, 21), quality=95, subsampling=2, restart_marker_blocks=2),
    dict(size=(5, 30), quality=60, subsampling=2),  # chroma planes 1-3 columns wide: edge rules
    dict(size=(64, 40), quality=70, grey=True),
]


@pytest.mark.parametrize("case", RGB_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_rgb_equals_pillow_at_every_scale(case):
    """Colour: libjpeg's per-component IDCT sizes, fancy upsampling and YCbCr->RGB, exactly."""
    data = case_bytes(case)
    w, h = case["size"]
    for d in SCALES:
        if d > min(w, h):
            continue
        ww, hh, out = decode_rgb(data, d)
        ours = np.frombuffer(bytes(out), np.uint8).reshape(hh, ww, 3)
        ref = pillow_rgb(data, d)
        assert ours.shape == ref.shape
        assert int(np.abs(ours.astype(int) - ref).max()) == 0, f"1/{d}"


@pytest.mark.parametrize("pix_fmt", ["yuvj420p", "yuvj422p", "yuvj444p"])
def test_another_encoder_ffmpeg_mjpeg_decodes_like_pillow(pix_fmt):
    """A second, independent encoder (FFmpeg's MJPEG, as in many cameras' streams) via PyAV."""
    from fractions import Fraction

    import av

    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt, codec.time_base = 83, 45, pix_fmt, Fraction(1, 25)
    frame = av.VideoFrame.from_ndarray(scene(83, 45, seed=7), format="rgb24").reformat(format=pix_fmt)
    data = b"".join(bytes(p) for p in codec.encode(frame) + codec.encode(None))
    for d in SCALES:
        assert np.array_equal(decoded(data, d), pillow_luma(data, d)), f"1/{d}"
        w, h, rgb = decode_rgb(data, d)
        assert bytes(rgb) == pillow_rgb(data, d).tobytes(), f"RGB 1/{d}"


def test_plain_python_kernels_give_the_numpy_batch_bytes(monkeypatch):
    """CPython runs the viper kernels as plain Python; with numpy the IDCTs run as one batch."""
    import camlytics.edge.jpeg as jpeg_module

    data = case_bytes(dict(size=(45, 37), quality=90, subsampling=2, restart_marker_blocks=4))
    with_numpy = [decode_luma(data, d) for d in SCALES] + [decode_rgb(data, 1)]
    monkeypatch.setattr(jpeg_module, "USE_NUMPY", False)
    plain = [decode_luma(data, d) for d in SCALES] + [decode_rgb(data, 1)]
    assert plain == with_numpy


def test_a_region_has_the_pixels_of_the_whole_plane():
    """decode_luma_region transforms only the blocks under the box; the pixels do not change."""
    data = case_bytes(dict(size=(150, 97), quality=80, subsampling=2, restart_marker_blocks=5))
    rng = random.Random(3)
    for d in SCALES:
        full = decoded(data, d)
        ph, pw = full.shape
        for _ in range(6):
            x0, y0 = rng.randrange(pw), rng.randrange(ph)
            box = (x0, y0, rng.randint(x0 + 1, pw + 3), rng.randint(y0 + 1, ph + 3))
            x, y, w, h, out = decode_luma_region(data, d, box)
            block = 8 // d
            assert x == box[0] // block * block and y == box[1] // block * block
            assert (x + w, y + h) == (min(box[2], pw), min(box[3], ph))
            region = np.frombuffer(bytes(out), np.uint8).reshape(h, w)
            assert np.array_equal(region, full[y:y + h, x:x + w])
    with pytest.raises(JpegError, match="outside"):
        decode_luma_region(data, 8, (20, 0, 30, 5))  # the plane is 19 pixels wide at 1/8


def test_one_eighth_is_the_dc_formula_of_docs_int8():
    """At 1/8 each pixel is clamp(((dc * q0 + 4) >> 3) + 128), i.e. libjpeg's 1x1 IDCT."""
    img = np.full((16, 16), 77, np.uint8)
    img[8:, 8:] = 250
    data = encode(img, quality=20)
    w, h, out = decode_luma(data, 8)
    assert (w, h) == (2, 2)
    assert list(out) == list(pillow_luma(data, 8).ravel())
    assert abs(out[0] - 77) <= 3 and abs(out[3] - 250) <= 5


def test_tiny_and_single_pixel_images_have_ceil_sizes():
    data = encode(scene(1, 1), quality=90)
    assert decoded(data, 1).shape == (1, 1)
    assert abs(int(decoded(data, 1)[0, 0]) - int(pillow_luma(data, 1)[0, 0])) == 0
    for d in SCALES:
        assert decoded(data, d).shape == (1, 1)
    assert decoded(encode(scene(9, 3), quality=90), 8).shape == (1, 2)


def test_info_reads_the_frame_header():
    assert info(encode(scene(641, 359), quality=50)) == (641, 359, 3)
    assert info(encode(scene(31, 7, colour=False), quality=50)) == (31, 7, 1)


MICROPYTHON_CORPUS = [
    ((640, 360), 85, 2, {}),
    ((641, 359), 10, 2, {}),
    ((641, 359), 100, 0, {}),
    ((320, 181), 60, 1, {"restart_marker_rows": 1}),
    ((160, 97), 95, 2, {"restart_marker_blocks": 7}),
    ((200, 150), 40, None, {}),  # grey
]


def micropython_corpus() -> list[bytes]:
    """The MICROPYTHON_CORPUS pictures encoded (camera-sized frames, every subsampling, restarts, grey)."""
    files = []
    for i, ((w, h), q, ss, extra) in enumerate(MICROPYTHON_CORPUS):
        opts = {"quality": q, **extra}
        if ss is not None:
            opts["subsampling"] = ss
        files.append(encode(scene(w, h, seed=i, colour=ss is not None), **opts))
    return files


def test_micropython_decodes_like_pillow(micropython, tmp_path):
    """Under the real MicroPython (viper kernels): the same planes as Pillow, 0 levels apart."""
    names = []
    for i, data in enumerate(micropython_corpus()):
        (tmp_path / f"{i}.jpg").write_bytes(data)
        names.append(i)
    script = f"""
import json
from camlytics.edge.jpeg import decode_luma, decode_rgb
for i in {names!r}:
    data = open('{tmp_path}/%d.jpg' % i, 'rb').read()
    for d in {list(SCALES)!r}:
        w, h, out = decode_luma(data, d)
        open('{tmp_path}/%d_%d.raw' % (i, d), 'wb').write(out)
        print(json.dumps([i, d, w, h]))
    if i < 2:
        w, h, out = decode_rgb(data, 2)
        open('{tmp_path}/%d_rgb.raw' % i, 'wb').write(out)
"""
    lines = micropython(script).splitlines()
    worst = {d: 0 for d in SCALES}
    for line in lines:
        i, d, w, h = json.loads(line)
        ref = pillow_luma((tmp_path / f"{i}.jpg").read_bytes(), d)
        got = np.frombuffer((tmp_path / f"{i}_{d}.raw").read_bytes(), np.uint8).reshape(h, w)
        worst[d] = max(worst[d], int(np.abs(got.astype(int) - ref).max()))
    assert len(lines) == len(names) * len(SCALES)
    assert worst == {8: 0, 4: 0, 2: 0, 1: 0}
    for i in (0, 1):
        ref = pillow_rgb((tmp_path / f"{i}.jpg").read_bytes(), 2)
        assert (tmp_path / f"{i}_rgb.raw").read_bytes() == ref.tobytes()


# --- what is refused, and how ---------------------------------------------------------------

def sof_offset(data: bytes) -> int:
    """Byte offset of the frame header marker (FFC0/FFC1/FFC2)."""
    for marker in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2"):
        i = data.find(marker)
        if i > 0:
            return i
    raise AssertionError("no SOF")


def test_progressive_is_refused_with_a_clear_message():
    data = encode(scene(64, 32), quality=80, progressive=True)
    with pytest.raises(JpegError, match="progressive"):
        decode_luma(data, 8)


@pytest.mark.parametrize("marker,words", [(0xC9, "arithmetic"), (0xC3, "lossless"), (0xCA, "arithmetic")])
def test_other_coding_processes_are_refused(marker, words):
    data = bytearray(encode(scene(32, 16), quality=80))
    data[sof_offset(data) + 1] = marker
    with pytest.raises(JpegError, match=words):
        decode_luma(bytes(data), 1)


def test_twelve_bit_is_refused():
    data = bytearray(encode(scene(32, 16), quality=80))
    data[sof_offset(data) + 4] = 12
    with pytest.raises(JpegError, match="12-bit"):
        decode_luma(bytes(data), 1)


def test_huge_dimensions_are_refused_before_allocating():
    data = bytearray(encode(scene(32, 16), quality=80))
    i = sof_offset(data)
    data[i + 5:i + 9] = b"\xff\xff\xff\xff"  # 65535 x 65535
    with pytest.raises(JpegError, match="out of range"):
        decode_luma(bytes(data), 8)
    data = bytes(encode(scene(64, 64), quality=80))
    with pytest.raises(JpegError, match="out of range"):
        decode_luma(data, 1, max_pixels=1000)


@pytest.mark.parametrize("blob", [b"", b"\xff\xd8", b"GIF89a....", b"\xff\xd8\xff\xd9", b"\x00" * 100])
def test_not_a_jpeg(blob):
    with pytest.raises(JpegError):
        decode_luma(blob, 8)


def test_every_truncation_is_a_clear_error():
    data = case_bytes(dict(size=(24, 16), quality=60, subsampling=2, restart_marker_blocks=2))
    for cut in range(0, len(data) - 2):
        with pytest.raises(JpegError):
            decode_luma(data[:cut], 8)
    for cut in range(len(data) // 2, len(data) - 2, 7):
        with pytest.raises(JpegError):
            decode_luma(data[:cut], 1)


def test_corrupt_bytes_give_pixels_or_a_jpeg_error_never_a_crash():
    data = case_bytes(dict(size=(32, 24), quality=70, subsampling=2, restart_marker_blocks=3))
    rng = random.Random(1)
    outcomes = {"ok": 0, "error": 0}
    for trial in range(300):
        bad = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            bad[rng.randrange(2, len(bad))] = rng.randrange(256)
        d = rng.choice(SCALES)
        try:
            w, h, out = decode_luma(bytes(bad), d)
        except JpegError as exc:
            assert str(exc)
            outcomes["error"] += 1
        else:
            assert len(out) == w * h and w * h <= 32 * 24
            outcomes["ok"] += 1
    assert outcomes["error"] > 0 and outcomes["ok"] > 0


def test_micropython_refuses_bad_input_with_jpeg_error(micropython, tmp_path):
    good = case_bytes(dict(size=(48, 32), quality=70, subsampling=2))
    (tmp_path / "good.jpg").write_bytes(good)
    (tmp_path / "prog.jpg").write_bytes(encode(scene(48, 32), quality=70, progressive=True))
    out = micropython(f"""
from camlytics.edge.jpeg import decode_luma, JpegError
good = open('{tmp_path}/good.jpg', 'rb').read()
cases = [good[:len(good) // 2], open('{tmp_path}/prog.jpg', 'rb').read(), b'not a jpeg']
for i in range(0, len(good), 37):
    bad = bytearray(good)
    bad[i] ^= 0x5A
    cases.append(bytes(bad))
errors = 0
for data in cases:
    try:
        decode_luma(data, 1)
    except JpegError as exc:
        errors += 1
print(errors, len(cases))
""")
    errors, total = map(int, out.split())
    assert errors >= 3 and total > 3
