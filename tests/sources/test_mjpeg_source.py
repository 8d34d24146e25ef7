"""MJPEG: multipart parsing (by length or by boundary scan) and the MjpegStream source."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from camlytics.errors import SourceError
from camlytics.frames import encode_jpeg
from camlytics.sources import open_source
from camlytics.sources.mjpeg import MjpegStream, MultipartReader, boundary_from_content_type

JPEGS = [encode_jpeg(np.full((8, 8, 3), v, np.uint8)) for v in (10, 120, 250)]


def multipart(boundary: str, parts: list[bytes], lengths: bool = True, close: bool = False) -> bytes:
    out = b""
    for body in parts:
        head = f"--{boundary}\r\nContent-Type: image/jpeg\r\n"
        if lengths:
            head += f"Content-Length: {len(body)}\r\n"
        out += head.encode() + b"\r\n" + body + b"\r\n"
    return out + (f"--{boundary}--\r\n".encode() if close else b"")


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("lengths", [True, False])
@pytest.mark.parametrize("chunk", [1, 7, 100000])
def test_parts_are_split_whatever_the_chunking(lengths, chunk):
    data = multipart("myboundary", JPEGS, lengths=lengths, close=True)
    parts = list(MultipartReader(chunked(data, chunk), "myboundary"))
    assert [body for _, body in parts] == JPEGS
    assert all(h["content-type"] == "image/jpeg" for h, _ in parts)


def test_a_body_that_contains_the_boundary_text_is_kept_whole_with_content_length():
    tricky = JPEGS[0][:-2] + b"--b\r\n" + JPEGS[0][-2:]
    parts = list(MultipartReader([multipart("b", [tricky, JPEGS[1]])], "b"))
    assert [body for _, body in parts] == [tricky, JPEGS[1]]


def test_oversized_parts_are_refused():
    data = multipart("b", [b"\xff\xd8" + bytes(5000)])
    with pytest.raises(SourceError, match="exceeds"):
        list(MultipartReader([data], "b", max_part=1000))
    with pytest.raises(SourceError, match="longer than"):
        list(MultipartReader([multipart("b", [bytes(5000)], lengths=False)], "b", max_part=1000))


@pytest.mark.parametrize("content_type, boundary", [
    ("multipart/x-mixed-replace; boundary=myboundary", "myboundary"),
    ('multipart/x-mixed-replace;boundary="a b:c"', "a b:c"),
    ("multipart/x-mixed-replace; boundary=--ThisRandomString", "ThisRandomString"),
])
def test_boundary_is_read_from_the_header(content_type, boundary):
    assert boundary_from_content_type(content_type) == boundary


def test_a_non_multipart_answer_is_an_error():
    with pytest.raises(SourceError, match="multipart"):
        boundary_from_content_type("image/jpeg")


def test_stream_from_the_simulator(simcam):
    url = simcam.url + "/axis-cgi/mjpg/video.cgi?resolution=320x180&fps=20&nbrofframes=4"
    with open_source(url) as src:
        frames = list(src)
    assert isinstance(src, MjpegStream) and src.boundary == "myboundary"
    assert len(frames) == 4 and all(f.size == (320, 180) and f.jpeg[:2] == b"\xff\xd8" for f in frames)
    assert all("sim_time" in f.meta for f in frames)


def test_corrupt_part_mid_stream_is_skipped_and_counted(simcam):
    httpx.post(simcam.url + "/camlytics-sim/fail", params={"kind": "corrupt", "after": 1, "count": 2})
    url = simcam.url + "/axis-cgi/mjpg/video.cgi?resolution=320x180&fps=30&nbrofframes=5"
    with open_source(url) as src:
        frames = list(src)
    assert len(frames) == 3 and src.skipped == 2


def test_stream_refused_with_an_error_page(simcam):
    httpx.post(simcam.url + "/camlytics-sim/fail", params={"kind": "html"})
    with pytest.raises(SourceError, match="expected a JPEG, got text/html"):
        list(open_source(simcam.url + "/axis-cgi/mjpg/video.cgi?nbrofframes=1"))
