"""A paho-mqtt subscriber used by tests as the independent client that checks what we publish."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as paho


class Subscriber:
    """Subscribes to `topic` on a broker and records (topic, payload, retain) in arrival order."""

    def __init__(self, host: str, port: int, topic: str = "#") -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{id(self)}")
        self._subscribed = threading.Event()
        self._client.on_message = self._on_message
        self._client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *args: self._subscribed.set()
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        # messages published before the broker acknowledged SUBSCRIBE would be lost (unless retained)
        if not self._subscribed.wait(15):
            self.close()
            raise AssertionError(f"MQTT subscription to {topic!r} on {host}:{port} not acknowledged")

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload.decode(errors="replace"), bool(msg.retain)))

    def wait_for(self, predicate, timeout: float = 20.0):
        """Wait until some recorded message satisfies predicate(topic, payload, retain); return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for message in self.messages:
                    if predicate(*message):
                        return message
            time.sleep(0.02)
        with self._lock:
            seen = list(self.messages)
        raise AssertionError(f"no matching MQTT message within {timeout} s; got {seen[-10:]}")

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()
