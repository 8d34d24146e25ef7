"""HTTP access to a camera from the host: credentials, Digest/Basic auth, timeouts, retries, clear errors.

Shared by the frame sources (snapshots, MJPEG) and `camlytics run`'s credential check; on the camera the
edge app has its own client (`camlytics.edge.http`).
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx

from camlytics.errors import AuthError, SourceError
from camlytics.urls import parse_url, redact

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
AUTH_MODES = ("auto", "digest", "basic", "none")


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(URL without user:pass, user, password) from "http://user:pass@host:port/path"."""
    parsed = parse_url(url)
    return urlunsplit((parsed.scheme, parsed.netloc, parsed.path, parsed.query, "")), parsed.user, parsed.password


class CameraHTTP:
    """A small synchronous client for one camera: auth negotiation, retries with backoff, error mapping.

    `auth="auto"` answers whichever challenge the camera sends (Digest preferred, Basic otherwise).
    Connection errors, timeouts and 5xx answers are retried `retries` times with exponential backoff;
    401/403 raise AuthError and 404 SourceError, each naming the camera (never the password).
    """

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        auth: str = "auto",
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.25,
    ) -> None:
        base, url_user, url_password = split_credentials(url)
        if auth not in AUTH_MODES:
            raise SourceError(f"auth must be one of {AUTH_MODES}, got {auth!r}")
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise SourceError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        if not (isinstance(retries, int) and retries >= 0):
            raise SourceError(f"retries must be a whole number >= 0, got {retries!r}")
        self.url = base.rstrip("/") if urlsplit(base).path in ("", "/") else base
        parts = urlsplit(base)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.user = user or url_user or os.environ.get("CAMLYTICS_USER")
        if not self.user and (password or url_password):
            raise AuthError(f"camera {redact(url)}: a password was given but no user name; add --user, write "
                            "user:pass@ in the URL, or set $CAMLYTICS_USER")
        self.password = password if password is not None else (
            url_password if url_password is not None else os.environ.get("CAMLYTICS_PASSWORD"))
        self.auth_mode = "none" if (auth == "auto" and not self.user) else auth
        self.retries, self.backoff = retries, backoff
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._client = httpx.Client(timeout=self.timeout, follow_redirects=False, verify=False)
        self._auth: httpx.Auth | None = self._make_auth(self.auth_mode)

    def _make_auth(self, mode: str) -> httpx.Auth | None:
        if mode == "none":
            return None
        if self.user is None or self.password is None:
            raise AuthError(f"camera {self.origin}: auth={mode} needs a user name and password")
        if mode == "basic":
            return httpx.BasicAuth(self.user, self.password)
        return httpx.DigestAuth(self.user, self.password)  # "digest" and "auto" start with Digest

    def _switch_to_basic(self, response: httpx.Response) -> bool:
        """In auto mode, a camera that offers only Basic gets Basic credentials (once)."""
        if self.auth_mode != "auto" or response.status_code != 401:
            return False
        offered = " ".join(response.headers.get_list("www-authenticate")).lower()
        if "digest" in offered or "basic" not in offered:
            return False
        self.auth_mode = "basic"
        self._auth = self._make_auth("basic")
        return True

    def _check(self, response: httpx.Response, path: str) -> None:
        code = response.status_code
        where = f"camera {self.origin}{path}"
        if code == 401:
            who = f"user {self.user!r}" if self.user else "no credentials"
            raise AuthError(f"{where}: access denied with {who} (HTTP 401): wrong user name or password?")
        if code == 403:
            raise AuthError(f"{where}: user {self.user!r} lacks the rights for this request (HTTP 403)")
        if code == 404:
            raise SourceError(f"{where}: not found (HTTP 404): not an Axis camera, or the API is missing")
        if code >= 400:
            raise SourceError(f"{where}: the camera answered HTTP {code} {response.reason_phrase}")

    @contextmanager
    def stream(self, method: str, path: str, **kwargs) -> Iterator[httpx.Response]:
        """A checked response whose body the caller reads (retries cover connecting and the status line)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                request = self._client.build_request(method, self._url(path), **kwargs)
                response = self._client.send(request, auth=self._auth, stream=True)
            except httpx.TransportError as exc:
                reason = describe_transport_error(exc)
                if attempt > self.retries or reason == "unknown host name":  # a typo does not heal
                    tries = f"{attempt} attempt" + ("s" if attempt > 1 else "")
                    raise SourceError(f"camera {self.origin}: {reason} (after {tries})") from None
                log.info("camera %s%s: %s, retrying", self.origin, path, reason)
                time.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            if response.status_code >= 500 and attempt <= self.retries:
                response.close()
                log.info("camera %s%s: HTTP %d, retrying", self.origin, path, response.status_code)
                time.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            if self._switch_to_basic(response):
                response.close()
                continue
            try:
                self._check(response, path)
                yield response
            finally:
                response.close()
            return

    def get(self, path: str, **kwargs) -> httpx.Response:
        """GET with the whole body read, retried and checked."""
        return self.request("GET", path, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """A request with the whole body read, retried and checked."""
        with self.stream(method, path, **kwargs) as response:
            try:
                response.read()
            except httpx.TransportError as exc:
                raise SourceError(f"camera {self.origin}{path}: {describe_transport_error(exc)} "
                                  "while reading the answer") from None
            return response

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.origin + path

    def close(self) -> None:
        self._client.close()


def describe_transport_error(exc: httpx.TransportError) -> str:
    """One readable phrase for a network failure."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time (read timeout)"
    if isinstance(exc, httpx.ConnectError):
        reason = str(exc) or type(exc).__name__
        if "refused" in reason.lower():
            return "connection refused (is the camera up, and the port right?)"
        if "name" in reason.lower() and ("resolv" in reason.lower() or "known" in reason.lower()):
            return "unknown host name"
        return f"cannot connect ({reason})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection closed without a valid HTTP answer"
    return f"network error ({exc or type(exc).__name__})"
