"""`camlytics run`: run the edge state-sensor app from the host, under MicroPython or CPython."""

from __future__ import annotations

import argparse
import sys

from camlytics.runtime.launch import (MQTT_PASSWORD_ENV, RUNTIMES, app_config, check_camera_credentials,
                                      check_model_file, check_states, password_in_url, read_password_file,
                                      run_edge_app)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the edge app (fetch -> infer -> debounced state -> MQTT/VAPIX/webhook) against a camera",
        description="Run the same edge app that runs on the camera, here on the host: under MicroPython "
        "(default when the `micropython` command is installed) or CPython.",
    )
    p.add_argument("model_dir", help="model directory (with model.cml) or a model.cml file")
    p.add_argument("--camera", required=True, help="camera URL, http://user@host[:port]; the password from "
                   "--camera-password-file or $CAMLYTICS_PASSWORD (one in the URL shows in `ps`)")
    p.add_argument("--camera-password-file", metavar="FILE", help="file whose first line is the camera password")
    p.add_argument("--mqtt", help="MQTT broker, mqtt://[user@]host[:port], or mqtts://... for MQTT over TLS "
                   "(port 8883 by default); the password from --mqtt-password-file or $CAMLYTICS_MQTT_PASSWORD")
    p.add_argument("--mqtt-password-file", metavar="FILE", help="file whose first line is the MQTT password")
    p.add_argument("--mqtt-ca", metavar="FILE", help="mqtts: CA certificate(s) (PEM or DER) the broker's certificate "
                   "must chain to (default: the system CA store)")
    p.add_argument("--ha-discovery", action="store_true", help="publish Home Assistant discovery config")
    p.add_argument("--node-id", default="door", help="MQTT node id (topic camlytics/<node-id>/state)")
    p.add_argument("--virtual-input", type=int, metavar="N", help="activate VAPIX virtual input N while open")
    p.add_argument("--webhook", metavar="URL", help="POST a JSON event to URL on each state change")
    p.add_argument("--runtime", default=None, metavar="|".join(RUNTIMES),
                   help="interpreter for the edge app (default: micropython if installed); c: CPython with "
                   "the model compiled to C (ctypes) for inference; firmware:armv7hf|aarch64|x86_64: the camera "
                   "firmware (built or cached, docs/firmware.md), under qemu-user for ARM")
    p.add_argument("--fps", type=float, default=1.0, help="frames per second (default 1)")
    p.add_argument("--resolution", default="640x360", help="snapshot resolution (default 640x360)")
    p.add_argument("--stable-frames", type=int, default=3, help="frames that must agree before a change")
    p.add_argument("--threshold", type=float, default=0.6, help="minimum confidence of a vote")
    p.add_argument("--min-confidence", type=float, metavar="P", help="a frame whose top-class probability is "
                   "below P, in [0, 1), votes for the state `unknown` (default: the model's min_confidence, else 0)")
    p.add_argument("--active-class", metavar="NAME", help="the class that means \"something is there\": it "
                   "drives --virtual-input and the webhook's `active` (default: the model's active_class, else "
                   "open, else occupied, else the second class)")
    p.add_argument("--spool", metavar="DIR", help="keep surprising frames here (for `camlytics collect DIR`)")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0 = run until Ctrl-C)")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Check the settings and the camera's credentials, then run the edge app until it ends."""
    from camlytics.model.modelfile import locate_model_file

    model_file = locate_model_file(args.model_dir).resolve()
    cfg = app_config(model_file, args.camera, resolution=args.resolution,
                     fps=args.fps, max_frames=args.max_frames, stable_frames=args.stable_frames,
                     threshold=args.threshold, mqtt=args.mqtt, node_id=args.node_id, ha_discovery=args.ha_discovery,
                     virtual_input=args.virtual_input, webhook=args.webhook, spool=args.spool,
                     mqtt_ca=args.mqtt_ca, min_confidence=args.min_confidence, active_class=args.active_class,
                     camera_password=read_password_file(args.camera_password_file, "--camera-password-file"),
                     mqtt_password=read_password_file(args.mqtt_password_file, "--mqtt-password-file"))
    # here, not in the edge app, and before the camera is asked: a broken model or a class it does not
    # have is this command's one-line error
    check_states(cfg, check_model_file(model_file).meta)
    check_camera_credentials(cfg["camera"], cfg["camera"]["resolution"])
    for option, url, env in (("--camera", args.camera, "CAMLYTICS_PASSWORD"), ("--mqtt", args.mqtt, MQTT_PASSWORD_ENV)):
        if url and password_in_url(url):  # after the checks: an error stays one line
            print(f"camlytics run: warning: the password in {option} shows in `ps` and the shell history; use "
                  f"{option}-password-file FILE or ${env}", file=sys.stderr)
    return run_edge_app(cfg, args.runtime)
