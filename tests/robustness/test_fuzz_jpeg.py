"""The edge JPEG decoder on hostile bytes: JpegError and nothing else, at every scale and in every mode."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from camlytics.edge import jpeg
from camlytics.edge.jpeg import JpegError
from tests.edge.conftest import run_micropython
from tests.robustness.conftest import budget


def _encode(mode: str, size: tuple[int, int], **options) -> bytes:
    rng = np.random.default_rng(len(mode) + size[0])
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(out, "JPEG", **options)
    return out.getvalue()


SEEDS = [
    _encode("L", (24, 16), quality=75),
    _encode("RGB", (32, 24), quality=90, subsampling=2),
    _encode("RGB", (17, 9), quality=50, subsampling=0),
    _encode("RGB", (40, 8), quality=80, subsampling=1, optimize=True),
    _encode("L", (16, 16), quality=60, progressive=True),  # not supported: must say so cleanly
]


def decode_every_way(data: bytes, scale: int) -> None:
    """Everything the edge does with a JPEG; only JpegError may escape."""
    for call in (lambda: jpeg.info(data), lambda: jpeg.decode_luma(data, scale), lambda: jpeg.decode_rgb(data, scale),
                 lambda: jpeg.decode_luma_region(data, scale, (0, 0, 2, 2))):
        try:
            call()
        except JpegError:
            pass


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "byte", "cut", "insert", "marker", "length"]))
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0xD8, 0xD9, 0xDA, 0xC0, 0xC4, 0xDB, 0xDD, 0x7F, 0x80]))
        elif kind == "cut":
            data = data[:pos]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(max_size=16))
        elif kind == "marker":  # a whole marker segment dropped in
            data[pos:pos] = bytes([0xFF, draw(st.integers(0xC0, 0xFE))]) + draw(st.binary(max_size=8))
        else:  # a segment length or a size field set to an extreme
            value = draw(st.sampled_from([0, 1, 2, 0xFFFF, 0x8000, 65535]))
            data[pos:pos + 2] = value.to_bytes(2, "big")
        if not data:
            break
    return bytes(data)


@budget(400)
@given(data=mutated(), scale=st.sampled_from([1, 2, 4, 8]))
def test_mutated_jpegs_raise_only_jpeg_errors(data, scale):
    decode_every_way(data, scale)


@budget(60)
@given(data=st.binary(max_size=300), scale=st.sampled_from([1, 8]))
def test_random_bytes_raise_only_jpeg_errors(data, scale):
    decode_every_way(b"\xff\xd8" + data, scale)
    decode_every_way(data, scale)


def test_the_seeds_decode():
    """Guard: the mutations start from real, decodable JPEGs (the progressive one is refused by name)."""
    for data in SEEDS[:-1]:
        assert jpeg.info(data)[:2] == Image.open(io.BytesIO(data)).size
        jpeg.decode_rgb(data, 1)
    try:
        jpeg.decode_luma(SEEDS[-1], 1)
    except JpegError as exc:
        assert "progressive" in str(exc).lower()


# Inputs atheris found (the first byte picks the scale, as in atheris_jpeg.py): an over-full Huffman table wrote
# past its lookup slot (IndexError), a code longer than 16 bits shifted by a negative count (ValueError).
CORPUS = sorted((Path(__file__).parent / "corpus").glob("jpeg-*.bin"))

MPY_DECODE = """
import sys
from camlytics.edge import jpeg
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    scale = (1, 2, 4, 8)[data[0] % 4]
    for call in (jpeg.info, lambda d: jpeg.decode_luma(d, scale), lambda d: jpeg.decode_rgb(d, scale)):
        try:
            call(data[1:])
            print("ok")
        except jpeg.JpegError:
            print("JpegError")
        except Exception as exc:
            print("CRASH", type(exc).__name__, exc)
"""


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_inputs_atheris_found_raise_jpeg_errors(path):
    data = path.read_bytes()
    decode_every_way(data[1:], (1, 2, 4, 8)[data[0] % 4])


def test_micropython_decodes_the_found_inputs_cleanly():
    assert len(CORPUS) == 2
    out = run_micropython(MPY_DECODE, args=[str(p) for p in CORPUS])
    assert "CRASH" not in out and out.count("JpegError") >= len(CORPUS), out
