"""`camlytics fleet train`: retrain every sensor whose labels changed, one Ray task per sensor.

Each task runs `camlytics train`'s pipeline (run_training) with the TrainConfig the command would build from the
same options (train.options.train_config), one torch thread and as many fold processes as it has CPUs
(`--cpus-per-task`, default 1): the model depends on neither, so its bytes equal `camlytics train`'s. The data
travels with the task, so no node needs the fleet root (nor SQLite over a network file system): this process packs
a snapshot of the sensor's dataset (an SQLite backup of the index and the labelled images) into the task's
arguments; the task trains into a temporary directory of its node and returns the model directory's files; this
process writes them to the sensor's model directory atomically (as `camlytics train --out` does) and records the
model as a version of the dataset (store.models.record_model).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camlytics.errors import CamlyticsError, FleetError
from camlytics.fleet.config import add_fleet_option, load_fleet

if TYPE_CHECKING:
    from camlytics.fleet.config import Fleet, SensorSpec
    from camlytics.store.models import ModelVersion
    from camlytics.train.pipeline import TrainConfig

# camlytics train's main process peaked at 523 MB on 300 labels (README), the bench's trainings at 490-570 MB
# (docs/fleet.md): 2 GB leaves room for larger datasets.
DEFAULT_MEMORY_MB = 2048
CANCEL_GRACE_S = 20.0  # after Ctrl-C, how long cancelled tasks get to remove their temporary directories
# Settings that do not change the model (a change to them alone does not make a sensor retrain), and `folds`,
# which config.json replaces by the folds themselves (compared by their number, see _recipe).
NOT_RECIPE = ("jobs", "threads", "check", "extra", "folds")
SENSOR_OPTIONS = ("classes", "roi", "check")  # set by the sensor's own keys, not in its train table
FLEET_OPTIONS = ("jobs",)  # set by fleet train from --cpus-per-task


def register(subparsers: Any) -> None:
    """Add `fleet train`."""
    p = subparsers.add_parser(
        "train", help="retrain every sensor whose labels changed, as Ray tasks (this machine or a cluster)",
        description="Train every sensor whose labelled data (record ids, images, labels) or train settings changed "
                    "since its latest model version, one Ray task per sensor: on a local Ray runtime with one task "
                    "per core by default, or on an existing Ray cluster (--ray-address). Each sensor's model equals "
                    "`camlytics train` on its dataset with its train options, byte for byte; it is written to "
                    "ROOT/models/CAMERA/SENSOR and recorded as a model version of the dataset. The data travels with "
                    "each task (a snapshot of the dataset), so cluster nodes need no shared storage. A sensor that "
                    "fails (no labels, one class...) does not stop the others; the final table lists every sensor.")
    add_fleet_option(p)
    p.add_argument("--ray-address", metavar="ADDR", help="an existing Ray cluster (e.g. 10.0.0.5:6379, or 'auto' "
                   "for the one `ray start` runs on this machine); default: a local Ray runtime with one CPU per core, "
                   "shut down when the command ends")
    p.add_argument("--only", nargs="+", metavar="KEY", help="train only these sensors (camera/sensor)")
    p.add_argument("--force", action="store_true", help="train even the sensors whose labels did not change")
    p.add_argument("--cpus-per-task", type=int, default=1, metavar="N", help="CPUs each sensor's task asks Ray for; "
                   "its cross-validation folds run N at a time (default 1: one sensor per core)")
    p.add_argument("--memory-per-task", type=int, default=DEFAULT_MEMORY_MB, metavar="MB", help="memory each task "
                   f"asks Ray for, in MB; Ray starts no more tasks on a node than its memory holds "
                   f"(default {DEFAULT_MEMORY_MB})")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=fleet_train_command)


# -- what to train ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One sensor of the run: its config and why it trains, or why not (`skip`) or what failed (`error`)."""

    sensor: SensorSpec
    config: TrainConfig
    reason: str
    skip: str | None = None
    error: str | None = None
    latest: ModelVersion | None = None  # the model it has now (shown when it is up to date)


