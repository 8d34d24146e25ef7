"""Benchmark `camlytics fleet collect`: how many cameras one host polls on time.

Collection part: N simulated cameras, each a loopback HTTP server (in a separate process, so serving does
not share our interpreter) answering image.cgi with one fixed 640x360 JPEG after a fixed delay (the frame
cost of a real camera), are polled by the fleet collector itself (`camlytics.fleet.collect`: one asyncio
task per camera, staggered slots, [fleet] concurrency polls at once, decode + a time sampler per sensor).
For each camera count it prints frames/s, the worst lateness of a poll against its slot and the slots
missed; a sweep of shorter intervals at the largest count shows where the host saturates.

    .venv/bin/python bench/fleet.py                              # 1, 4, 16, 64 cameras every 5 s, 30 s each
    .venv/bin/python bench/fleet.py --cameras 64 --intervals 5,1,0.5,0.25 --seconds 20
    .venv/bin/python bench/fleet.py --part collect --frame-cost 0.2

Goal: 64 cameras polled every 5 s with no frame later than its slot by more than one interval.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ.pop("CAMLYTICS_USER", None)  # the bench cameras take no credentials
os.environ.pop("CAMLYTICS_PASSWORD", None)


def fixed_jpeg() -> bytes:
    """One 640x360 frame of the simulated office at noon, as a camera would send it."""
    from camlytics.frames import encode_jpeg
    from camlytics.sim.scene import Scene

    return encode_jpeg(Scene("office", seed=0, width=640, height=360).render(12 * 3600.0), 85)


def serve(count: int, cost: float) -> None:
    """Serve `count` cameras (one port each) answering image.cgi with the fixed JPEG after `cost` s; print ports."""
    jpeg = fixed_jpeg()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            time.sleep(cost)  # the camera encoding the frame
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(jpeg)))
            self.end_headers()
            self.wfile.write(jpeg)

        def log_message(self, *args) -> None:
            pass

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(count)]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(" ".join(str(s.server_address[1]) for s in servers), flush=True)
    sys.stdin.read()  # until the bench closes our stdin


def fleet_file(directory: Path, ports: list[int], interval: float, concurrency: int) -> Path:
    """A fleet file naming the bench cameras: one sensor each, a cheap time sampler (the polling is measured)."""
    lines = ["[fleet]", 'root = "."', f"concurrency = {concurrency}"]
    for i, port in enumerate(ports):
        lines += ["[[camera]]", f'name = "cam{i:03d}"', f'url = "http://127.0.0.1:{port}"', f"interval = {interval}",
                  "  [[camera.sensor]]", '  name = "door"', '  collect = { sampler = "time", budget = 2 }']
    path = directory / "fleet.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def measure(ports: list[int], interval: float, seconds: float, concurrency: int) -> dict:
    """Run the fleet collector on `ports` for `seconds`; frames/s, worst lateness, missed slots."""
    from camlytics.fleet.collect import Limits, collect_fleet, open_camera
    from camlytics.fleet.config import load_fleet

    with tempfile.TemporaryDirectory(prefix="camlytics-bench-fleet-") as tmp:
        fleet = load_fleet(fleet_file(Path(tmp), ports, interval, concurrency))
        with contextlib.ExitStack() as stack:
            runs = [open_camera(c, stack, seconds, timeout=30.0, predictors={}) for c in fleet.cameras]
            started, cpu = time.monotonic(), time.process_time()
            asyncio.run(collect_fleet(runs, concurrency=concurrency, limits=Limits(duration=seconds),
                                      stop=asyncio.Event()))
            wall, cpu = time.monotonic() - started, time.process_time() - cpu
    frames = sum(r.frames for r in runs)
    return {"cameras": len(ports), "interval": interval, "frames": frames, "fps": frames / wall,
            "wanted": len(ports) / interval, "late": max(r.max_late for r in runs),
            "missed": sum(r.missed for r in runs), "failures": sum(r.failures for r in runs),
            "fetch": sum(r.fetch_seconds for r in runs) / max(1, frames), "cpu": cpu / wall}


def collection(args: argparse.Namespace) -> None:
    """The collection table: camera counts at --interval, then the interval sweep at the largest count."""
    counts = [int(c) for c in args.cameras.split(",")]
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(max(counts)), "--frame-cost",
                               str(args.frame_cost)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ports = [int(p) for p in server.stdout.readline().split()]
        print(f"cameras serve one 640x360 JPEG after {1000 * args.frame_cost:.0f} ms; concurrency "
              f"{args.concurrency}; {os.cpu_count()} CPUs; load average before {os.getloadavg()[0]:.1f}")
        print("\n| cameras | interval | frames | frames/s (wanted) | worst lateness | missed slots | failures "
              "| fetch+decode per frame | collector CPU |")
        print("|---|---|---|---|---|---|---|---|---|")
        plan = [(n, args.interval) for n in counts]
        plan += [(max(counts), float(i)) for i in args.intervals.split(",") if args.intervals and float(i) != args.interval]
        for n, interval in plan:
            r = measure(ports[:n], interval, args.seconds, args.concurrency)
            goal = "" if r["late"] <= interval else " (over one interval)"
            print(f"| {n} | {interval:g} s | {r['frames']} | {r['fps']:.1f} ({r['wanted']:.1f}) | "
                  f"{1000 * r['late']:.0f} ms{goal} | {r['missed']} | {r['failures']} | "
                  f"{1000 * r['fetch']:.0f} ms | {100 * r['cpu']:.0f}% |", flush=True)
    finally:
        server.stdin.close()
        server.wait(10)


# -- training part: fleet train on the local Ray runtime vs the same trainings one after another -----------------

TRAIN_PRESETS = ("office", "warehouse", "home", "corridor", "glassdoor", "parking", "roller", "double")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["collect"], default="collect", help="which benchmark to run")
    parser.add_argument("--cameras", default="1,4,16,64", help="camera counts (default 1,4,16,64)")
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval of every camera (default 5 s)")
    parser.add_argument("--intervals", default="1,0.5,0.25,0.125", help="shorter intervals tried at the largest count, "
                        "to find where the host saturates ('' for none)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run (default 30 s)")
    parser.add_argument("--frame-cost", type=float, default=0.05, help="seconds a camera takes to answer (default 0.05)")
    parser.add_argument("--concurrency", type=int, default=16, help="[fleet] concurrency (default 16)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the camera server process
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.frame_cost)
    elif args.part == "collect":
        collection(args)


if __name__ == "__main__":
    main()
