"""Benchmark `camlytics fleet collect` (how many cameras one host polls on time) and `camlytics fleet train`
(how training scales over the cores with Ray).

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

Training part: 8 sensors (different presets and seeds, `--labels` frames each, labelled from the simulator's
truth, a short recipe: `--train-options`) are trained one after another in this process, as a Ray task trains
one (train_sensor: one thread, folds in-process), then with `camlytics fleet train --force` on the local Ray
runtime for 1, 2, 4 and 8 of them. It prints both wall times, the speed-up against ideal core scaling (the
sequential time over min(sensors, cores)), with and without the Ray runtime's start, and a projection for
1,000 sensors on clusters of N nodes from the measured per-sensor cost and from the default recipe's.

    .venv/bin/python bench/fleet.py --part train                 # 1, 2, 4, 8 sensors, 60 labels each
    .venv/bin/python bench/fleet.py --part train --work /tmp/bench-fleet --train-options "epochs = 25, folds = 5"

Goal: within 10 % of ideal core scaling on 2 cores.
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


def training_fleet(work: Path, sensors: int, labels: int, options: str) -> Path:
    """A fleet file of `sensors` cameras (presets and seeds differ), one sensor each, with a labelled dataset of
    `labels` simulated frames (half in the rare state) built from the simulator's truth, or kept from a run before."""
    import numpy as np

    from camlytics.sim import PRESETS, Scene
    from camlytics.train.simdata import build_sim_dataset, state_times

    lines = ["[fleet]", 'root = "."']
    for i in range(sensors):
        preset = TRAIN_PRESETS[i % len(TRAIN_PRESETS)]
        dataset = work / "datasets" / f"cam{i:02d}" / "door"
        if not dataset.exists():
            scene = Scene(preset, i, 640, 360)
            build_sim_dataset(dataset, preset, i, state_times(scene, labels // 2, labels - labels // 2,
                                                             np.random.default_rng(i)))
        classes = ", ".join(f'"{c}"' for c in PRESETS[preset].classes)
        lines += ["[[camera]]", f'name = "cam{i:02d}"', 'url = "http://127.0.0.1:9"', "  [[camera.sensor]]",
                  '  name = "door"', f"  classes = [{classes}]", f"  train = {{ {options} }}"]
    path = work / "fleet.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def sequential_costs(fleet_path: Path, sensors: int) -> list[dict]:
    """Train the first `sensors` sensors one after another in this process, each as fleet train does it (the same
    functions and config: data packed, one thread, folds in-process, the model installed); wall time of each."""
    from camlytics.fleet.config import load_fleet
    from camlytics.fleet.train import install_model, pack_dataset, sensor_config, train_sensor

    import camlytics.train.pipeline  # noqa: F401 - imported before the clock starts: a Ray worker's first task
    import torch  # noqa: F401           pays its imports, a loop in one process pays them once, not per sensor

    fleet = load_fleet(fleet_path)
    out = []
    for sensor in fleet.sensors()[:sensors]:
        t0 = time.monotonic()
        result = train_sensor(sensor.name, pack_dataset(sensor.dataset), sensor_config(fleet, sensor, jobs=1))
        if "error" in result:
            raise SystemExit(f"{sensor.key}: {result['error']}")
        install_model(sensor, result)
        result["seconds"] = time.monotonic() - t0
        out.append(result)
        print(f"  sequential {sensor.key}: {result['seconds']:.1f} s, {result['shipped']}, "
              f"peak RSS {result['peak_mb']:.0f} MB", flush=True)
    return out


def ray_wall(fleet_path: Path, sensors: int) -> float:
    """Wall time of `camlytics fleet train --force` on the first `sensors` sensors (local Ray runtime), end to end."""
    keys = [f"cam{i:02d}/door" for i in range(sensors)]
    t0 = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "camlytics", "fleet", "train", "--fleet", str(fleet_path), "--force",
                          "--quiet", "--only", *keys], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if run.returncode:
        raise SystemExit(f"fleet train failed: {run.stderr.strip()}")
    return time.monotonic() - t0


def ray_overhead() -> float:
    """Seconds to start and shut down the local Ray runtime (paid once per fleet train, whatever the count)."""
    from camlytics.fleet.train import ray_runtime

    t0 = time.monotonic()
    with ray_runtime(None):
        pass
    return time.monotonic() - t0


