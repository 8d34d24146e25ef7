"""Checked URL parsing for cameras and brokers: one clear SourceError instead of urllib's ValueError.

`parse_url` is the one place that splits a user-given camera or broker URL (sources, `camlytics run`,
deployment); `redact` hides a password in anything shown to the user; `camera_settings` and
`mqtt_settings` turn a URL into the edge config's camera and mqtt sections. No third-party imports here.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from camlytics.errors import CamlyticsError, SourceError

__all__ = ["ParsedURL", "camera_settings", "mqtt_settings", "parse_url", "redact"]


def redact(url: str) -> str:
    """The URL with any password replaced by ***, for messages and logs."""
    return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", url)


class ParsedURL(NamedTuple):
    """The checked pieces of a URL: user and password are percent-decoded; `netloc` has no credentials."""

    scheme: str
    host: str
    port: int | None
    user: str | None
    password: str | None
    path: str
    query: str

    @property
    def netloc(self) -> str:
        """host[:port], an IPv6 host in brackets, without user:pass."""
        netloc = self.host if ":" not in self.host else f"[{self.host}]"
        return netloc + (f":{self.port}" if self.port else "")


def parse_url(url: str, *, what: str = "camera URL", schemes: tuple[str, ...] = ("http", "https"),
              example: str = "http://user:pass@host[:port]") -> ParsedURL:
    """Parse and check a camera/broker URL; every problem is one SourceError naming the URL (password as ***).

    Unlike `urllib.parse.urlsplit` it never raises ValueError: an unclosed IPv6 bracket, a port that is
    not a number or is out of 1..65535, a missing host or a scheme not in `schemes` all become
    `SourceError("<what> 'http://root:***@...' has an invalid port")` and the like. `what` names the URL
    in messages ("camera URL", "MQTT broker URL"); `example` is shown when the URL has the wrong shape.
    """
    text = str(url).strip()
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # "Invalid IPv6 URL": an unclosed [
        reason = "an unclosed [ in its IPv6 host" if "IPv6" in str(exc) else f"a syntax error ({exc})"
        raise SourceError(f"{what} {redact(text)!r} has {reason}") from None
    if parts.scheme.lower() not in schemes:
        starts = " or ".join(f"{s}://" for s in schemes)
        raise SourceError(f"{what} must look like {example} (starting with {starts}), got {redact(text)!r}")
    if not parts.hostname:
        raise SourceError(f"{what} {redact(text)!r} has no host name")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise SourceError(f"{what} {redact(text)!r} has an invalid port (use a number in 1..65535)")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return ParsedURL(parts.scheme.lower(), parts.hostname, port, user, password, parts.path, parts.query)


def camera_settings(url: str) -> dict:
    """Split http://user:pass@host:port into the edge config's camera section.

    Missing credentials come from $CAMLYTICS_USER / $CAMLYTICS_PASSWORD, as for `snapshot` and the sources.
    """
    parsed = parse_url(url, schemes=("http",))
    return {
        "url": f"http://{parsed.netloc}",
        "user": parsed.user or os.environ.get("CAMLYTICS_USER"),
        "password": parsed.password if parsed.password is not None else os.environ.get("CAMLYTICS_PASSWORD"),
    }


def mqtt_settings(url: str, ca_file: str | None = None) -> dict:
    """Split mqtt[s]://user:pass@host:port into the edge config's mqtt section; mqtts is MQTT over TLS
    (port 8883 by default), its broker certificate checked against `ca_file` (else the system CA store)."""
    parsed = parse_url(url if "://" in url else "mqtt://" + url, what="MQTT broker URL", schemes=("mqtt", "mqtts"),
                       example="mqtt[s]://[user:pass@]host[:port]")
    tls = parsed.scheme == "mqtts"
    if ca_file is not None and not tls:
        raise CamlyticsError("--mqtt-ca needs an mqtts:// broker URL (MQTT over TLS)")
    if ca_file is not None and not os.path.isfile(ca_file):
        raise CamlyticsError(f"--mqtt-ca {ca_file}: no such file")
    return {
        "host": parsed.host,
        "port": parsed.port or (8883 if tls else 1883),
        "user": parsed.user,
        "password": parsed.password or None,
        "tls": tls,
        "ca_file": os.path.abspath(ca_file) if ca_file is not None else None,
    }
