"""`camlytics fleet annotate`: one annotation session over every sensor's dataset (and `improve --annotate`).

The annotate stage's server and page serve a MultiAnnotationService: the most uncertain frames first across
all sensors (those named in `first`, e.g. frames just pulled from a camera's spool, before everything), each
frame shown with its sensor key and labelled with that sensor's classes, into that sensor's dataset.
"""

from __future__ import annotations

import argparse
import getpass
import socket
from pathlib import Path
from typing import Any

from camlytics.errors import FleetError


def serve(datasets: dict[str, Path], *, first: dict[str, list[int]] | None = None, host: str = "127.0.0.1",
          port: int = 0, annotator: str | None = None, echo: Any = print) -> int:
    """Serve the datasets until Q in the page or Ctrl-C; returns the stop signal's number (0: Q)."""
    from camlytics.annotate.app import LOOPBACK_HOSTS, MultiAnnotationService, create_app
    from camlytics.annotate.server import AnnotateServer, ServerLimits, server_config

    try:
        who = annotator or getpass.getuser()
    except (KeyError, OSError):
        who = "annotator"
    service = MultiAnnotationService({k: str(v) for k, v in datasets.items()}, annotator=who, first=first)
    try:
        sock = socket.create_server((host, port))
    except OSError as exc:
        raise FleetError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server: AnnotateServer | None = None

    def quit_server() -> None:
        if server is not None:
            server.should_exit = True

    app = create_app(".", annotator=who, on_quit=quit_server, allowed_hosts=[*LOOPBACK_HOSTS, host.lower()],
                     service=service)
    server = AnnotateServer(server_config(app, ServerLimits()))
    bound = sock.getsockname()
    new = sum(len(v) for v in (first or {}).values())
    echo(f"camlytics annotate: http://{bound[0]}:{bound[1]}/  ({len(datasets)} datasets: {', '.join(datasets)}; "
         f"{new} new frames first); press Q in the page or Ctrl-C here when done", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return server.stop_signal or 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `fleet annotate`."""
    from camlytics.fleet.config import add_fleet_option

    p = subparsers.add_parser(
        "annotate", help="label every sensor's frames in one browser session, the most uncertain first",
        description="One annotation server over all sensors' datasets: the least confident frames first across the "
        "fleet, each shown with its sensor (camera/sensor) and that sensor's classes; labels go to its dataset.")
    add_fleet_option(p)
    p.add_argument("--only", metavar="KEY", action="append", help="this sensor only (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free port)")
    p.add_argument("--annotator", default=None, help="name stored with each label (default: the OS user)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """`fleet annotate`: the sensors that have a dataset."""
    from camlytics.fleet.config import load_fleet

    fleet = load_fleet(args.fleet)
    specs = [fleet.sensor(k) for k in args.only] if args.only else fleet.sensors()
    datasets = {s.key: s.dataset for s in specs if s.dataset.is_dir()}
    if not datasets:
        raise FleetError(f"{fleet.path}: no sensor has a dataset yet (camlytics fleet collect)")
    stop = serve(datasets, host=args.host, port=args.port, annotator=args.annotator)
    return 128 + stop if stop else 0
