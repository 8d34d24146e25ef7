"""`camlytics firmware build|info`: the MicroPython firmware the camera runs."""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

from camlytics.firmware.build import ARCHES, SOURCE_ENV, FirmwareError, build_firmware, elf_arch, install


def register(subparsers: Any) -> None:
    """Add `firmware build` and `firmware info`."""
    p = subparsers.add_parser(
        "firmware", help="build the camera firmware: MicroPython + the camlytics C module + the frozen edge app",
        description="The firmware is MicroPython's unix port, statically linked for the camera's CPU, with the "
        "camlytics C module (int8 layers, JPEG decoding) and the edge app frozen in as bytecode. Builds are "
        "cached; see docs/firmware.md.")
    sub = p.add_subparsers(dest="firmware_command", metavar="ACTION")
    b = sub.add_parser("build", help="build (or take from the cache) the firmware for one or more architectures",
                       description="Build MicroPython 1.28.0 for --arch with the camlytics C module and edge app. "
                       f"The source is an archive, URL or tree given by --source or ${SOURCE_ENV}; only the pinned "
                       "version and checksums are accepted. A cold build takes about 2 minutes on 2 cores.")
    b.add_argument("--arch", required=True, help=f"{'|'.join(ARCHES)}|all, or a comma list")
    b.add_argument("--source", metavar="PATH|URL", help=f"MicroPython source archive, URL or tree (default ${SOURCE_ENV})")
    b.add_argument("--out", metavar="DIR", help="also copy each binary to DIR/micropython-ARCH")
    b.add_argument("--jobs", type=int, default=None, help="parallel compile jobs (default: the number of cores)")
    b.add_argument("--debug", action="store_true", help="dynamically linked, with symbols, not stripped "
                   "(for valgrind/gdb on the host; not for the camera)")
    b.set_defaults(func=build_command)
    i = sub.add_parser("info", help="which architecture and camlytics build a firmware binary holds")
    i.add_argument("binary", help="a firmware binary (micropython)")
    i.set_defaults(func=info_command)
    p.set_defaults(func=lambda args: p.print_help() or 1)


def _arches(text: str) -> list[str]:
    names = list(ARCHES) if text == "all" else [a.strip() for a in text.split(",") if a.strip()]
    for name in names:
        if name not in ARCHES:
            raise FirmwareError(f"--arch: unknown architecture {name!r} (choose from {', '.join(ARCHES)}, all)")
    return names


def build_command(args: argparse.Namespace) -> int:
    """Build each architecture, showing progress; prints where each binary is."""
    from rich.console import Console

    arches = _arches(args.arch)
    if args.jobs is not None and not 1 <= args.jobs <= 256:
        raise FirmwareError(f"--jobs must be between 1 and 256, got {args.jobs}")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise FirmwareError(f"--out {out} exists and is not a directory")
    console = Console(stderr=True)
    for arch in arches:
        with console.status(f"firmware {arch}: checking the cache") as status:
            fw = build_firmware(arch, args.source, args.jobs, args.debug,
                                progress=lambda msg, a=arch: status.update(f"firmware {a}: {msg[:100]}"))
        where = fw.path
        if out is not None:
            try:
                where = install(fw.path, out)
            except OSError as exc:
                raise FirmwareError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
        info = fw.info
        print(f"{arch}: {where} ({info['size']:,} bytes, camlytics {info['build_id']}, "
              f"{'built in %.0f s' % info['seconds'] if fw.built else 'from the cache'})")
    return 0


def info_command(args: argparse.Namespace) -> int:
    """Print the architecture of a binary and, when it is in the cache, its build.json."""
    path = Path(args.binary)
    if not path.is_file():
        raise FirmwareError(f"{path}: no such file")
    arch = elf_arch(path)
    if arch is None:
        raise FirmwareError(f"{path}: not an ELF executable for {', '.join(ARCHES)}")
    meta = path.parent / "build.json"
    info = json.loads(meta.read_text()) if meta.is_file() and os.path.basename(path) == "micropython" else {}
    # the banner compiled into every camlytics build (sys.implementation._machine), also in a copied binary
    banner = re.search(rb"linux-[a-z0-9_]+ camlytics [\x20-\x7e]+", path.read_bytes())
    machine = {"machine": banner.group().decode()} if banner else {}
    print(json.dumps({"arch": arch, "size": path.stat().st_size, **machine, **info}, indent=2))
    return 0
