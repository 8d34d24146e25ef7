"""An MQTT broker for the demo: mosquitto on a free loopback port, else an embedded amqtt, else none."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")  # Debian puts it outside a user's PATH


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> bool:
    """True once something accepts TCP connections on host:port, False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def mosquitto_command() -> str | None:
    """The mosquitto executable on PATH or where Debian installs it."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if Path(p).is_file()), None)


class Broker:
    """A running broker on 127.0.0.1:`port`; `kind` says which ("mosquitto" or "amqtt"). Context manager."""

    def __init__(self, kind: str, port: int, stop) -> None:
        self.kind, self.host, self.port = kind, "127.0.0.1", port
        self._stop = stop

    def close(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None

    def __enter__(self) -> "Broker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _start_mosquitto(exe: str, timeout: float) -> Broker:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="camlytics-demo-mosquitto-"))
    config = workdir / "mosquitto.conf"
    log = workdir / "mosquitto.log"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest file {log}\n")
    process = subprocess.Popen([exe, "-c", str(config)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)

    if not wait_for_port("127.0.0.1", port, timeout):
        text = log.read_text(errors="replace")[-300:] if log.exists() else ""
        stop()
        raise RuntimeError(f"mosquitto did not start on port {port}: {text}")
    return Broker("mosquitto", port, stop)


def _start_amqtt(timeout: float) -> Broker:
    """amqtt (pure Python) in a background thread with its own event loop."""
    import asyncio

    from amqtt.broker import Broker as AmqttBroker  # optional: pip install amqtt

    port = free_port()
    loop = asyncio.new_event_loop()
    config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
              "sys_interval": 0, "auth": {"allow-anonymous": True}, "topic-check": {"enabled": False}}
    broker = AmqttBroker(config, loop=loop)
    thread = threading.Thread(target=loop.run_forever, name="demo-amqtt", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(broker.start(), loop).result(timeout)

    def stop() -> None:
        try:
            asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)

    return Broker("amqtt", port, stop)


def start_broker(timeout: float = 10.0) -> tuple[Broker | None, str]:
    """A running broker and a line saying which, or (None, why there is none)."""
    exe = mosquitto_command()
    if exe:
        broker = _start_mosquitto(exe, timeout)
        return broker, f"mosquitto ({exe}) on 127.0.0.1:{broker.port}"
    fallback = "the app runs without MQTT and the demo reads its state events from the camera's app log instead"
    try:
        broker = _start_amqtt(timeout)
    except ImportError:
        return None, ("no MQTT broker: mosquitto is not installed (apt install mosquitto) and the pure-Python "
                      f"amqtt is not either (pip install amqtt); {fallback}")
    except Exception as exc:  # noqa: BLE001 - an optional broker's own errors (config, event loop, port)
        return None, f"no MQTT broker: mosquitto is not installed and amqtt did not start ({exc}); {fallback}"
    return broker, f"embedded amqtt on 127.0.0.1:{broker.port} (mosquitto not found)"
