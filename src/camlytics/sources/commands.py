"""`camlytics snapshot` (save one frame) and `camlytics sources` (probe a source and list its frames)."""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone
from pathlib import Path

from camlytics.errors import SourceError

SPEC_HELP = ("camera URL http://user:pass@host[:port], MJPEG URL (.../axis-cgi/mjpg/video.cgi), "
             "video file, image folder, or sim:PRESET?seed=N&interval=S")


def _add_source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", help="camera user name (default: from the URL, else $CAMLYTICS_USER)")
    p.add_argument("--password", help="camera password (default: from the URL, else $CAMLYTICS_PASSWORD)")
    p.add_argument("--auth", choices=["auto", "digest", "basic", "none"], help="HTTP authentication (default auto)")
    p.add_argument("--resolution", help="camera resolution WxH; the nearest supported one is used")
    p.add_argument("--compression", type=int, help="camera JPEG compression 0..100 (higher = smaller)")
    p.add_argument("--timeout", type=float, help="network timeout in seconds (default 10)")
    p.add_argument("--retries", type=int, help="retries after a network error or HTTP 5xx (default 3)")
    p.add_argument("--timestamps", help="image folder: CSV with filename,timestamp columns")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `snapshot` and `sources` sub-commands."""
    p = subparsers.add_parser("snapshot", help="save one frame from a camera or any source as JPEG",
                              description="Fetch one frame and save it as a JPEG file.")
    p.add_argument("source", metavar="SOURCE", help=SPEC_HELP)
    p.add_argument("-o", "--output", default="snapshot.jpg", help="output JPEG file (default snapshot.jpg)")
    _add_source_options(p)
    p.set_defaults(func=run_snapshot)

    p = subparsers.add_parser("sources", help="probe a frame source: frames, sizes, timestamps, skipped",
                              description="Open a source, read up to --count frames and list them.")
    p.add_argument("source", metavar="SOURCE", help=SPEC_HELP)
    p.add_argument("--count", type=int, default=10, help="frames to read (default 10)")
    p.add_argument("--interval", type=float, help="seconds between frames (cameras: wait; files: subsample)")
    _add_source_options(p)
    p.set_defaults(func=run_sources)


def _source_options(args: argparse.Namespace) -> dict:
    """The options this command line sets, by open_source's names (unset ones are None and dropped)."""
    names = ("user", "password", "auth", "resolution", "compression", "timeout", "retries", "timestamps", "interval")
    return {n: getattr(args, n, None) for n in names if getattr(args, n, None) is not None}


def run_snapshot(args: argparse.Namespace) -> int:
    """Save the first frame of the source to --output."""
    from camlytics.sources import open_source

    output = Path(args.output)
    if output.suffix.lower() not in (".jpg", ".jpeg"):
        raise SourceError(f"output {str(output)!r} must end in .jpg or .jpeg")
    if not output.parent.is_dir():
        raise SourceError(f"output directory {str(output.parent)!r} does not exist")
    with open_source(args.source, count=1, **_source_options(args)) as src:
        frame = next(iter(src), None)
    if frame is None:
        raise SourceError(f"source {src.name!r} gave no frame")
    jpeg = frame.to_jpeg()
    try:
        output.write_bytes(jpeg)
    except OSError as exc:
        raise SourceError(f"cannot write {str(output)!r}: {exc.strerror or exc}") from None
    w, h = frame.size
    print(f"saved {output} ({w}x{h}, {len(jpeg) / 1024:.1f} KiB) from {src.name}")
    return 0


def _when(ts: float, sim: bool) -> str:
    if sim:
        return time.strftime("%H:%M:%S", time.gmtime(ts)) + " (simulated)"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def run_sources(args: argparse.Namespace) -> int:
    """List up to --count frames of the source, then a summary line."""
    from camlytics.sources import open_source

    if args.count <= 0:
        raise SourceError(f"--count must be > 0, got {args.count}")
    sizes: dict[tuple[int, int], int] = {}
    first = last = None
    began = time.monotonic()
    with open_source(args.source, count=args.count, **_source_options(args)) as src:
        sim = args.source.startswith("sim:")
        print(f"source {src.name} ({type(src).__name__})")
        for i, frame in enumerate(src):
            sizes[frame.size] = sizes.get(frame.size, 0) + 1
            first = frame.timestamp if first is None else first
            last = frame.timestamp
            nbytes = f"{len(frame.jpeg)} B jpeg" if frame.jpeg else "raw"
            truth = frame.meta.get("truth", {}).get("condition")
            print(f"  {i:4d}  {_when(frame.timestamp, sim)}  {frame.size[0]}x{frame.size[1]}  {nbytes}"
                  + (f"  truth={truth}" if truth else ""))
        frames, skipped = src.produced, src.skipped
    span = f", {_when(first, sim)} .. {_when(last, sim)}" if first is not None else ""
    size_text = ", ".join(f"{w}x{h} x{n}" for (w, h), n in sizes.items()) or "-"
    print(f"{frames} frames ({size_text}){span}; {skipped} skipped; {time.monotonic() - began:.2f} s")
    if frames == 0:
        raise SourceError(f"source {src.name!r} gave no frames")
    return 0