def training(args: argparse.Namespace) -> None:
    """The training table: 1, 2, 4, 8 sensors on the local Ray runtime vs one after another; the projection."""
    counts = [int(c) for c in args.sensors.split(",")]
    cores = len(os.sched_getaffinity(0))
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-fleet-train-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{cores} cores; load average before {os.getloadavg()[0]:.1f}; {args.labels} labels per sensor; "
          f"train = {{ {args.train_options} }}; work {work}", flush=True)
    fleet_path = training_fleet(work, max(counts), args.labels, args.train_options)
    costs = [r["seconds"] for r in sequential_costs(fleet_path, max(counts))]
    overhead = ray_overhead()
    print(f"  local Ray runtime start + shutdown: {overhead:.1f} s", flush=True)
    print("\n| sensors | one after another | fleet train (Ray) | speed-up | ideal | of ideal | "
          "of ideal, Ray start excluded |")
    print("|---|---|---|---|---|---|---|")
    for n in counts:
        seq = sum(costs[:n])  # the same trainings, one after another in one process
        wall = ray_wall(fleet_path, n)
        ideal = min(n, cores)
        speedup, net = seq / wall, seq / max(1e-9, wall - overhead)
        print(f"| {n} | {seq:.1f} s | {wall:.1f} s | {speedup:.2f}x | {ideal}x | {100 * speedup / ideal:.0f}% | "
              f"{100 * min(net, ideal) / ideal:.0f}% |", flush=True)
    print(f"\nload average after {os.getloadavg()[0]:.1f}")
    projection(sum(costs) / len(costs), overhead, args)


def projection(sensor_s: float, overhead: float, args: argparse.Namespace) -> None:
    """Wall time for 1,000 sensors on N nodes of `--node-cores` cores, one task per core, from one sensor's cost."""
    print(f"\nprojection for {args.project} sensors, one task per core, nodes of {args.node_cores} cores "
          f"(tasks are independent: wall = rounds of one task per core x one sensor's cost, + Ray start):")
    for label, cost in (("this bench's recipe", sensor_s), ("the default recipe, 300 labels", args.default_sensor_s)):
        cells = []
        for nodes in (1, 4, 16, 64):
            rounds = -(-args.project // (nodes * args.node_cores))
            cells.append(f"{nodes} nodes: {(rounds * cost + overhead) / 60:.0f} min")
        print(f"  {label} ({cost:.0f} core-s per sensor): " + "; ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["collect", "train", "all"], default="all", help="which benchmark to "
                        "run (default all)")
    parser.add_argument("--cameras", default="1,4,16,64", help="camera counts (default 1,4,16,64)")
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval of every camera (default 5 s)")
    parser.add_argument("--intervals", default="1,0.5,0.25,0.125", help="shorter intervals tried at the largest count, "
                        "to find where the host saturates ('' for none)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run (default 30 s)")
    parser.add_argument("--frame-cost", type=float, default=0.05, help="seconds a camera takes to answer (default 0.05)")
    parser.add_argument("--concurrency", type=int, default=16, help="[fleet] concurrency (default 16)")
    parser.add_argument("--sensors", default="1,2,4,8", help="training: sensor counts (default 1,2,4,8)")
    parser.add_argument("--labels", type=int, default=60, help="training: labelled frames per sensor (default 60)")
    parser.add_argument("--train-options", default="epochs = 8, pool = 512, folds = 3, seed = 0",
                        help="training: each sensor's train table in the fleet file (default: a short recipe)")
    parser.add_argument("--work", help="training: directory for the datasets (kept; reused when they exist)")
    parser.add_argument("--project", type=int, default=1000, help="training: sensors in the projection (1000)")
    parser.add_argument("--node-cores", type=int, default=16, help="training: cores per cluster node in the "
                        "projection (default 16)")
    parser.add_argument("--default-sensor-s", type=float, default=394.0, help="training: CPU seconds of one sensor "
                        "with the default recipe on 300 labels, for the projection (default 394: README, parking)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the camera server process
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.frame_cost)
    else:
        if args.part in ("collect", "all"):
            collection(args)
        if args.part in ("train", "all"):
            training(args)


if __name__ == "__main__":
    main()
