"""MQTT over TLS (mqtts) in the edge client, against a real mosquitto TLS listener whose certificates
the test makes with the openssl CLI: under CPython in-process, and inside other interpreters
(CPython and the PyPI MicroPython here; a firmware via `assert_edge_tls_client(firmware_argv(arch), ...)`)."""

from __future__ import annotations

import sys
import time

import pytest

from camlytics.edge import config
from camlytics.edge.mqtt import MQTTClient, MQTTError, ReconnectingPublisher
from tests.edge.conftest import micropython_executable
from tests.edge.mqtt_helpers import Subscriber, assert_edge_tls_client, tls_mosquitto, tls_pki  # noqa: F401

INTERPRETERS = {
    "cpython": lambda: [sys.executable],
    "micropython": lambda: [str(micropython_executable())],
}


@pytest.mark.parametrize("interpreter", sorted(INTERPRETERS))
def test_edge_client_over_tls_in_interpreter(interpreter, tls_mosquitto, mosquitto):
    """Publishes with a good CA arrive; wrong CA, wrong name, system store, missing CA file, plain MQTT
    to the TLS port and TLS to the plain port are each one MQTTError line (no traceback)."""
    results = assert_edge_tls_client(INTERPRETERS[interpreter](), tls_mosquitto, mosquitto.port)
    assert len(results) == 11


def test_cpython_publishes_over_tls_with_keepalive(tls_mosquitto, tls_pki):
    sub = Subscriber(tls_mosquitto.host, tls_mosquitto.port, "cam/tls/#", ca_file=tls_pki.ca)
    try:
        client = MQTTClient("tls1", tls_mosquitto.host, tls_mosquitto.port, keepalive=1, tls=True,
                            ca_file=str(tls_pki.ca))
        client.set_last_will("cam/tls/availability", "offline", retain=True)
        client.connect()
        client.publish("cam/tls/state", "open", retain=True, qos=1)
        # idle past the keepalive: poll() pings, reads the PINGRESP through TLS, never blocks or fails
        pongs = 0
        deadline = time.monotonic() + 15  # two keepalive rounds take about 2 s; a loaded machine may take longer
        while pongs < 2 and time.monotonic() < deadline:
            outstanding = client.ping_outstanding
            client.poll()
            pongs += outstanding and not client.ping_outstanding
            time.sleep(0.02)
        assert pongs >= 2
        client.publish("cam/tls/state", "closed", qos=1)
        sub.wait_for(lambda t, p, r: t == "cam/tls/state" and p == "closed")
        client.close()  # vanish: the broker sends the last will, over TLS as well
        sub.wait_for(lambda t, p, r: t == "cam/tls/availability" and p == "offline")
    finally:
        sub.close()


def test_reconnecting_publisher_survives_a_tls_broker_restart(tls_mosquitto, tls_pki):
    logs = []
    pub = ReconnectingPublisher(MQTTClient("tls2", tls_mosquitto.host, tls_mosquitto.port, keepalive=2,
                                           tls=True, ca_file=str(tls_pki.ca_der)),
                                min_backoff_ms=100, max_backoff_ms=400, log=logs.append)
    assert pub.publish("cam/tls/x", "1", qos=1) and logs[-1].endswith("mqtts://%s:%d" % (
        tls_mosquitto.host, tls_mosquitto.port))
    tls_mosquitto.stop()
    deadline = time.monotonic() + 10
    while pub.connected and time.monotonic() < deadline:
        pub.poll()
        pub.publish("cam/tls/x", "2")
        time.sleep(0.05)
    assert not pub.connected
    tls_mosquitto.start()
    sub = Subscriber(tls_mosquitto.host, tls_mosquitto.port, "cam/tls/x", ca_file=tls_pki.ca)
    try:
        deadline = time.monotonic() + 10
        while not pub.publish("cam/tls/x", "3", qos=1) and time.monotonic() < deadline:
            time.sleep(0.05)
        sub.wait_for(lambda t, p, r: p == "3")
        assert pub.connects == 2
    finally:
        sub.close()
        pub.client.disconnect()


def test_wrong_ca_is_one_clear_error(tls_mosquitto, tls_pki):
    client = MQTTClient("tls3", tls_mosquitto.host, tls_mosquitto.port, tls=True, ca_file=str(tls_pki.other_ca))
    with pytest.raises(MQTTError) as info:
        client.connect()
    message = str(info.value)
    assert "\n" not in message and message.startswith(
        "TLS certificate of MQTT broker %s:%d is not trusted: " % (tls_mosquitto.host, tls_mosquitto.port))
    assert str(tls_pki.other_ca) in message and client.sock is None
    name = MQTTClient("tls3b", tls_mosquitto.host, tls_mosquitto.port, tls=True, ca_file=str(tls_pki.ca),
                      server_hostname="camera.example")
    with pytest.raises(MQTTError, match="not trusted: .*camera.example"):
        name.connect()


