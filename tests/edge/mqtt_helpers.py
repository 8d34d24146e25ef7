"""MQTT test helpers: a paho-mqtt subscriber (the independent client that checks what we publish,
optionally over TLS), a throw-away PKI made with the `openssl` CLI, a mosquitto with a TLS listener,
and a runner of the edge MQTT client over TLS inside any interpreter given as an argv prefix
(CPython, the PyPI MicroPython, or a firmware under qemu: `["qemu-arm", "/path/micropython"]`)."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time

import paho.mqtt.client as paho
import pytest

from tests.conftest import Mosquitto

SRC = pathlib.Path(__file__).resolve().parents[2] / "src"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


class Subscriber:
    """Subscribes to `topic` on a broker and records (topic, payload, retain) in arrival order."""

    def __init__(self, host: str, port: int, topic: str = "#", ca_file: str | os.PathLike | None = None) -> None:
        """`ca_file`: connect over TLS, verifying the broker against that CA certificate (PEM)."""
        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{id(self)}")
        if ca_file is not None:
            self._client.tls_set(ca_certs=str(ca_file))
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


# --- TLS: certificates, broker, and the edge client in any interpreter ---------------------------


@dataclasses.dataclass(frozen=True)
class TestPKI:
    """A CA, a server certificate it signed for 127.0.0.1 and localhost, and an unrelated CA."""

    __test__ = False  # not a test class, whatever its name
    ca: pathlib.Path  # PEM
    ca_der: pathlib.Path  # the same CA certificate, DER
    server_cert: pathlib.Path
    server_key: pathlib.Path
    other_ca: pathlib.Path  # PEM, signed nothing we use
    bundle: pathlib.Path  # PEM: other_ca then ca (a CA file holding several certificates)


def _openssl(*args: str, cwd: pathlib.Path) -> None:
    proc = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if proc.returncode:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {proc.stderr[-1000:]}")


def make_test_pki(directory: pathlib.Path | str) -> TestPKI:
    """Generate the certificates with the `openssl` CLI (EC P-256 keys, valid 2 days) in `directory`."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    for name, cn in (("ca", "camlytics test CA"), ("other-ca", "unrelated test CA")):
        _openssl("req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
                 "-subj", f"/CN={cn}", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "server.ext", cwd=d)
    _openssl("x509", "-in", "ca.crt", "-outform", "DER", "-out", "ca.der", cwd=d)
    (d / "bundle.crt").write_text((d / "other-ca.crt").read_text() + (d / "ca.crt").read_text())
    return TestPKI(d / "ca.crt", d / "ca.der", d / "server.crt", d / "server.key", d / "other-ca.crt",
                   d / "bundle.crt")


