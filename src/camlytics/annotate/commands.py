"""`camlytics annotate DATASET`: start the labelling web app on this machine and print its URL."""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import socket
import sys

from typing import TYPE_CHECKING

from camlytics.errors import CamlyticsError, DatasetError
from camlytics.validate import is_loopback

if TYPE_CHECKING:
    from camlytics.annotate.server import ServerLimits

DEFAULT_PORT = 8765


def default_annotator() -> str:
    """The OS user name, the default annotator recorded with every label."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "annotator"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `annotate` sub-command."""
    p = subparsers.add_parser(
        "annotate",
        help="label a dataset in the browser (keyboard first)",
        description="Start a local web app to label DATASET. Keys: Up = open, Down = closed, 1..N = class N, "
        "Left/Right = previous/next, Space = skip, U/Backspace = undo, L = last labelled, N = next unlabelled, "
        "G = grid view, R = draw the region of interest, Q = quit.",
    )
    p.add_argument("dataset", metavar="DATASET", help="dataset directory (made by `camlytics collect`)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT}; 0 = any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: only this machine; the app has no login)")
    p.add_argument("--classes", default=None,
                   help="comma-separated class names, e.g. open,closed (default: the dataset's classes)")
    p.add_argument("--annotator", default=None, help="name stored with each label (default: the OS user)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    p.add_argument("--model", default=None, metavar="MODEL_DIR",
                   help="a model directory from `camlytics train`: the page shows its \"do I have enough labels?\" "
                   "advice (the CV score and the class / light condition with the most CV errors)")
    limits = p.add_argument_group("server limits (a slow or hostile client cannot hold the server)")
    limits.add_argument("--header-timeout", type=float, default=10.0, metavar="S",
                        help="seconds a client has to send a request's headers (default 10)")
    limits.add_argument("--body-timeout", type=float, default=30.0, metavar="S",
                        help="seconds a client has to send a request's body (default 30)")
    limits.add_argument("--max-connections", type=int, default=256, metavar="N",
                        help="open connections served at once; more get 503 (default 256)")
    p.set_defaults(func=run)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (bound here so the URL is known before the server starts)."""
    if not 0 <= port <= 65535:
        raise CamlyticsError(f"--port {port}: expected 0..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CamlyticsError(f"--host {host!r}: cannot resolve ({exc.strerror})") from None
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this. Without it, Nagle's algorithm and delayed ACKs add ~40 ms to
    # every response (asyncio only sets it itself on sockets it creates).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise CamlyticsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def has_display() -> bool:
    """Whether a graphical browser can open here (else Python may start a text browser in this terminal)."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def server_limits(args: argparse.Namespace) -> "ServerLimits":
    """The --header-timeout, --body-timeout and --max-connections limits, checked."""
    from camlytics.annotate.server import ServerLimits
    from camlytics.validate import check_positive

    return ServerLimits(header_timeout=check_positive("--header-timeout", args.header_timeout),
                        body_timeout=check_positive("--body-timeout", args.body_timeout),
                        max_connections=int(check_positive("--max-connections", args.max_connections, integer=True)))


def run(args: argparse.Namespace) -> int:
    """Check the dataset, start uvicorn, print the URL, serve until Q in the page, Ctrl-C, SIGTERM or SIGHUP.

    A signal stops the server gracefully (labels are written before each reply) and the command exits 128+N."""
    from camlytics.annotate.advice import load_advice
    from camlytics.annotate.app import LOOPBACK_HOSTS, create_app, validate_annotator, validate_classes
    from camlytics.annotate.server import AnnotateServer, server_config
    from camlytics.store import Dataset

    limits = server_limits(args)
    annotator = validate_annotator(args.annotator or default_annotator())
    classes = validate_classes(args.classes.split(",")) if args.classes else None
    advice = load_advice(args.model) if args.model is not None else None  # read once: a retrain needs a restart
    # Fail here with one line (missing, corrupt, newer version) rather than inside the server.
    with Dataset.open(args.dataset, create=False) as ds:
        if classes is not None and classes != ds.classes:
            ds.backup_index()  # a write: back up first, like the first label of a session
            ds.set_classes(classes)  # refuses (one line) when labels in use would fall outside the list
        total = len(ds)

    sock = bind_socket(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}/"
    loopback = is_loopback(args.host)
    server: AnnotateServer | None = None

    def quit_server() -> None:
        if server is not None:
            server.should_exit = True

    # Loopback: answer only requests naming this machine (a rebound DNS name must not reach the API).
    allowed_hosts = [*LOOPBACK_HOSTS, args.host.lower()] if loopback else ["*"]
    app = create_app(args.dataset, annotator=annotator, on_quit=quit_server, allowed_hosts=allowed_hosts,
                     advice=advice)
    server = AnnotateServer(server_config(app, limits))
    print(f"camlytics annotate: {url}  ({total} images in {args.dataset}, annotator {annotator!r})", flush=True)
    if not loopback:
        print(f"camlytics annotate: warning: listening on {args.host}: anyone who can reach it can change labels",
              file=sys.stderr, flush=True)
    print("camlytics annotate: press Q in the page or Ctrl-C here to stop", flush=True)
    if not args.no_browser and has_display():
        import threading
        import webbrowser

        threading.Timer(0.5, webbrowser.open, [url]).start()  # once the server is accepting
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started and server.stop_signal is None:
        raise DatasetError(f"the annotation server for {args.dataset} did not start (see the log above)")
    if server.stop_signal is not None:
        name = signal.Signals(server.stop_signal).name
        print(f"camlytics annotate: stopped by {name}, every label is saved", flush=True)
        return 128 + server.stop_signal
    print("camlytics annotate: stopped, every label is saved", flush=True)
    return 0
