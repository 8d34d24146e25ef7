"""`camlytics simcam`: run the simulated Axis camera until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from camlytics.errors import CamlyticsError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `simcam` sub-command."""
    p = subparsers.add_parser(
        "simcam",
        help="run a simulated Axis camera (VAPIX over HTTP) showing a synthetic door scene",
        description="Serve a synthetic door scene over the VAPIX calls camlytics uses (image.cgi, "
        "mjpg/video.cgi, basicdeviceinfo.cgi, apidiscovery.cgi, param.cgi, virtual inputs) with "
        "Digest authentication. Ground truth: GET /camlytics-sim/truth?t=SECONDS.",
    )
    from camlytics.sim.presets import PRESETS  # dataclasses only: `simcam --help` stays fast

    p.add_argument("--preset", default="office", choices=sorted(PRESETS),
                   help="scene preset (the installation); default office; see docs/simulator.md")
    p.add_argument("--seed", type=int, default=0, help="simulated day (timeline seed); default 0")
    p.add_argument("--speed", type=float, default=1.0,
                   help="simulated seconds per wall-clock second (e.g. 60: one hour per minute); default 1")
    p.add_argument("--start", default="12:00", help="simulated time of day at start: HH:MM[:SS] or seconds; default 12:00")
    p.add_argument("--resolution", default="640x360",
                   help="default image resolution (image.cgi without resolution=); default 640x360")
    p.add_argument("--host", default="127.0.0.1", help="address to bind; default 127.0.0.1 (this machine only)")
    p.add_argument("--port", type=int, default=8080, help="TCP port; 0 picks a free one; default 8080")
    p.add_argument("--user", default="root", help="user name for Digest authentication; default root")
    p.add_argument("--password", default=None,
                   help="password (default: $CAMLYTICS_SIM_PASSWORD, else 'pass')")
    p.add_argument("--viewer", action="append", default=[], metavar="USER:PASS",
                   help="add a user with the viewer role (repeatable); viewers get 403 on admin-only endpoints")
    p.add_argument("--operator", action="append", default=[], metavar="USER:PASS",
                   help="add a user with the operator role (repeatable)")
    p.add_argument("--arch", default="aarch64", choices=["armv7hf", "aarch64", "x86_64"],
                   help="CPU architecture the camera reports and installs packages for (armv7hf: ARTPEC-7, "
                        "aarch64: ARTPEC-8); ARM packages run here under qemu-user; default aarch64")
    p.add_argument("--os", dest="os_version", default="11.11", metavar="VERSION",
                   help="AXIS OS version it reports and enforces (11.11, 12.6, 13.0, or MAJOR.MINOR.BUILD): "
                        "13 installs only signed schema-2 packages, 12 unsigned ones only after AllowUnsigned; "
                        "default 11.11")
    p.add_argument("--no-auth", action="store_true", help="serve without authentication")
    p.add_argument("--basic", choices=["also", "only"], help="accept HTTP Basic authentication too (also) or alone (only)")
    p.set_defaults(func=run_simcam)


def run_simcam(args: argparse.Namespace) -> int:
    """Start the server and block until interrupted."""
    from camlytics.validate import is_loopback
    from camlytics.sim.camera import SimulatedCamera

    if args.no_auth and (args.basic or args.password):
        raise CamlyticsError(f"--no-auth serves without authentication; leave out "
                             f"{'--basic' if args.basic else '--password'}")
    password = args.password or os.environ.get("CAMLYTICS_SIM_PASSWORD") or "pass"
    if args.no_auth and (args.viewer or args.operator):
        raise CamlyticsError("--no-auth serves everyone as admin; leave out --viewer/--operator")
    users = {}
    for role, entries in (("viewer", args.viewer), ("operator", args.operator)):
        for entry in entries:
            name, sep, secret = entry.partition(":")
            if not sep or not name or not secret:
                raise CamlyticsError(f"--{role} {entry.split(':')[0]!r}...: give USER:PASSWORD")
            if name in users or name == args.user:
                raise CamlyticsError(f"--{role}: user {name!r} is given twice")
            users[name] = (secret, role)
    try:
        cam = SimulatedCamera(
            preset=args.preset, seed=args.seed, speed=args.speed, start=args.start,
            auth=None if args.no_auth else (args.user, password),
            basic={None: False, "also": True, "only": "only"}[args.basic],
            host=args.host, port=args.port, default_resolution=args.resolution,
            arch=args.arch, os_version=args.os_version, users=users,
        )
        cam.start()
    except (ValueError, OSError) as exc:
        raise CamlyticsError(str(exc)) from None
    schemes = {None: "Digest", "also": "Digest or Basic", "only": "Basic"}[args.basic]
    auth = "no authentication" if args.no_auth else f"{schemes} auth as user {args.user!r}"
    print(f"simulated Axis camera on {cam.url}  preset={cam.preset} seed={cam.seed} speed={cam.speed:g}x, {auth}")
    print(f"  {cam.arch}, AXIS OS {cam.os_version}" + "".join(f", {role} {name!r}" for name, (_, role) in users.items()))
    print(f"  snapshot: {cam.url}/axis-cgi/jpg/image.cgi?resolution=640x360   truth: {cam.url}/camlytics-sim/truth")
    if not is_loopback(args.host):
        default = " with the default password 'pass'" if not args.no_auth and password == "pass" else ""
        print(f"camlytics simcam: warning: listening on {args.host}{default}: anyone who can reach it can install "
              "and run ACAP packages on this machine", file=sys.stderr, flush=True)
    print("  Ctrl-C to stop", flush=True)

    def interrupt(signum: int, _frame: object) -> None:  # SIGTERM/SIGHUP end it like Ctrl-C: apps stopped too
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
    finally:
        cam.stop()
    return 0