class TLSMosquitto(Mosquitto):
    """A real mosquitto whose only listener (127.0.0.1:`port`) speaks MQTT over TLS with `pki`'s server
    certificate; `.start()`, `.stop()`, `.host`, `.port` as for the plain broker."""

    def __init__(self, workdir: pathlib.Path, pki: TestPKI, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.pki = pki
        # mosquitto started as root drops to the "mosquitto" user, who cannot read a key under a
        # private pytest temporary directory: stay root then (tests only)
        user = "user root\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
        self.config.write_text(
            f"listener {self.port} {self.host}\ncafile {pki.ca}\ncertfile {pki.server_cert}\n"
            f"keyfile {pki.server_key}\nallow_anonymous true\npersistence false\n{user}"
            f"log_dest file {self.log}\n"
        )


@pytest.fixture(scope="module")
def tls_pki(tmp_path_factory) -> TestPKI:
    """Certificates made for this test module (see make_test_pki)."""
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_mosquitto(tmp_path_factory, tls_pki):
    """A running mosquitto with a TLS listener on a free 127.0.0.1 port, certificate from `tls_pki`."""
    broker = TLSMosquitto(tmp_path_factory.mktemp("mosquitto-tls"), tls_pki)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def run_edge_script(
    argv: list[str],
    script: str,
    args: list[str] | tuple[str, ...] = (),
    *,
    path: list[str] | None = None,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess:
    """Run `script` with the interpreter `argv` (e.g. [sys.executable], [micropython],
    ["qemu-arm", "/path/micropython"]), the edge package importable from `path` (default: MicroPython's
    frozen modules, then <repo>/src; pass [".frozen"] to test only a firmware's frozen package)."""
    path = [".frozen", str(SRC)] if path is None else path
    env = dict(os.environ, MICROPYPATH=os.pathsep.join(path), PYTHONPATH=os.pathsep.join(path))
    with tempfile.TemporaryDirectory(prefix="edge-script-") as tmp:
        file = pathlib.Path(tmp) / "script.py"
        file.write_text(script)
        return subprocess.run([*argv, str(file), *args], cwd=tmp, env=env, capture_output=True, text=True,
                              timeout=timeout)


# One script, portable between CPython and MicroPython: each line of output is "<case> <result>",
# the result being "ok ..." or "MQTTError: <message>" or "<OtherType>: <message>" (a bug).
EDGE_TLS_SCRIPT = """
import sys
from camlytics.edge.mqtt import MQTTClient, MQTTError, ReconnectingPublisher

host, port, plain_port, ca, ca_der, other_ca, bundle, topic = sys.argv[1:9]
port = int(port)
plain_port = int(plain_port)

def case(name, fn):
    try:
        print(name, "ok", fn())
    except MQTTError as exc:
        print(name, "MQTTError:", exc)
    except Exception as exc:
        print(name, type(exc).__name__ + ":", exc)

def publish(client_id, value, **kw):
    c = MQTTClient(client_id, host, port, timeout=10, tls=True, **kw)
    c.connect()
    c.publish(topic, value, True, 1)
    c.ping()
    c.poll()
    c.disconnect()
    return c.url

def reconnecting():
    log = []
    pub = ReconnectingPublisher(MQTTClient("edge-tls-r", host, port, timeout=10, tls=True, ca_file=ca),
                                log=log.append)
    if not pub.publish(topic + "/r", "reconnecting", True, 1):
        raise MQTTError("not published: %s" % log)
    pub.client.disconnect()
    return log[0]

case("pem", lambda: publish("edge-tls-pem", "pem", ca_file=ca))
case("der", lambda: publish("edge-tls-der", "der", ca_file=ca_der))
case("bundle", lambda: publish("edge-tls-bundle", "bundle", ca_file=bundle))
case("localhost", lambda: publish("edge-tls-name", "localhost", ca_file=ca, server_hostname="localhost"))
case("reconnecting", reconnecting)
case("wrong_ca", lambda: publish("edge-tls-bad", "wrong_ca", ca_file=other_ca))
case("wrong_name", lambda: publish("edge-tls-bad", "wrong_name", ca_file=ca, server_hostname="example.com"))
case("system_store", lambda: publish("edge-tls-sys", "system_store"))
case("missing_ca", lambda: publish("edge-tls-x", "x", ca_file=ca + ".missing"))
def plain():
    c = MQTTClient("edge-plain", host, port, timeout=10)
    c.connect()
    c.publish(topic, "plain", True, 1)
    return c.url
case("plain_to_tls_port", plain)
case("tls_to_plain_port", lambda: MQTTClient("edge-tls-p", host, plain_port, timeout=10, tls=True,
                                             ca_file=ca).connect())
print("done")
"""


def run_edge_tls_checks(argv: list[str], broker: TLSMosquitto, plain_port: int, topic: str,
                        path: list[str] | None = None) -> dict[str, str]:
    """Run EDGE_TLS_SCRIPT in the interpreter `argv` against `broker` (and a plain broker on
    `plain_port`): {case: result}. Fails the test on a non-zero exit, a traceback or stderr output."""
    pki = broker.pki
    proc = run_edge_script(argv, EDGE_TLS_SCRIPT, [broker.host, str(broker.port), str(plain_port), str(pki.ca),
                                                   str(pki.ca_der), str(pki.other_ca), str(pki.bundle), topic], path=path)
    if proc.returncode or proc.stderr.strip() or "Traceback" in proc.stdout \
            or not proc.stdout.strip().endswith("done"):
        pytest.fail(f"{argv} exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}"
                    f"\n--- stderr ---\n{proc.stderr[-4000:]}", pytrace=False)
    results = {}
    for line in proc.stdout.splitlines()[:-1]:
        name, _, result = line.partition(" ")
        results[name] = result
    return results


def assert_edge_tls_client(argv: list[str], broker: TLSMosquitto, plain_port: int, topic: str = "edge/tls",
                           path: list[str] | None = None) -> dict[str, str]:
    """The whole TLS behaviour of the edge MQTT client inside the interpreter `argv`: publishes over
    TLS (PEM CA, DER CA, a PEM bundle of two CAs, name checked as 'localhost', through ReconnectingPublisher) reach a paho
    subscriber over TLS; a wrong CA, a wrong name, the system store (which lacks the test CA) and a
    missing CA file are each one MQTTError line; plain MQTT to the TLS port and TLS to a plain port
    fail cleanly. Returns the per-case results."""
    sub = Subscriber(broker.host, broker.port, topic + "/#", ca_file=broker.pki.ca)
    sub2 = Subscriber(broker.host, broker.port, topic, ca_file=broker.pki.ca)
    try:
        results = run_edge_tls_checks(argv, broker, plain_port, topic, path=path)
        for name in ("pem", "der", "bundle", "localhost"):
            assert results.get(name, "").startswith("ok mqtts://%s:%d" % (broker.host, broker.port)), results
            sub2.wait_for(lambda t, p, r, name=name: t == topic and p == name)
        assert results["reconnecting"] == "ok mqtt connected to mqtts://%s:%d" % (broker.host, broker.port), results
        sub.wait_for(lambda t, p, r: t == topic + "/r" and p == "reconnecting")
        bad_ca = results["wrong_ca"]
        assert bad_ca.startswith("MQTTError: TLS certificate of MQTT broker %s:%d is not trusted:"
                                 % (broker.host, broker.port)), results
        assert "CA file %s" % broker.pki.other_ca in bad_ca, bad_ca
        assert results["wrong_name"].startswith("MQTTError: TLS certificate of MQTT broker"), results
        assert "name example.com" in results["wrong_name"], results
        # not trusted by the system store, or (MicroPython on a system without a CA bundle) refused
        assert results["system_store"].startswith("MQTTError: "), results
        assert "system CA" in results["system_store"], results
        assert results["missing_ca"].startswith("MQTTError: cannot read CA file"), results
        assert results["plain_to_tls_port"].startswith("MQTTError: "), results
        assert "before CONNACK" in results["plain_to_tls_port"], results
        assert results["tls_to_plain_port"].startswith("MQTTError: TLS handshake with MQTT broker"), results
        time.sleep(0.3)  # nothing of the failed cases may have been published
        published = {p for t, p, r in sub2.messages}
        assert published == {"pem", "der", "bundle", "localhost"}, published
    finally:
        sub.close()
        sub2.close()
    return results