def test_plain_mqtt_to_the_tls_port_fails_cleanly(tls_mosquitto):
    client = MQTTClient("tls4", tls_mosquitto.host, tls_mosquitto.port, timeout=5)
    with pytest.raises(MQTTError, match="before CONNACK .*enable TLS"):
        client.connect()
    assert client.sock is None


def test_tls_to_a_plain_port_fails_cleanly(mosquitto, tls_pki):
    client = MQTTClient("tls5", mosquitto.host, mosquitto.port, timeout=5, tls=True, ca_file=str(tls_pki.ca))
    with pytest.raises(MQTTError, match="TLS handshake with MQTT broker .* failed .*is it a TLS port"):
        client.connect()
    assert client.sock is None


def test_bad_ca_files_are_refused_when_the_client_is_made(tmp_path, tls_pki):
    with pytest.raises(MQTTError, match="cannot read CA file"):
        MQTTClient("c", "h", tls=True, ca_file=str(tmp_path / "missing.crt"))
    with pytest.raises(MQTTError, match="holds no certificate"):
        MQTTClient("c", "h", tls=True, ca_file=str(tls_pki.server_key))
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
    with pytest.raises(MQTTError, match="garbage.crt: certificate 1 is not valid base64"):
        MQTTClient("c", "h", tls=True, ca_file=str(garbage))
    garbage.write_bytes(b"\x30\x03abc")  # DER-looking, not a certificate
    with pytest.raises(MQTTError, match="garbage.crt: not a valid X.509 certificate"):
        MQTTClient("c", "h", tls=True, ca_file=str(garbage))
    with pytest.raises(MQTTError, match="TLS is off"):
        MQTTClient("c", "h", ca_file=str(tls_pki.ca))


def test_bad_ca_files_are_refused_under_micropython(tmp_path, tls_pki, micropython):
    garbage = tmp_path / "garbage.der"
    garbage.write_bytes(b"\x30\x03abc")  # DER-looking, not a certificate
    bad_pem = tmp_path / "bad.crt"
    bad_pem.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
    out = micropython(f"""
from camlytics.edge.mqtt import MQTTClient, MQTTError
for ca in ("{tmp_path}/missing.crt", "{tls_pki.server_key}", "{garbage}", "{bad_pem}"):
    try:
        MQTTClient("c", "h", tls=True, ca_file=ca)
        print("accepted", ca)
    except MQTTError as exc:
        print(exc)
""")
    lines = out.strip().splitlines()
    assert lines[0].startswith("cannot read CA file") and "holds no certificate" in lines[1]
    assert lines[2] == "CA file %s: certificate 1 is not a valid X.509 certificate" % garbage
    assert lines[3] == "CA file %s: certificate 1 is not valid base64" % bad_pem


def test_default_port_follows_tls():
    assert MQTTClient("c", "h").port == 1883
    assert MQTTClient("c", "h", tls=True).port == 8883 and MQTTClient("c", "h", tls=True).url == "mqtts://h:8883"
    assert MQTTClient("c", "h", 1884, tls=True).port == 1884


def test_config_mqtt_tls_settings():
    assert config.validate({"mqtt": {"host": "b"}})["mqtt"]["port"] == 1883
    mq = config.validate({"mqtt": {"host": "b", "tls": True}})["mqtt"]
    assert mq["port"] == 8883 and mq["tls"] is True and mq["ca_file"] is None
    mq = config.validate({"mqtt": {"host": "b", "tls": True, "ca_file": "/etc/ca.crt", "port": 9883}})["mqtt"]
    assert mq["port"] == 9883 and mq["ca_file"] == "/etc/ca.crt"
    assert config.validate({"mqtt": mq})["mqtt"] == mq  # a validated config validates to itself
    with pytest.raises(config.ConfigError, match="mqtt.tls must be true or false, got 'yes'"):
        config.validate({"mqtt": {"tls": "yes"}})
    with pytest.raises(config.ConfigError, match="mqtt.ca_file is set but mqtt.tls is false"):
        config.validate({"mqtt": {"ca_file": "/etc/ca.crt"}})
    with pytest.raises(config.ConfigError, match="mqtt.ca_file must be the path"):
        config.validate({"mqtt": {"tls": True, "ca_file": ""}})
    with pytest.raises(config.ConfigError, match="mqtt.port"):
        config.validate({"mqtt": {"tls": True, "port": 0}})
