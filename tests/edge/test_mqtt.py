"""The edge MQTT 3.1.1 client against a real mosquitto broker, under CPython and real MicroPython."""

from __future__ import annotations

import socket

import pytest

from camlytics.edge.mqtt import MQTTClient, MQTTError, ReconnectingPublisher, _encode_length
from tests.edge.mqtt_helpers import Subscriber


@pytest.fixture
def subscriber(mosquitto):
    sub = Subscriber(mosquitto.host, mosquitto.port)
    yield sub
    sub.close()


def test_remaining_length_encoding_follows_the_spec():
    assert _encode_length(0) == b"\x00"
    assert _encode_length(127) == b"\x7f"
    assert _encode_length(128) == b"\x80\x01"
    assert _encode_length(16383) == b"\xff\x7f"
    assert _encode_length(2097152) == b"\x80\x80\x80\x01"


def test_publish_qos0_and_qos1_with_retain(mosquitto, subscriber):
    client = MQTTClient("t1", mosquitto.host, mosquitto.port)
    client.connect()
    client.publish("cam/a", "zero")
    client.publish("cam/b", b"one", retain=True, qos=1)
    client.disconnect()
    subscriber.wait_for(lambda t, p, r: t == "cam/a" and p == "zero")
    subscriber.wait_for(lambda t, p, r: t == "cam/b" and p == "one")
    # a subscriber arriving later still gets the retained message
    late = Subscriber(mosquitto.host, mosquitto.port, "cam/b")
    try:
        late.wait_for(lambda t, p, r: p == "one" and r)
    finally:
        late.close()


def test_last_will_is_published_when_the_client_vanishes(mosquitto, subscriber):
    client = MQTTClient("t2", mosquitto.host, mosquitto.port, keepalive=5)
    client.set_last_will("cam/availability", "offline", retain=True)
    client.connect()
    client.publish("cam/availability", "online", retain=True)
    subscriber.wait_for(lambda t, p, r: t == "cam/availability" and p == "online")
    client.sock.shutdown(socket.SHUT_RDWR)  # vanish without DISCONNECT
    client.close()
    subscriber.wait_for(lambda t, p, r: t == "cam/availability" and p == "offline")


def test_polite_disconnect_sends_no_last_will(mosquitto, subscriber):
    client = MQTTClient("t3", mosquitto.host, mosquitto.port)
    client.set_last_will("cam/will3", "offline")
    client.connect()
    client.disconnect()
    client2 = MQTTClient("t3b", mosquitto.host, mosquitto.port)
    client2.connect()
    client2.publish("cam/marker", "done", qos=1)
    client2.disconnect()
    subscriber.wait_for(lambda t, p, r: t == "cam/marker")
    assert not [m for m in subscriber.messages if m[0] == "cam/will3"]


def test_keepalive_ping_gets_an_answer(mosquitto):
    client = MQTTClient("t4", mosquitto.host, mosquitto.port, keepalive=1)
    client.connect()
    client.ping()
    import time

    deadline = time.monotonic() + 5
    while client.ping_outstanding and time.monotonic() < deadline:
        client.poll()
        time.sleep(0.05)
    assert not client.ping_outstanding
    client.disconnect()


def test_unreachable_broker_is_a_clear_error(free_port):
    client = MQTTClient("t5", "127.0.0.1", free_port, timeout=1)
    with pytest.raises(MQTTError, match="cannot connect"):
        client.connect()


def test_reconnects_after_broker_restart_and_republishes(mosquitto, tmp_path):
    connects = []

    def on_connect(pub):
        connects.append(1)
        pub.client.publish("cam/state", "open", retain=True, qos=1)

    pub = ReconnectingPublisher(MQTTClient("t6", mosquitto.host, mosquitto.port, keepalive=2),
                                on_connect=on_connect, min_backoff_ms=100, max_backoff_ms=400)
    assert pub.ensure()
    mosquitto.stop()
    import time

    deadline = time.monotonic() + 10
    while pub.connected and time.monotonic() < deadline:
        pub.poll()
        pub.publish("cam/x", "y")
        time.sleep(0.05)
    assert not pub.connected
    mosquitto.start()  # a fresh broker without the retained message
    sub = Subscriber(mosquitto.host, mosquitto.port, "cam/state")
    try:
        deadline = time.monotonic() + 10
        while not pub.connected and time.monotonic() < deadline:
            pub.poll()
            time.sleep(0.05)
        assert pub.connected and len(connects) == 2
        sub.wait_for(lambda t, p, r: p == "open")
    finally:
        sub.close()


def test_client_runs_under_micropython(mosquitto, subscriber, micropython):
    script = f"""
from camlytics.edge.mqtt import MQTTClient
c = MQTTClient("mpy", "{mosquitto.host}", {mosquitto.port})
c.set_last_will("mpy/availability", "offline", True)
c.connect()
c.publish("mpy/state", "closed", True, 1)
c.publish("mpy/plain", "hello")
c.ping()
c.poll()
c.disconnect()
print("ok")
"""
    assert micropython(script).strip().endswith("ok")
    subscriber.wait_for(lambda t, p, r: t == "mpy/state" and p == "closed")
    subscriber.wait_for(lambda t, p, r: t == "mpy/plain" and p == "hello")
