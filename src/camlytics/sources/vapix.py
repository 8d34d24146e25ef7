"""VapixCamera: JPEG snapshots from an Axis camera (or the simulator) over VAPIX `image.cgi`."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Iterator

import httpx

from camlytics.camera_http import CameraHTTP, describe_transport_error
from camlytics.errors import SourceError
from camlytics.frames import Frame, decode_jpeg
from camlytics.sources.base import FrameSource, check_limit
from camlytics.validate import parse_resolution

log = logging.getLogger(__name__)

SNAPSHOT_PATH = "/axis-cgi/jpg/image.cgi"
PARAM_PATH = "/axis-cgi/param.cgi"
MAX_JPEG = 32 << 20  # a snapshot larger than this is not a camera image


def parse_resolution_list(text: str) -> list[tuple[int, int]]:
    """Resolutions from a param.cgi answer holding `...Properties.Image.Resolution=1920x1080,1280x720,...`."""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip().endswith("Properties.Image.Resolution"):
            return [(int(w), int(h)) for w, h in re.findall(r"(\d+)x(\d+)", value)]
    return []


def nearest_resolution(wanted: tuple[int, int], supported: list[tuple[int, int]]) -> tuple[int, int]:
    """The supported resolution closest to `wanted`: same aspect ratio first, then nearest pixel count."""
    w, h = wanted
    supported = [r for r in supported if r[0] > 0 and r[1] > 0] or [wanted]  # a 0 in a camera's list: ignore it
    return min(supported, key=lambda r: (abs(r[0] / r[1] - w / h) > 0.01, abs(r[0] * r[1] - w * h), -r[0]))


def jpeg_from_response(content: bytes, content_type: str, what: str) -> bytes:
    """The body if it looks like a JPEG, else a SourceError quoting what the camera said instead."""
    if content[:2] == b"\xff\xd8":
        return content
    kind = content_type.split(";")[0].strip() or "no content type"
    text = content[:300].decode("utf-8", "replace")
    comment = re.search(r"<!--(.*?)-->", text, re.S)
    said = (comment[1] if comment else re.sub(r"<[^>]+>", " ", text)).split()
    message = " ".join(said)[:120]
    raise SourceError(f"{what}: expected a JPEG, got {kind}" + (f": {message!r}" if message else " (empty)"))


class VapixCamera(FrameSource):
    """Snapshots from `http://user:pass@host[:port]`, one per `interval` seconds (default: as fast as served).

    `resolution="WxH"` is checked against the camera's `Properties.Image.Resolution`; an unsupported
    one is replaced by the nearest supported (see `.resolution`). Frames carry Unix timestamps; from the
    simulator they also carry `meta["sim_time"]` and `meta["truth"]`.
    """

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        auth: str = "auto",
        resolution: str | None = None,
        compression: int | None = None,
        interval: float | None = None,
        count: int | None = None,
        duration: float | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.25,
        snapshot_path: str = SNAPSHOT_PATH,
    ) -> None:
        self.http = CameraHTTP(url, user=user, password=password, auth=auth, timeout=timeout,
                               retries=retries, backoff=backoff)
        super().__init__(self.http.origin, count=count, duration=duration)
        self.interval = check_limit("interval", interval)
        if compression is not None and not (str(compression).isdigit() and 0 <= int(compression) <= 100):
            self.http.close()
            raise SourceError(f"compression must be 0..100, got {compression!r}")
        self.compression = None if compression is None else int(compression)
        if resolution is not None:
            try:
                resolution = "%dx%d" % parse_resolution(resolution)
            except SourceError:
                self.http.close()
                raise
        self.requested_resolution = resolution
        self.snapshot_path = snapshot_path
        self._resolution: str | None | bool = False  # False: not negotiated yet

    @property
    def resolution(self) -> str | None:
        """The resolution requested from the camera (None: the camera's default)."""
        if self._resolution is False:
            self._resolution = self._negotiate()
        return self._resolution or None

    def supported_resolutions(self) -> list[tuple[int, int]]:
        """The camera's `Properties.Image.Resolution` list ([] if it does not say)."""
        try:
            answer = self.http.get(PARAM_PATH, params={"action": "list", "group": "Properties.Image.Resolution"})
        except SourceError as exc:
            if "HTTP 404" in str(exc):
                return []
            raise
        return parse_resolution_list(answer.text)

    def _negotiate(self) -> str | None:
        if self.requested_resolution is None:
            return None
        wanted = tuple(int(v) for v in self.requested_resolution.split("x"))
        supported = self.supported_resolutions()
        if not supported or wanted in supported:
            return self.requested_resolution
        w, h = nearest_resolution(wanted, supported)  # type: ignore[arg-type]
        log.warning("camera %s does not offer %s; using %dx%d", self.name, self.requested_resolution, w, h)
        return f"{w}x{h}"

    def _fetch(self) -> tuple[bytes, str, dict]:
        """(body, content type, metadata) of one image.cgi answer; network/HTTP problems raise."""
        params = {}
        if self.resolution:
            params["resolution"] = self.resolution
        if self.compression is not None:
            params["compression"] = str(self.compression)
        with self.http.stream("GET", self.snapshot_path, params=params) as response:
            size = response.headers.get("content-length", "")
            if size.isdigit() and int(size) > MAX_JPEG:
                raise SourceError(f"camera {self.name}: snapshot of {size} bytes is larger than {MAX_JPEG}")
            body = bytearray()
            try:
                for chunk in response.iter_raw():
                    body += chunk
                    if len(body) > MAX_JPEG:
                        raise SourceError(f"camera {self.name}: snapshot larger than {MAX_JPEG} bytes")
            except httpx.TransportError as exc:
                raise SourceError(f"camera {self.name}: {describe_transport_error(exc)} while reading a snapshot") from None
            headers = response.headers
        meta: dict = {"camera": self.name}
        try:
            if (sim_time := headers.get("x-camlytics-sim-time")) is not None:
                meta["sim_time"] = float(sim_time)
            if (truth := headers.get("x-camlytics-truth")) is not None:
                meta["truth"] = json.loads(truth)
        except ValueError:
            pass  # simulator extras only; a real camera never sends them
        return bytes(body), headers.get("content-type", ""), meta

    def _to_frame(self, body: bytes, content_type: str, meta: dict, timestamp: float) -> Frame:
        jpeg = jpeg_from_response(body, content_type, f"camera {self.name}")
        return Frame(decode_jpeg(jpeg, f"camera {self.name} snapshot"), timestamp, self.name, jpeg, meta)

    def snapshot(self) -> Frame:
        """One frame now; SourceError if the camera's answer is not a readable JPEG."""
        timestamp = time.time()
        return self._to_frame(*self._fetch(), timestamp)

    def _read(self) -> Iterator[Frame | SourceError]:
        last: float | None = None  # when the previous snapshot was asked for
        while not self._closed:
            # `interval` after the previous request: a late snapshot moves the schedule (no catch-up
            # burst), and a faster pace asked for by a sampler applies from the next frame on
            interval = self._next_interval(self.interval)
            if interval and last is not None:
                wait = last + interval - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            last = time.monotonic()
            timestamp = time.time()
            answer = self._fetch()  # network, auth and HTTP errors end the stream
            try:
                item: Frame | SourceError = self._to_frame(*answer, timestamp)
            except SourceError as exc:  # a bad image: FrameSource skips and counts it
                item = exc
            yield item

    def close(self) -> None:
        super().close()
        self.http.close()
