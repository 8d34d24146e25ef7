"""A scripted loopback TCP server for the fuzz tests: each connection gets the bytes the test set last."""

from __future__ import annotations

import socket
import threading
from typing import Callable


class ScriptedServer:
    """Listens on 127.0.0.1; for every connection, `read_request(conn)` then sends `payload` and closes.

    A real server over real sockets: the clients under test run unchanged."""

    def __init__(self, read_request: Callable[[socket.socket], None]) -> None:
        self.read_request = read_request
        self.payload = b""
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(5)
                try:
                    self.read_request(conn)
                    conn.sendall(self.payload)
                    conn.shutdown(socket.SHUT_WR)
                    conn.recv(1)  # let the client read everything before the close
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "ScriptedServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_http_request(conn: socket.socket) -> None:
    """Read one request head (the clients under test send no body on GET)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk


def read_mqtt_packet(conn: socket.socket) -> None:
    """Read one MQTT packet (the client's CONNECT)."""
    def exact(n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = conn.recv(n - len(out))
            if not chunk:
                raise OSError("closed")
            out += chunk
        return out

    exact(1)
    length, shift = 0, 0
    while True:
        byte = exact(1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    exact(length)
