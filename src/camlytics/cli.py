"""The `camlytics` command: one sub-command per pipeline stage.

Each stage module exposes `register(subparsers)`, which adds its sub-commands and sets
`func=callable(args) -> int | None` on them. Stage modules must import quickly: heavy imports
(torch, onnxruntime, ...) belong inside the command functions.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

from camlytics import __version__
from camlytics.errors import CamlyticsError

# In pipeline order; `camlytics --help` lists the sub-commands in this order.
STAGE_MODULES = [
    "camlytics.sim.commands",  # simcam
    "camlytics.sources.commands",  # snapshot, sources
    "camlytics.sampling.commands",  # collect
    "camlytics.store.commands",  # info, labels import/export
    "camlytics.annotate.commands",  # annotate
    "camlytics.train.commands",  # train, evaluate
    "camlytics.export.commands",  # export
    "camlytics.firmware.commands",  # firmware build, firmware info
    "camlytics.runtime.commands",  # run (edge app on the host / MicroPython)
    "camlytics.deploy.commands",  # bundle, deploy, apps
    "camlytics.demo.commands",  # demo
    "camlytics.fleet.commands",  # fleet check, collect, status, ...
    "camlytics.fleet.improve:register_top",  # improve (the closed loop: code in fleet/, it drives every stage)
]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every stage that is installed."""
    parser = argparse.ArgumentParser(
        prog="camlytics",
        description="Turn a fixed network camera into a visual state sensor: collect frames, "
        "label them, train a tiny int8 network and run it on the camera.",
    )
    parser.add_argument("--version", action="version", version=f"camlytics {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for entry in STAGE_MODULES:
        name, _, function = entry.partition(":")  # "module:function" when it is not `register`
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):  # stage not written yet; else a real bug
                continue
            raise
        getattr(module, function or "register")(subparsers)
    return parser


LIST_OPTIONS = ("--roi",)  # options whose value is a comma list that may start with a minus sign


def join_list_values(argv: list[str]) -> list[str]:
    """`--roi -10,0,50,50` -> `--roi=-10,0,50,50`: argparse reads a value that starts with '-' and holds a comma
    as another option ("expected one argument"); joined, the value reaches the option's own check, which names it."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in LIST_OPTIONS and arg.startswith("-") and "," in arg and arg[1:2].isdigit():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


# SIGTERM and SIGHUP (a service manager stopping us, a closed terminal) stop a command as Ctrl-C does,
# so its Ctrl-C cleanup runs (collect's graceful stop, context managers), and the exit code says which one
# came: 128+N. A command with handlers of its own (run, simcam, annotate, train) replaces these.
_stop_signals: list[int] = []


def _stop_like_ctrl_c(signum: int, frame: object) -> None:
    _stop_signals.append(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):  # the command's own Ctrl-C handling, or Python's (KeyboardInterrupt)
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def install_stop_signals() -> None:
    """Let SIGTERM and SIGHUP act as Ctrl-C (not where they are ignored, e.g. SIGHUP under nohup)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _stop_like_ctrl_c)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr and exit code 2; a stop signal N, exit 128+N."""
    parser = build_parser()
    args = parser.parse_args(join_list_values(sys.argv[1:] if argv is None else list(argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    _stop_signals.clear()
    if argv is None:  # the `camlytics` program, not a call from Python (tests call main([...]))
        install_stop_signals()
    try:
        code = int(args.func(args) or 0)
        if _stop_signals and code in (0, 130):  # ended through its Ctrl-C path, on SIGTERM or SIGHUP
            return 128 + _stop_signals[0]
        return code
    except CamlyticsError as exc:
        print(f"camlytics {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"camlytics {args.command}: interrupted", file=sys.stderr)
        return 128 + (_stop_signals[0] if _stop_signals else signal.SIGINT)
