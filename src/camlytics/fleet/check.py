"""`camlytics fleet check`: the fleet file is valid and every camera answers (model, CPU, firmware, apps).

Cameras are asked at once, at most `[fleet] concurrency` at a time, each with a short timeout, so one
camera that is down costs its timeout, not the sum of all. The exit code is 0 only if all answered.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from camlytics.errors import CamlyticsError
from camlytics.fleet.config import CameraSpec, Fleet, add_fleet_option, load_fleet, url_with_credentials

APP_PREFIX = "camlytics"  # the apps this project installs are named camlytics[_...]


@dataclass
class CameraReport:
    """What one camera said, or why it said nothing."""

    camera: str
    url: str
    reachable: bool = False
    model: str = ""
    architecture: str = ""
    soc: str = ""
    firmware: str = ""
    apps: list[dict] = field(default_factory=list)  # {"name", "version", "status"} of each camlytics app
    apps_note: str = ""  # why the app list is missing (a viewer user may not list apps)
    reason: str = ""  # why the camera is not reachable
    sensors: list[str] = field(default_factory=list)


def device_properties(camera: CameraSpec, user: str | None, password: str | None, timeout: float) -> dict:
    """basicdeviceinfo.cgi's getAllProperties of `camera` (SourceError/AuthError naming the problem)."""
    from camlytics.camera_http import CameraHTTP
    from camlytics.errors import SourceError

    http = CameraHTTP(camera.url, user=user, password=password, timeout=timeout, retries=1, backoff=0.2)
    try:
        reply = http.request("POST", "/axis-cgi/basicdeviceinfo.cgi",
                             json={"apiVersion": "1.0", "context": "camlytics", "method": "getAllProperties"})
        try:
            return dict(reply.json()["data"]["propertyList"])
        except (ValueError, KeyError, TypeError):
            raise SourceError("basicdeviceinfo.cgi answered something that is not its JSON "
                              "(not an Axis camera?)") from None
    finally:
        http.close()


def installed_apps(camera: CameraSpec, user: str | None, password: str | None, timeout: float) -> list[dict]:
    """The camlytics applications installed on `camera` (applications/list.cgi; needs an admin user)."""
    from camlytics.deploy.vapix_apps import AppsClient

    with AppsClient(url_with_credentials(camera.url, user, password), timeout=timeout) as client:
        return [{"name": a.name, "version": a.version, "status": a.status} for a in client.list()
                if a.name.startswith(APP_PREFIX)]


def check_camera(camera: CameraSpec, timeout: float) -> CameraReport:
    """Ask one camera who it is and which camlytics apps it runs; the reason in the report if it cannot."""
    from camlytics.errors import AuthError

    report = CameraReport(camera.name, camera.url, sensors=[s.name for s in camera.sensors])
    try:
        user, password = camera.credentials()
        props = device_properties(camera, user, password, timeout)
    except CamlyticsError as exc:
        report.reason = str(exc)
        return report
    report.reachable = True
    report.model = str(props.get("ProdShortName") or props.get("ProdNbr") or props.get("ProdFullName") or "")
    report.architecture, report.soc = str(props.get("Architecture", "")), str(props.get("Soc", ""))
    report.firmware = str(props.get("Version", ""))
    try:
        report.apps = installed_apps(camera, user, password, timeout)
    except AuthError as exc:
        report.apps_note = "not listed: " + ("the user is not an admin" if "403" in str(exc) else str(exc))
    except CamlyticsError as exc:
        report.apps_note = f"not listed: {exc}"
    return report


def check_fleet(fleet: Fleet, timeout: float = 5.0) -> list[CameraReport]:
    """Reports for every camera of the fleet, asked concurrently (at most `fleet.concurrency` at once)."""
    with ThreadPoolExecutor(max_workers=min(fleet.concurrency, len(fleet.cameras))) as pool:
        return list(pool.map(lambda camera: check_camera(camera, timeout), fleet.cameras))


def print_table(fleet: Fleet, reports: list[CameraReport]) -> None:
    """A table of the cameras: reachable, model, CPU, firmware, apps; the reason where one did not answer."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"fleet {fleet.path}")
    for column in ("camera", "reachable", "model", "architecture / SoC", "firmware", "camlytics apps", "sensors"):
        table.add_column(column, overflow="fold")
    for r in reports:
        apps = "\n".join(f"{a['name']} {a['version']} ({a['status'].lower()})" for a in r.apps) or r.apps_note or "none"
        if r.reachable:
            table.add_row(r.camera, "[green]yes", r.model, f"{r.architecture} / {r.soc}", r.firmware, apps,
                          ", ".join(r.sensors))
        else:
            table.add_row(r.camera, f"[red]no[/red]: {r.reason}", "", "", "", "", ", ".join(r.sensors))
    console = Console(width=max(120, Console().width))
    console.print(table)
    console.print(f"{sum(r.reachable for r in reports)}/{len(reports)} cameras reachable", highlight=False)


def run_check(args: argparse.Namespace) -> int:
    """Check the fleet file and every camera; 0 only if all are reachable."""
    from camlytics.validate import check_positive

    check_positive("--timeout", args.timeout)
    fleet = load_fleet(args.fleet)
    reports = check_fleet(fleet, args.timeout)
    if args.json:
        json.dump({"fleet": str(fleet.path), "cameras": [asdict(r) for r in reports]}, sys.stdout, indent=2)
        print()
    else:
        print_table(fleet, reports)
    down = [r.camera for r in reports if not r.reachable]
    if down:
        print(f"camlytics fleet check: {len(down)} of {len(reports)} cameras not reachable: {', '.join(down)}",
              file=sys.stderr)
    return 1 if down else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `fleet check`."""
    p = subparsers.add_parser(
        "check", help="validate the fleet file and reach every camera",
        description="Read the fleet file (every error names the key and the value), then ask every camera, "
        "concurrently, for its model, architecture, SoC, AXIS OS version and installed camlytics apps "
        "(listing apps needs an admin user). Exit 0 only if every camera answered.")
    add_fleet_option(p)
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds to wait for each camera "
                   "(default 5)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON instead of a table")
    p.set_defaults(func=run_check)