def sensor_config(fleet: Fleet, sensor: SensorSpec, *, jobs: int = 1) -> TrainConfig:
    """The TrainConfig `camlytics train` would build for the sensor's dataset with its fleet-file options."""
    from camlytics.train.options import TRAIN_OPTIONS, train_config

    where = f"{fleet.path}: sensor {sensor.key}: train"
    options: dict[str, Any] = {"classes": list(sensor.classes), "roi": sensor.roi, "jobs": jobs,
                               "check": str(sensor.check) if sensor.check is not None else None}
    allowed = sorted(set(TRAIN_OPTIONS) - set(SENSOR_OPTIONS) - set(FLEET_OPTIONS))
    for key, value in sensor.train.items():
        if key not in allowed:
            why = (f"set by the sensor's own {key!r} key" if key in SENSOR_OPTIONS else
                   "set by fleet train (--cpus-per-task)" if key in FLEET_OPTIONS else f"known: {', '.join(allowed)}")
            raise FleetError(f"{where}: option {key!r} cannot be set here ({why})")
        options[key] = _option_value(key, value, where, fleet.root)
    try:
        cfg = train_config(options)
        cfg.validate()
    except CamlyticsError as exc:
        raise FleetError(f"{where}: {exc}") from None
    return cfg


def _option_value(key: str, value: Any, where: str, root: Path) -> Any:
    """A fleet-file value of a `camlytics train` option, as the command's own parser would give it."""
    from camlytics.train.options import parse_epochs, parse_input

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def whole(v: Any) -> int | None:  # the other options: whole numbers
        return v if number(v) and isinstance(v, int) else None

    converters = {  # None: not a value of this option
        "epochs": lambda v: parse_epochs(str(v), FleetError) if isinstance(v, str) or whole(v) is not None else None,
        "input": lambda v: parse_input(v, FleetError) if isinstance(v, str) else None,
        "color": lambda v: v if v in ("gray", "rgb", "auto") else None,
        "family": lambda v: v if isinstance(v, str) else None,
        "teacher_weights": lambda v: str(root / v) if isinstance(v, str) else None,  # relative to the fleet root
        "distill": lambda v: v if isinstance(v, bool) else None,
        "min_confidence": lambda v: float(v) if number(v) else None,
    }
    try:
        out = converters.get(key, whole)(value)
    except FleetError as exc:
        raise FleetError(f"{where}.{key}: {exc}") from None
    if out is None:
        raise FleetError(f"{where}.{key}: {value!r} is not a valid value (see camlytics train --help)")
    return out


def labels_digest(dataset: Path) -> tuple[str, int]:
    """(digest of every labelled (record id, image hash, label), count): what store.models records as data.digest."""
    from camlytics.store.models import labels_digest as digest_of

    digest, count, _ = digest_of(dataset)
    return digest, count


