"""CLI: `camlytics fleet SUBCOMMAND --fleet FILE ...`; each sub-command lives in its own module.

A module of SUBCOMMAND_MODULES (in camlytics.fleet) has `register(subparsers) -> None`, which adds its
sub-command with `add_fleet_option` (camlytics.fleet.config) and sets `func=callable(args) -> int | None`.
Those modules import quickly: heavy imports belong inside the command functions.
"""

from __future__ import annotations

import argparse
import importlib

# In the order `camlytics fleet --help` lists them; add a module's name here to add its sub-command.
SUBCOMMAND_MODULES: tuple[str, ...] = ("check", "collect", "annotate", "train", "deploy", "status", "improve")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `fleet` command and its sub-commands."""
    p = subparsers.add_parser(
        "fleet", help="run the pipeline over many cameras described in a fleet file",
        description="Work on every camera and sensor of a fleet file (fleet.toml, see docs/fleet.md), in the "
        "pipeline's order: check that they are reachable, collect from all of them at once, label every sensor in "
        "one session, train the sensors whose labels changed (Ray), deploy where a model changed, see the state "
        "each sensor publishes, and close the loop (improve).")
    sub = p.add_subparsers(dest="fleet_command", metavar="SUBCOMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"camlytics.fleet.{name}").register(sub)
    p.set_defaults(func=lambda args: p.print_help() or 1)
