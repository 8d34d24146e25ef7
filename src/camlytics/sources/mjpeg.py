"""MJPEG over HTTP: a multipart/x-mixed-replace parser and the MjpegStream source built on it."""

from __future__ import annotations

import re
import time
from typing import Iterable, Iterator

import httpx

from camlytics.camera_http import CameraHTTP, describe_transport_error
from camlytics.errors import SourceError
from camlytics.frames import Frame, decode_jpeg
from camlytics.sources.base import FrameSource, check_limit
from camlytics.sources.vapix import jpeg_from_response

MAX_PART = 16 << 20  # bytes: no camera frame is larger; a bigger part means a broken stream
MAX_HEADERS = 8 << 10


def boundary_from_content_type(content_type: str) -> str:
    """The boundary parameter of a multipart Content-Type; SourceError if there is none."""
    if not content_type.lower().startswith("multipart/"):
        raise SourceError(f"expected a multipart/x-mixed-replace MJPEG stream, got {content_type or 'no content type'!r}")
    match = re.search(r'boundary\s*=\s*("([^"]+)"|[^;,\s]+)', content_type, re.I)
    if not match:
        raise SourceError(f"MJPEG stream content type {content_type!r} names no boundary")
    boundary = match[2] or match[1]
    return boundary[2:] if boundary.startswith("--") else boundary  # some servers repeat the dashes


class MultipartReader:
    """Splits a multipart byte stream into (headers, body) parts.

    A part with Content-Length is read by length; one without is cut at the next boundary line.
    Header blocks and parts are bounded (`max_part`) so a broken stream cannot exhaust memory.
    """

    def __init__(self, chunks: Iterable[bytes], boundary: str, max_part: int = MAX_PART) -> None:
        self._chunks = iter(chunks)
        self._buf = bytearray()
        self._eof = False
        self.delimiter = b"--" + boundary.encode("latin-1")
        self.max_part = max_part

    def _fill(self) -> bool:
        """Read one more chunk into the buffer; False at end of stream."""
        if self._eof:
            return False
        for chunk in self._chunks:
            if chunk:
                self._buf += chunk
                return True
        self._eof = True
        return False

    def _find(self, needle: bytes, start: int, limit: int, what: str) -> int:
        """Index of `needle` in the buffer at or after `start`, reading more as needed; -1 at end of stream."""
        while True:
            index = self._buf.find(needle, start)
            if index >= 0:
                return index
            if len(self._buf) > limit:
                raise SourceError(f"MJPEG stream: {what} longer than {limit} bytes")
            start = max(start, len(self._buf) - len(needle))
            if not self._fill():
                return -1

    def __iter__(self) -> Iterator[tuple[dict[str, str], bytes]]:
        while True:
            start = self._find(self.delimiter, 0, self.max_part, "data before a boundary")
            if start < 0:
                return
            del self._buf[: start + len(self.delimiter)]
            end = self._find(b"\r\n\r\n", 0, MAX_HEADERS, "part headers")
            if end < 0:
                return
            head = bytes(self._buf[:end]).decode("latin-1")
            del self._buf[: end + 4]
            if head.startswith("--"):  # the closing delimiter "--boundary--"
                return
            headers = {}
            for line in head.split("\r\n"):
                key, sep, value = line.partition(":")
                if sep:
                    headers[key.strip().lower()] = value.strip()
            length = headers.get("content-length")
            if length is not None and length.isdigit():
                size = int(length)
                if size > self.max_part:
                    raise SourceError(f"MJPEG stream: part of {size} bytes exceeds the {self.max_part}-byte limit")
                while len(self._buf) < size and self._fill():
                    pass
                body = bytes(self._buf[:size])
                del self._buf[:size]
                if len(body) < size:  # the stream ended inside a part
                    yield headers, body
                    return
            else:
                index = self._find(b"\r\n" + self.delimiter, 0, self.max_part, "part without Content-Length")
                if index < 0:
                    body, self._buf = bytes(self._buf), bytearray()
                    yield headers, body
                    return
                body = bytes(self._buf[:index])
                del self._buf[:index + 2]
            yield headers, body


class MjpegStream(FrameSource):
    """Frames from an MJPEG URL (e.g. `http://user:pass@cam/axis-cgi/mjpg/video.cgi?fps=2`).

    `interval` keeps at most one frame per `interval` seconds. Corrupt parts are skipped and counted.
    """

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        auth: str = "auto",
        interval: float | None = None,
        count: int | None = None,
        duration: float | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        max_part: int = MAX_PART,
    ) -> None:
        self.http = CameraHTTP(url, user=user, password=password, auth=auth, timeout=timeout, retries=retries)
        super().__init__(self.http.url, count=count, duration=duration)
        self.interval = check_limit("interval", interval)
        self.max_part = max_part
        self.boundary: str | None = None

    def _read(self) -> Iterator[Frame | SourceError]:
        path = self.http.url[len(self.http.origin):] or "/"
        with self.http.stream("GET", path) as response:
            content_type = response.headers.get("content-type", "")
            if not content_type.lower().startswith("multipart/"):
                body = response.read()[:400]
                jpeg_from_response(body, content_type, f"MJPEG {self.name}")  # raises, quoting the answer
                raise SourceError(f"MJPEG {self.name}: expected a multipart stream, got a single {content_type}")
            self.boundary = boundary_from_content_type(content_type)
            last_kept: float | None = None
            try:
                for headers, body in MultipartReader(response.iter_raw(), self.boundary, self.max_part):
                    if self._closed:
                        return
                    timestamp = time.time()
                    if self.interval and last_kept is not None and timestamp - last_kept < self.interval:
                        continue
                    try:
                        jpeg = jpeg_from_response(body, headers.get("content-type", ""), f"MJPEG {self.name}")
                        item: Frame | SourceError = Frame(
                            decode_jpeg(jpeg, f"MJPEG {self.name} frame"), timestamp, self.name, jpeg,
                            {"camera": self.http.origin, **_sim_meta(headers)})
                        last_kept = timestamp
                    except SourceError as exc:
                        item = exc
                    yield item
            except httpx.TransportError as exc:
                raise SourceError(f"MJPEG {self.name}: {describe_transport_error(exc)}") from None

    def close(self) -> None:
        super().close()
        self.http.close()


def _sim_meta(headers: dict[str, str]) -> dict:
    """The simulator's per-part time header, when present."""
    try:
        return {"sim_time": float(headers["x-camlytics-sim-time"])}
    except (KeyError, ValueError):
        return {}