def _recipe(cfg: TrainConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The settings that shape the model, as config.json holds them (JSON types)."""
    values = asdict(cfg) if not isinstance(cfg, Mapping) else cfg
    recipe = {k: values.get(k) for k in asdict(_default_config()) if k not in NOT_RECIPE}
    folds = values.get("folds")
    recipe["folds"] = len(folds) if isinstance(folds, list) else folds  # config.json: the folds; a config: K or 0
    return json.loads(json.dumps(recipe))


def _default_config() -> TrainConfig:
    from camlytics.train.pipeline import TrainConfig

    return TrainConfig()


def plan_job(fleet: Fleet, sensor: SensorSpec, *, force: bool, jobs: int) -> Job:
    """Whether the sensor trains, and why: no model yet, labels or settings changed, or --force."""
    from camlytics.store.models import list_models

    cfg = sensor_config(fleet, sensor, jobs=jobs)
    try:
        digest, count = labels_digest(sensor.dataset)
        versions = list_models(sensor.dataset)
    except CamlyticsError as exc:
        return Job(sensor, cfg, "", error=str(exc))
    if force:
        return Job(sensor, cfg, "--force")
    if not versions or not (sensor.model_dir / "model.cml").is_file():
        return Job(sensor, cfg, "no model yet")
    latest = versions[-1]
    if latest.data.get("digest") != digest:
        return Job(sensor, cfg, f"labels changed ({latest.data.get('records', '?')} -> {count} labelled)")
    try:
        recorded = json.loads((latest.path / "config.json").read_text())
    except (OSError, ValueError):
        recorded = {}
    now, then = _recipe(cfg), _recipe(recorded)
    if now["folds"] == 0:  # automatic: whatever number the data gave
        then["folds"] = 0
    if now != then:
        changed = sorted(k for k, v in now.items() if then.get(k) != v)
        return Job(sensor, cfg, f"settings changed ({', '.join(changed)})")
    return Job(sensor, cfg, "", skip=f"up to date ({count} labels)", latest=latest)


# -- one sensor, in a Ray task: the data shipped in, the model files shipped back -------------------------------


def pack_dataset(dataset: Path) -> bytes:
    """A tar of the dataset's index (an SQLite backup: consistent even while a labeller writes) and of the images
    of its labelled records, all that training reads."""
    from camlytics.store import Dataset
    from camlytics.store.schema import INDEX_NAME

    buf = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="camlytics-pack-") as tmp:
        with Dataset.open(dataset):  # checks it is a dataset (one error line otherwise)
            pass
        with contextlib.closing(sqlite3.connect(dataset / INDEX_NAME, timeout=30)) as source, \
                contextlib.closing(sqlite3.connect(Path(tmp) / INDEX_NAME)) as copy:
            source.backup(copy)
        with Dataset.open(tmp) as snapshot, tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(Path(tmp) / INDEX_NAME, arcname=INDEX_NAME)
            for record in snapshot.records(labelled=True):
                tar.add(dataset / record.path, arcname=record.path)
    return buf.getvalue()


def unpack_dataset(packed: bytes, directory: Path) -> Path:
    """The dataset of pack_dataset, written to `directory`."""
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        tar.extractall(directory, filter="data")  # refuses paths that leave `directory`
    return directory


def train_sensor(name: str, packed: bytes, cfg: TrainConfig, packed_check: bytes | None = None) -> dict[str, Any]:
    """Train one sensor on its shipped dataset in a temporary directory; its model files, or {'error': ...}.

    `paths` maps each temporary path the text files may name (the dataset, the check set, the model directory)
    to the role install_model replaces it with."""
    from camlytics.train.pipeline import run_training

    started = time.monotonic()
    where = f"{socket.gethostname()} pid {os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="camlytics-fleet-") as tmp:
        dataset, check, out = Path(tmp) / "dataset", Path(tmp) / "check", Path(tmp) / "model" / name
        paths = {str(dataset): "dataset", str(check): "check", str(out): "model_dir"}
        try:
            unpack_dataset(packed, dataset)
            if packed_check is not None:
                cfg = replace(cfg, check=str(unpack_dataset(packed_check, check)))
            metrics = run_training(dataset, out, cfg, console=None)
            files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
        except CamlyticsError as exc:
            return {"error": str(exc), "paths": paths, "seconds": time.monotonic() - started, "where": where}
    shipped = metrics["cv"]["shipped"]
    peak_kb = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return {"files": files, "paths": paths, "shipped": metrics["shipped"], "cv_mean": shipped["mean"],
            "cv_std": shipped["std"], "seconds": time.monotonic() - started, "where": where,
            "peak_mb": peak_kb / 1024}  # the process's high-water mark (a Ray worker may have run tasks before)


def own_paths(text: str, paths: Mapping[str, str], sensor: SensorSpec) -> str:
    """`text` of a task (a model file, an error) naming the sensor's dataset, check set and model directory where
    it names the task's copies of them."""
    real = {"dataset": str(sensor.dataset), "check": str(sensor.check), "model_dir": str(sensor.model_dir)}
    for path, role in sorted(paths.items(), key=lambda kv: -len(kv[0])):  # longest first: no prefix clash
        text = text.replace(path, real[role])
    return text


def install_model(sensor: SensorSpec, result: dict[str, Any]) -> ModelVersion:
    """Write a task's model files to the sensor's model directory (temporary directory, then rename; the text files
    naming the sensor's own paths) and record the model as a version of its dataset."""
    from camlytics.store.models import record_model
    from camlytics.train.pipeline import commit_output, prepare_output, remove_stale_work

    remove_stale_work(sensor.model_dir)
    tmp = prepare_output(sensor.model_dir)
    try:
        for name, data in result["files"].items():
            if name.endswith((".json", ".html")):
                data = own_paths(data.decode("utf-8"), result["paths"], sensor).encode("utf-8")
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(data)
        commit_output(tmp, sensor.model_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record_model(sensor.dataset, sensor.model_dir)


# -- the Ray run ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def ray_runtime(address: str | None) -> Iterator[Any]:
    """Ray connected (to `address`, else a local runtime of one CPU per core), shut down on the way out.

    Ray's own SIGTERM handler (sys.exit) is replaced by the one we had, so SIGTERM still stops us as Ctrl-C."""
    import logging

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a command-line tool does not phone home by default
    if address and "RAY_AUTH_MODE" not in os.environ and ray_token_available():
        # As `ray start` does: with a token at hand, send it. A cluster started with one refuses a driver without
        # it (Ray only says "Failed to connect"); one started without a token accepts a driver that sends one.
        os.environ["RAY_AUTH_MODE"] = "token"
    import ray

    if address:
        check_reachable(address)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        if address:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray.init(num_cpus=len(os.sched_getaffinity(0)), include_dashboard=False, logging_level=logging.ERROR,
                     log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        with contextlib.suppress(Exception):
            ray.shutdown()
        where = f"the Ray cluster at {address}" if address else "a local Ray runtime"
        hint = ("; a cluster with token authentication needs its token here (~/.ray/auth_token or RAY_AUTH_TOKEN)"
                if address and os.environ.get("RAY_AUTH_MODE") != "token" else "")
        raise FleetError(f"cannot start or reach {where}: {str(exc).splitlines()[0] if str(exc) else exc}{hint}"
                         ) from None
    finally:
        if threading.current_thread() is threading.main_thread() and previous is not None:
            signal.signal(signal.SIGTERM, previous)
    try:
        yield ray
    finally:
        ray.shutdown()


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """FleetError when nothing accepts connections at HOST:PORT (Ray itself retries for minutes); 'auto' and
    ray:// addresses are left to Ray."""
    host, sep, port = address.rpartition(":")
    if address == "auto" or "://" in address or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise FleetError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} (is `ray start --head` "
                         "running there, and is this its GCS port, 6379 by default?)") from None


def ray_token_available() -> bool:
    """Whether Ray's token authentication has a token here: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                or (Path.home() / ".ray" / "auth_token").is_file())


def check_resources(ray: Any, cpus: int, memory_mb: int) -> None:
    """FleetError when no node of the cluster has the CPUs and memory one task asks for (it would wait forever)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(r.get("CPU", 0) >= cpus and r.get("memory", 0) >= memory_mb * 2**20 for r in nodes):
        return
    sizes = ", ".join(f"{r.get('CPU', 0):g} CPUs / {r.get('memory', 0) / 2**20:.0f} MB" for r in nodes) or "none"
    raise FleetError(f"no Ray node has the {cpus} CPU{'s' * (cpus > 1)} and {memory_mb} MB one task asks for "
                     f"(nodes: {sizes}); lower --cpus-per-task or --memory-per-task")


def run_jobs(jobs: list[Job], *, address: str | None, cpus: int, memory_mb: int, console: Any) -> dict[str, dict]:
    """Train the jobs as Ray tasks; {sensor key: result} as they finish. Ctrl-C cancels them and shuts Ray down.

    A job's data is packed when it is submitted, and only a few rounds of the cluster's CPUs are in flight at
    once, so a thousand sensors never sit in memory together."""
    results: dict[str, dict] = {}
    if not jobs:
        return results
    with ray_runtime(address) as ray:
        check_resources(ray, cpus, memory_mb)
        remote = ray.remote(num_cpus=cpus, memory=memory_mb * 2**20, max_retries=0)(train_sensor)
        window = 2 * max(1, int(ray.cluster_resources().get("CPU", 1) // cpus))
        waiting, running = list(jobs), {}
        with _progress(console) as progress:
            bar = progress.add_task("training", total=len(jobs))
            try:
                while waiting or running:
                    while waiting and len(running) < window:
                        job = waiting.pop(0)
                        ref = _submit(remote, job)
                        if isinstance(ref, dict):  # its data could not be packed
                            results[job.sensor.key] = ref
                            progress.advance(bar)
                            progress.console.print(_finished_line(job.sensor.key, ref), soft_wrap=True)
                        else:
                            running[ref] = job
                    if not running:
                        continue  # every job submitted so far failed before it reached Ray
                    done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)  # short: Ctrl-C gets through
                    for ref in done:
                        job = running.pop(ref)
                        results[job.sensor.key] = _finish(job, _result(ray, ref))
                        progress.advance(bar)
                        progress.console.print(_finished_line(job.sensor.key, results[job.sensor.key]),
                                               soft_wrap=True)
            except KeyboardInterrupt:
                _cancel(ray, list(running))
                raise
    return results


def _submit(remote: Any, job: Job) -> Any:
    """The task training `job` (its data packed into the arguments), or {'error': ...} if the data cannot be read."""
    sensor = job.sensor
    try:
        packed = pack_dataset(sensor.dataset)
        check = pack_dataset(sensor.check) if job.config.check else None
    except CamlyticsError as exc:
        return {"error": str(exc), "seconds": None, "where": socket.gethostname()}
    except (OSError, sqlite3.Error, tarfile.TarError) as exc:
        return {"error": f"cannot read the dataset {sensor.dataset}: {exc}", "seconds": None,
                "where": socket.gethostname()}
    return remote.options(name=f"train {sensor.key}").remote(sensor.name, packed, job.config, check)


def _finish(job: Job, result: dict[str, Any]) -> dict[str, Any]:
    """Install a task's model in the sensor's model directory and record it; the result with its version."""
    if "error" in result:
        return {**result, "error": own_paths(result["error"], result.get("paths", {}), job.sensor)}
    try:
        version = install_model(job.sensor, result)
    except (CamlyticsError, OSError) as exc:
        return {**result, "files": None, "error": f"trained, but not installed: {exc}"}
    return {**result, "files": None, "version": version.version}


def _result(ray: Any, ref: Any) -> dict[str, Any]:
    """A task's result; a crash (a worker killed, out of memory) becomes an error like any other."""
    try:
        return ray.get(ref)
    except Exception as exc:  # RayTaskError (a bug in training), WorkerCrashedError, OutOfMemoryError...
        cause = getattr(exc, "cause", None) or exc
        return {"error": f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause) else ''}",
                "seconds": None, "where": "?"}


def _cancel(ray: Any, pending: list[Any]) -> None:
    """Interrupt the running tasks (their KeyboardInterrupt removes their temporary directories) and wait a while."""
    for ref in pending:
        with contextlib.suppress(Exception):
            ray.cancel(ref)
    with contextlib.suppress(Exception):
        ray.wait(pending, num_returns=len(pending), timeout=CANCEL_GRACE_S)


def _progress(console: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=console is None)


def _finished_line(key: str, result: dict[str, Any]) -> str:
    if "error" in result:
        return f"{key}: failed: {result['error']}"
    return (f"{key}: {result['version']} {result['shipped']} CV {100 * result['cv_mean']:.2f}% in "
            f"{result['seconds']:.0f} s on {result['where']}")


# -- the command ----------------------------------------------------------------------------------------------


def fleet_train_command(args: argparse.Namespace) -> int:
    """Plan, train on Ray, print the table; exit 2 when a sensor failed."""
    from rich.console import Console

    if args.cpus_per_task < 1:
        raise FleetError(f"--cpus-per-task must be >= 1, got {args.cpus_per_task}")
    if args.memory_per_task < 64:
        raise FleetError(f"--memory-per-task must be >= 64 (MB), got {args.memory_per_task}")
    fleet = load_fleet(args.fleet)
    sensors = [fleet.sensor(key) for key in args.only] if args.only else fleet.sensors()
    jobs = [plan_job(fleet, s, force=args.force, jobs=args.cpus_per_task) for s in sensors]
    todo = [j for j in jobs if j.skip is None and j.error is None]
    err = Console(stderr=True)
    if todo:
        err.print(f"training {len(todo)} of {len(jobs)} sensors on "
                  f"{'the Ray cluster at ' + args.ray_address if args.ray_address else 'a local Ray runtime'} "
                  f"({args.cpus_per_task} CPU, {args.memory_per_task} MB per task)")
    started = time.monotonic()
    results = run_jobs(todo, address=args.ray_address, cpus=args.cpus_per_task, memory_mb=args.memory_per_task,
                       console=None if args.quiet else err)
    rows = [_row(j, results.get(j.sensor.key)) for j in jobs]
    Console(width=max(120, Console().width)).print(_table(rows))
    failed = [r[0] for r in rows if r[1].startswith("failed")]
    trained = sum(r[1].startswith("trained") for r in rows)
    print(f"{trained} trained, {len(rows) - trained - len(failed)} up to date, {len(failed)} failed "
          f"in {time.monotonic() - started:.0f} s")
    if failed:
        raise FleetError(f"{len(failed)} of {len(rows)} sensors failed: {', '.join(failed)} (see the table)")
    return 0


def _row(job: Job, result: dict[str, Any] | None) -> tuple[str, ...]:
    """(sensor, status, version, shipped model, CV, wall time, where) of one sensor."""
    if job.skip is not None:
        s = job.latest.summary if job.latest is not None else {}
        cv = f"{100 * s['cv_mean']:.2f}% +- {100 * s['cv_std']:.2f}" if s.get("cv_mean") is not None else ""
        return (job.sensor.key, job.skip, job.latest.version if job.latest else "", str(s.get("shipped") or ""), cv,
                "", "")
    if job.error is not None or result is None or "error" in result:
        error = job.error or (result or {}).get("error", "not run")
        seconds = (result or {}).get("seconds")
        return (job.sensor.key, f"failed: {error}", "", "", "", f"{seconds:.0f} s" if seconds is not None else "",
                (result or {}).get("where", ""))
    return (job.sensor.key, f"trained: {job.reason}", result["version"], result["shipped"],
            f"{100 * result['cv_mean']:.2f}% +- {100 * result['cv_std']:.2f}", f"{result['seconds']:.0f} s",
            result["where"])


def _table(rows: list[tuple[str, ...]]) -> Any:
    from rich.table import Table

    table = Table(title="fleet train")
    for name in ("sensor", "status", "version", "shipped", "CV (int8)", "wall", "where"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table
