"""Preprocessing (docs/int8.md section 4): scale choice, ROI crop, integer area resize, and the
whole JPEG -> input tensor path, identical on the edge (viper / plain Python), with numpy and on
the host (Pillow decode)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from camlytics.edge import jpeg
from camlytics.edge import preprocess as pp


def model_meta(width=32, height=32, roi=None, source_size=(640, 360), channels=1):
    pre = {"color": "gray" if channels == 1 else "rgb", "resize": "area", "source_size": list(source_size)}
    if roi is not None:
        pre["roi"] = list(roi)
    return {"input": {"width": width, "height": height, "channels": channels}, "preprocess": pre}


def camera_jpeg(width=640, height=360, quality=85, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([(x // 4 + y) % 256, (y * 3) % 256, ((x // 16 + y // 16) % 2) * 180 + 30], -1)
    img = (img + rng.integers(-20, 20, img.shape)).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


# --- the rules, as written in docs/int8.md ------------------------------------------------------

def test_scale_is_the_largest_that_keeps_the_roi_at_least_the_input_size():
    assert pp.choose_scale((0, 0, 640, 360), 32, 32) == 8  # 80x45 >= 32x32
    assert pp.choose_scale((0, 0, 255, 360), 32, 32) == 4  # 255/8 < 32
    assert pp.choose_scale((100, 50, 164, 114), 32, 32) == 2
    assert pp.choose_scale((0, 0, 40, 40), 32, 32) == 1
    assert pp.choose_scale((0, 0, 20, 20), 32, 32) == 1  # smaller than the input: full size, upscaled


def test_crop_box_rounds_outwards_and_clips():
    assert pp.crop_box((100, 50, 301, 250), 8, 640, 360) == (12, 6, 38, 32)
    assert pp.crop_box((0, 0, 641, 359), 8, 641, 359) == (0, 0, 81, 45)
    assert pp.crop_box((600, 300, 700, 400), 4, 640, 360) == (150, 75, 160, 90)


def test_area_bounds_cover_every_source_pixel_once_when_shrinking():
    starts, ends = pp.area_bounds(10, 4)
    assert list(zip(starts, ends)) == [(0, 2), (2, 5), (5, 7), (7, 10)]
    starts, ends = pp.area_bounds(3, 6)  # enlarging: each output copies one source pixel
    assert list(zip(starts, ends)) == [(0, 1), (0, 1), (1, 2), (1, 2), (2, 3), (2, 3)]


def test_area_resize_rounds_half_up():
    src = bytearray([0, 1, 2, 3, 10, 11, 12, 13])  # 4x2
    assert list(pp.area_resize(src, 4, 2, 1, (0, 0, 4, 2), 2, 1)) == [(0 + 1 + 10 + 11 + 2) // 4, (2 + 3 + 12 + 13 + 2) // 4]
    assert list(pp.area_resize(bytearray([1, 2]), 2, 1, 1, (0, 0, 2, 1), 1, 1)) == [2]  # 1.5 -> 2


@pytest.mark.parametrize("channels", [1, 3])
def test_pure_and_numpy_area_resize_are_identical(channels):
    rng = np.random.default_rng(channels)
    for _ in range(60):
        w, h = int(rng.integers(1, 90)), int(rng.integers(1, 70))
        img = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        box = (x0, y0, int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1)))
        ow, oh = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        pure = pp.area_resize(bytearray(img.tobytes()), w, h, channels, box, ow, oh)
        vec = pp.area_resize_numpy(img, box, ow, oh)
        assert vec.shape == (oh, ow, channels)
        assert bytes(pure) == vec.tobytes()


def test_area_resize_rejects_a_box_outside_the_image():
    with pytest.raises(pp.PreprocessError, match="outside"):
        pp.area_resize(bytearray(16), 4, 4, 1, (0, 0, 5, 4), 2, 2)
    with pytest.raises(pp.PreprocessError, match="outside"):
        pp.area_resize_numpy(np.zeros((4, 4), np.uint8), (2, 2, 2, 4), 2, 2)


# --- model metadata -------------------------------------------------------------------------

def test_plan_from_model_metadata():
    plan = pp.make_plan(model_meta(roi=(200, 40, 520, 360)), 640, 360)
    assert (plan.scale, plan.box, plan.in_w, plan.in_h, plan.channels) == (8, (25, 5, 65, 45), 32, 32, 1)
    assert pp.make_plan(model_meta(), 640, 360).roi == (0, 0, 640, 360)  # no ROI: the whole picture


def test_roi_follows_the_picture_when_the_camera_resolution_changes():
    plan = pp.make_plan(model_meta(roi=(200, 40, 520, 360)), 1280, 720)
    assert plan.roi == (400, 80, 1040, 720)


@pytest.mark.parametrize("meta,words", [
    ({"preprocess": {}}, "input"),
    (model_meta(roi=(700, 0, 800, 100)), "empty"),
    (model_meta(roi=(10, 10, 20)), "roi"),
    ({"input": {"width": 32, "height": 32, "channels": 2}}, "colour"),
    ({"input": {"width": 0, "height": 32, "channels": 1}}, "out of range"),
    ({"input": {"width": 32, "height": 32, "channels": 1}, "preprocess": {"resize": "bilinear"}}, "resize"),
])
def test_invalid_metadata_is_a_clear_error(meta, words):
    with pytest.raises(pp.PreprocessError, match=words):
        pp.make_plan(meta, 640, 360)


# --- JPEG -> tensor: edge == host ------------------------------------------------------------

METAS = [
    model_meta(32, 32),
    model_meta(32, 32, roi=(300, 60, 560, 350)),
    model_meta(24, 40, roi=(10, 10, 200, 300)),  # 1/4
    model_meta(48, 48, roi=(100, 100, 250, 260)),  # 1/2
    model_meta(64, 64, roi=(0, 0, 90, 80)),  # 1/1, enlarging
    model_meta(16, 9, roi=(633, 350, 640, 360)),  # a corner
    model_meta(32, 32, roi=(300, 60, 560, 350), channels=3),  # colour, 1/8
    model_meta(40, 30, roi=(100, 100, 300, 260), channels=3),  # colour, 1/4
    model_meta(32, 56, roi=(300, 100, 327, 160)),  # a narrow tall ROI (issue 25), upscaled across
]


@pytest.mark.parametrize("meta", METAS, ids=lambda m: str(m["preprocess"].get("roi")))
def test_prepare_equals_the_host_path_on_pillow_decodes(meta):
    data = camera_jpeg()
    edge = pp.prepare(data, meta)
    host = pp.prepare_host(data, meta)
    channels = meta["input"]["channels"]
    assert len(edge) == meta["input"]["width"] * meta["input"]["height"] * channels
    assert bytes(edge) == host.tobytes()
    # and without numpy: the plain decode + area_resize path
    plan = pp.make_plan(meta, 640, 360)
    w, h, pixels = (jpeg.decode_luma if channels == 1 else jpeg.decode_rgb)(data, plan.scale)
    assert bytes(pp.area_resize(pixels, w, h, channels, plan.box, plan.in_w, plan.in_h)) == bytes(edge)


def test_prepare_accepts_a_model_object():
    class Model:
        meta = model_meta(32, 32)

    assert pp.prepare(camera_jpeg(), Model()) == pp.prepare(camera_jpeg(), model_meta(32, 32))


def test_micropython_prepare_equals_host(micropython, tmp_path):
    """The real edge path (MicroPython, viper) gives the host's bytes for every model above."""
    data = camera_jpeg(641, 359, quality=70, seed=3)
    (tmp_path / "f.jpg").write_bytes(data)
    (tmp_path / "metas.json").write_text(json.dumps(METAS))
    out = micropython(f"""
import json, binascii
from camlytics.edge.preprocess import prepare
data = open('{tmp_path}/f.jpg', 'rb').read()
for meta in json.load(open('{tmp_path}/metas.json')):
    print(binascii.hexlify(prepare(data, meta)).decode())
""")
    lines = out.split()
    assert len(lines) == len(METAS)
    for meta, line in zip(METAS, lines):
        assert bytes.fromhex(line) == pp.prepare_host(data, meta).tobytes()


def test_micropython_heap_is_stable_over_many_frames(micropython, tmp_path):
    """400 snapshots through prepare() in a 512 KB MicroPython heap: nothing accumulates (a leak
    would cost at least one 16-byte heap block per frame; the conservative GC may keep a stray
    block alive, hence the small tolerance)."""
    (tmp_path / "f.jpg").write_bytes(camera_jpeg(640, 360, quality=85, seed=5))
    metas = [model_meta(32, 32), model_meta(32, 32, roi=(318, 58, 424, 231))]  # 1/8 and 1/2
    out = micropython(f"""
import gc
from camlytics.edge.preprocess import prepare
data = open('{tmp_path}/f.jpg', 'rb').read()
x = i = None  # globals created before measuring
for meta in {metas!r}:
    for i in range(20):
        prepare(data, meta)
    gc.collect()
    before = gc.mem_alloc()
    for i in range(200):
        x = prepare(data, meta)
    x = None
    gc.collect()
    print(gc.mem_alloc() - before)
""", heapsize="512k")
    growth = [int(v) for v in out.split()]
    assert len(growth) == 2 and max(growth) < 256, growth
