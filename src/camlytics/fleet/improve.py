"""The closed loop: `camlytics improve SENSOR` and `camlytics fleet improve`.

One round for one sensor:
1. pull the spool of surprising frames from the sensor's app on the camera (GET /local/APP/spool and
   /local/APP/spool/NAME through the camera's reverse proxy, admin Digest auth) into the dataset, with the
   app's reason (sampler "spool"); frames pulled before (same name or same bytes) are skipped, and nothing
   on the camera is deleted (the app's spool is a bounded ring that drops its oldest frames itself);
2. labels: `--labels FILE` imports them, `--annotate` opens the annotation server with the new frames first;
3. the held-out slice: the newest labelled frames the deployed model never saw (the record ids in its
   config.json), `--holdout` of them; a comparison model is trained with the deployed model's options on
   everything else, and both are scored on the slice and on the sensor's check set (if any);
4. better (balanced accuracy higher on the slice, not lower on the check set): the model is trained again on
   every label, recorded in the registry and deployed; otherwise the old one stays and both scores are said.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from camlytics.errors import CamlyticsError, FleetError

SAMPLER = "spool"
MAX_SPOOL_ITEMS = 10_000  # entries of one listing we look at (the app's own quota is far lower)


@dataclass
class Pulled:
    """What one spool pull did."""

    listed: int = 0
    added: list[int] = field(default_factory=list)  # new record ids, oldest first
    skipped: int = 0  # already in the dataset (by name or by content)


@dataclass
class Scores:
    """Balanced accuracy of the deployed and the comparison model on the slice and the check set."""

    slice_size: int
    old_slice: float
    new_slice: float
    old_check: float | None = None
    new_check: float | None = None

    def better(self) -> bool:
        """Higher on the slice and not lower on the check set; a tie keeps the old model."""
        if self.new_slice <= self.old_slice:
            return False
        return self.old_check is None or self.new_check is None or self.new_check >= self.old_check

    def text(self) -> str:
        """Both scores, for the verdict line."""
        line = f"slice of {self.slice_size}: new {self.new_slice:.3f} vs deployed {self.old_slice:.3f}"
        if self.old_check is not None and self.new_check is not None:
            line += f"; check set: new {self.new_check:.3f} vs deployed {self.old_check:.3f}"
        return line


@dataclass(frozen=True)
class Sensor:
    """What one improve round needs to know about a sensor, from the fleet file or from the command line."""

    key: str
    dataset: Path
    camera: str  # the name deploys are recorded under
    url: str  # with credentials (never printed)
    app: str
    check: Path | None = None
    model_dir: Path | None = None  # where the fleet keeps the sensor's current model (None: registry only)
    fallback: Any = None  # the TrainConfig of the fleet file's train options (used while no model has config.json)


# -- 1. the spool ---------------------------------------------------------------------------------------
def pull_spool(sensor: Sensor, timeout: float = 30.0) -> Pulled:
    """Add the app's spooled frames to the dataset (sampler "spool", the app's reason), skipping known ones."""
    from camlytics.camera_http import CameraHTTP
    from camlytics.store import Dataset
    from camlytics.store.files import content_path

    pulled = Pulled()
    client = CameraHTTP(sensor.url, auth="digest", timeout=timeout)
    try:
        listing = client.get(f"/local/{sensor.app}/spool").json()
        if not isinstance(listing, list):
            raise FleetError(f"{sensor.key}: the app's spool listing is not a JSON list")
        listing = [item for item in listing[:MAX_SPOOL_ITEMS]
                   if isinstance(item, dict) and isinstance(item.get("name"), str)]
        pulled.listed = len(listing)
        with Dataset.open(sensor.dataset, create=False) as ds:
            for item in listing:
                name = item["name"]
                original = f"{sensor.app}/{name}"
                if any(r.original_name == original for r in ds.find(original)):
                    pulled.skipped += 1
                    continue
                reply = client.get(f"/local/{sensor.app}/spool/{quote(name, safe='')}")
                jpeg = reply.content
                if not jpeg.startswith(b"\xff\xd8"):
                    continue  # not an image (dropped by the app's quota meanwhile and answered otherwise)
                if (ds.root / content_path(jpeg)).exists():
                    pulled.skipped += 1
                    continue
                stamp = item.get("time")
                record_id = ds.add_image(
                    jpeg, timestamp=float(stamp) if isinstance(stamp, (int, float)) else time.time(),
                    source=f"{sensor.camera}:{sensor.app}/spool", sampler=SAMPLER,
                    reason=str(item.get("reason") or "spool")[:64], score=0.0, original_name=original,
                    meta={"camera": sensor.camera, "app": sensor.app, "spool_name": name})
                pulled.added.append(record_id)
    except (ValueError, TypeError):
        raise FleetError(f"{sensor.key}: the app's spool listing is not JSON") from None
    finally:
        client.close()
    return pulled


# -- 3. the slice, the comparison model, the scores -----------------------------------------------------
def deployed_version(sensor: Sensor) -> Any:
    """The registry version running on the sensor's camera; FleetError when none is recorded."""
    from camlytics.store.models import deployed, get_model

    history = deployed(sensor.dataset, sensor.camera)
    if not history:
        raise FleetError(f"{sensor.key}: no model version of {sensor.dataset} is recorded as deployed on "
                         f"{sensor.camera}; deploy one first (camlytics fleet deploy, or deploy --model-version)")
    return get_model(sensor.dataset, history[-1][0])


def version_config(version: Any) -> dict[str, Any]:
    """The deployed version's config.json ({} if missing)."""
    try:
        value = json.loads((version.path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def unseen_slice(dataset: Path, seen: set[int], holdout: float) -> list[int]:
    """The newest `holdout` share (at least one) of the labelled records the deployed model never saw."""
    from camlytics.store import Dataset

    with Dataset.open(dataset, create=False) as ds:
        unseen = [r.id for r in ds.records(labelled=True) if r.id not in seen]  # time order
    if len(unseen) < 2:
        return []  # nothing would be left to learn from
    count = min(len(unseen) - 1, max(1, round(len(unseen) * holdout)))
    return unseen[-count:]


def train_config(config: dict[str, Any], fallback: Any = None) -> Any:
    """TrainConfig of the deployed model's run (config.json), else `fallback` (the fleet file's), else defaults."""
    from camlytics.train.pipeline import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"extra", "classes", "roi", "check", "jobs"}
    if config:
        given = {k: v for k, v in config.items() if k in names}
        for key in ("input_wh",):
            if isinstance(given.get(key), list):
                given[key] = tuple(given[key])
        if isinstance(given.get("folds"), list):  # config.json lists the folds' record ids: their number
            given["folds"] = len(given["folds"])
        if isinstance(given.get("student_blocks"), list):
            given["student_blocks"] = [tuple(b) for b in given["student_blocks"]]
        return TrainConfig(**given)
    return fallback if fallback is not None else TrainConfig()


def copy_without(source: Path, target: Path, exclude: set[int]) -> None:
    """A dataset of `source`'s labelled records except `exclude` (classes and ROI kept): the comparison's data."""
    from camlytics.store import Dataset

    with Dataset.open(source, create=False) as src, Dataset.open(target, create=True) as dst:
        dst.set_classes(src.classes)
        dst.set_roi(src.roi)
        labels = {}
        for r in src.records(labelled=True):
            if r.id in exclude:
                continue
            new_id = dst.add_image(src.read_image(r), timestamp=r.timestamp, source=r.source, sampler=r.sampler,
                                   reason=r.reason, score=r.score, original_name=r.original_name, meta=r.meta)
            labels[new_id] = r.label
        dst.set_labels(labels, "improve")


def balanced_accuracy(model_dir: Path, dataset: Path, record_ids: list[int] | None = None) -> float:
    """The int8 model's balanced accuracy on the dataset's labelled records (or on `record_ids` of them)."""
    import numpy as np

    from camlytics.model.inputs import load_input
    from camlytics.model.predictor import load_predictor
    from camlytics.store import Dataset
    from camlytics.train.evaluate import evaluate_arrays

    predictor = load_predictor(model_dir, "int8")
    with Dataset.open(dataset, create=False) as ds:
        records = ds.records(labelled=True)
        if record_ids is not None:
            wanted = set(record_ids)
            records = [r for r in records if r.id in wanted]
        if not records:
            raise FleetError(f"no labelled frames in {dataset} to score on")
        x = np.stack([load_input(ds.read_image(r), predictor.spec, f"record {r.id}") for r in records])
    return float(evaluate_arrays(predictor, x, [r.label for r in records])["balanced_accuracy"])


def compare(sensor: Sensor, old: Any, cfg: Any, slice_ids: list[int], workdir: Path) -> Scores:
    """Train the comparison model without the slice and score it and the deployed one."""
    from camlytics.train.pipeline import run_training

    subset, model = workdir / "without-slice", workdir / "comparison-model"
    copy_without(sensor.dataset, subset, set(slice_ids))
    run_training(subset, model, cfg)
    scores = Scores(len(slice_ids), old_slice=balanced_accuracy(old.path, sensor.dataset, slice_ids),
                    new_slice=balanced_accuracy(model, sensor.dataset, slice_ids))
    if sensor.check is not None:
        scores.old_check = balanced_accuracy(old.path, sensor.check)
        scores.new_check = balanced_accuracy(model, sensor.check)
    return scores


# -- the round --------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """One sensor's round: pulled frames, scores, the verdict and the version running afterwards."""

    key: str
    pulled: Pulled
    verdict: str  # "redeployed", "kept" or "failed"
    why: str
    version: str = ""


def improve(sensor: Sensor, *, labels: Path | None = None, annotate: Any = None, holdout: float = 0.5,
            deploy: Any = None, echo: Any = print) -> Outcome:
    """One closed-loop round for `sensor`; `annotate(sensor, new_ids)` labels interactively, `deploy(version)`
    puts a better model on the camera (both callables, so the fleet and the single-camera command share this)."""
    from camlytics.store import Dataset
    from camlytics.store.labelfiles import import_labels
    from camlytics.store.models import record_model

    old = deployed_version(sensor)
    pulled = pull_spool(sensor)
    echo(f"{sensor.key}: spool of {sensor.app}: {pulled.listed} frames, {len(pulled.added)} new, "
         f"{pulled.skipped} pulled before")
    if labels is not None:
        with Dataset.open(sensor.dataset, create=False) as ds:
            done = import_labels(ds, labels, "improve", skip_unknown=True)
        echo(f"{sensor.key}: labels from {labels}: {done.changed} changed, {done.unchanged} unchanged")
    elif annotate is not None:
        annotate(sensor, pulled.added)
    config = version_config(old)
    seen = {int(i) for i in config.get("record_ids", []) if isinstance(i, int)}
    slice_ids = unseen_slice(sensor.dataset, seen, holdout)
    if not slice_ids:
        return Outcome(sensor.key, pulled, "kept", f"fewer than 2 labelled frames that {old.version} never saw: "
                       f"nothing to compare on; label the pulled frames (--annotate or --labels)", old.version)
    cfg = train_config(config, sensor.fallback)
    with tempfile.TemporaryDirectory(prefix="camlytics-improve-") as tmp:
        scores = compare(sensor, old, cfg, slice_ids, Path(tmp))
        if not scores.better():
            return Outcome(sensor.key, pulled, "kept", f"{old.version} stays: {scores.text()}", old.version)
        final = sensor.model_dir or Path(tmp) / "model"
        from camlytics.train.pipeline import run_training

        run_training(sensor.dataset, final, cfg)
        new = record_model(sensor.dataset, final)
    deploy(new)
    return Outcome(sensor.key, pulled, "redeployed", f"{new.version} replaces {old.version}: {scores.text()}",
                   new.version)


def fleet_sensor(fleet: Any, spec: Any) -> Sensor:
    """The improve view of a fleet sensor."""
    from camlytics.fleet.deploy import app_name, camera_url
    from camlytics.fleet.train import sensor_config

    return Sensor(key=spec.key, dataset=spec.dataset, camera=spec.camera, url=camera_url(fleet.camera(spec.camera)),
                  app=app_name(spec.camera, spec.name), check=spec.check, model_dir=spec.model_dir,
                  fallback=sensor_config(fleet, spec))


def fleet_deployer(fleet: Any, spec: Any, interpreter: str | None) -> Any:
    """deploy(version) for a fleet sensor: its target (with the $CAMLYTICS_PARAM_NAME parameters, as
    `fleet deploy` sets them), its state file."""
    from camlytics.deploy.params import env_params
    from camlytics.fleet.deploy import deploy_version, sensor_target, state_path

    def deploy(version: Any) -> None:
        deploy_version(spec.dataset, version, sensor_target(fleet, spec, extra=env_params()),
                       state=state_path(fleet.root, spec.camera, spec.name), interpreter=interpreter)

    return deploy


def annotator(args: argparse.Namespace) -> Any:
    """annotate(sensor, new_ids) for --annotate: the annotation server over the dataset, new frames first."""
    if not args.annotate:
        return None
    from camlytics.fleet.annotate import serve

    def annotate(sensor: Sensor, new_ids: list[int]) -> None:
        serve({sensor.key: sensor.dataset}, first={sensor.key: new_ids}, host=args.host, port=args.port)

    return annotate


def add_round_options(p: argparse.ArgumentParser) -> None:
    """Options every improve command shares."""
    how = p.add_mutually_exclusive_group()
    how.add_argument("--labels", type=Path, metavar="FILE",
                     help="import labels from FILE (CSV filename,label or JSON; spool frames are named APP/NAME) "
                          "instead of annotating: for scripts and tests")
    how.add_argument("--annotate", action="store_true",
                     help="open the annotation server with the new frames first; go on when you press Q / Ctrl-C")
    p.add_argument("--holdout", type=float, default=0.5,
                   help="share of the labelled frames the deployed model never saw (the newest) held out to "
                        "compare the two models on (default 0.5)")
    p.add_argument("--interpreter", choices=("firmware", "camera"), default="firmware",
                   help="what runs a redeployed app: the camlytics firmware (default) or the camera's micropython")
    p.add_argument("--host", default="127.0.0.1", help="--annotate: address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="--annotate: port (default 8765; 0: any free port)")


def register_top(subparsers: argparse._SubParsersAction) -> None:
    """Add the top-level `camlytics improve` (cli.STAGE_MODULES names this function)."""
    p = subparsers.add_parser(
        "improve", help="one closed-loop round: pull the camera's surprising frames, label, retrain, redeploy if better",
        description="Pull the spool of surprising frames from the sensor's app on the camera into its dataset, "
        "label them (--annotate or --labels), train a model with the deployed model's options, compare it with "
        "the deployed one on the newest labelled frames that one never saw (and on the check set), and "
        "redeploy only if it is better. SENSOR is a fleet key (camera/sensor, with --fleet) or a dataset "
        "directory with --camera URL and --app NAME.")
    p.add_argument("sensor", metavar="SENSOR", help="camera/sensor of the fleet file, or a dataset directory")
    p.add_argument("--fleet", default=None, metavar="FILE", help="the fleet file (default ./fleet.toml for a key)")
    p.add_argument("--camera", metavar="URL", help="with a dataset directory: the camera, http://user:pass@host")
    p.add_argument("--app", default="camlytics_door", help="with --camera: the app's name (default camlytics_door)")
    p.add_argument("--check", type=Path, metavar="DATASET", help="with --camera: a labelled check-set dataset")
    add_round_options(p)
    p.set_defaults(func=run_single)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `camlytics fleet improve` (fleet.commands.SUBCOMMAND_MODULES)."""
    from camlytics.fleet.config import add_fleet_option

    p = subparsers.add_parser(
        "improve", help="one closed-loop round for every sensor (or --only KEY)",
        description="`camlytics improve` for each sensor of the fleet in turn; a failing sensor is reported and "
        "the others go on. With --annotate, one annotation session shows every sensor's new frames first.")
    add_fleet_option(p)
    p.add_argument("--only", metavar="KEY", help="this sensor only (camera/sensor)")
    add_round_options(p)  # --labels names a directory here: LABELS/CAMERA/SENSOR.csv per sensor
    p.set_defaults(func=run_fleet)


def _check_holdout(value: float) -> None:
    if not 0 < value < 1:
        raise FleetError(f"--holdout must be between 0 and 1 (a share), got {value}")


def report(outcome: Outcome) -> None:
    """The verdict line."""
    print(f"{outcome.key}: {outcome.verdict}: {outcome.why}")


def run_single(args: argparse.Namespace) -> int:
    """`camlytics improve SENSOR`."""
    from camlytics.fleet.config import DEFAULT_FILE, load_fleet

    _check_holdout(args.holdout)
    interpreter = None if args.interpreter == "firmware" else "camera"
    if args.camera:
        from camlytics.camera_http import split_credentials
        from camlytics.fleet.deploy import DeployTarget, deploy_version

        if args.fleet:
            raise FleetError("give --fleet with a sensor key, or --camera with a dataset directory, not both")
        dataset = Path(args.sensor)
        name = split_credentials(args.camera)[0].rstrip("/")
        sensor = Sensor(key=str(dataset), dataset=dataset, camera=name, url=args.camera, app=args.app, check=args.check)
        target = DeployTarget(camera=name, url=args.camera, app=args.app)

        def deploy(version: Any) -> None:
            deploy_version(dataset, version, target, interpreter=interpreter)
    else:
        if "/" not in args.sensor or Path(args.sensor).is_dir():
            raise FleetError(f"{args.sensor}: a dataset directory needs --camera URL (and --app NAME); a fleet "
                             "sensor is camera/sensor")
        fleet = load_fleet(args.fleet or DEFAULT_FILE)
        spec = fleet.sensor(args.sensor)
        sensor, deploy = fleet_sensor(fleet, spec), fleet_deployer(fleet, spec, interpreter)
    outcome = improve(sensor, labels=args.labels, annotate=annotator(args), holdout=args.holdout, deploy=deploy)
    report(outcome)
    return 0


def run_fleet(args: argparse.Namespace) -> int:
    """`camlytics fleet improve`: every sensor with a deployed model; exit 1 if one failed."""
    from camlytics.fleet.config import load_fleet

    _check_holdout(args.holdout)
    fleet = load_fleet(args.fleet)
    interpreter = None if args.interpreter == "firmware" else "camera"
    specs = [fleet.sensor(args.only)] if args.only else fleet.sensors()
    sensors = [fleet_sensor(fleet, spec) for spec in specs]
    annotate = None
    if args.annotate:  # one session for the whole fleet: pull everything first, then label, then each round
        from camlytics.fleet.annotate import serve

        pulls = {}
        for sensor in sensors:
            try:
                pulls[sensor.key] = pull_spool(sensor).added
            except CamlyticsError as exc:
                print(f"{sensor.key}: failed: {exc}")
        serve({s.key: s.dataset for s in sensors}, first=pulls, host=args.host, port=args.port)
    failed = False
    for spec, sensor in zip(specs, sensors):
        labels = None
        if args.labels is not None:  # a directory: LABELS/CAMERA/SENSOR.csv (or .json) for each sensor
            labels = next((f for f in (args.labels / spec.camera / f"{spec.name}.{ext}" for ext in ("csv", "json"))
                           if f.is_file()), None)
        try:
            outcome = improve(sensor, labels=labels, annotate=annotate, holdout=args.holdout,
                              deploy=fleet_deployer(fleet, spec, interpreter))
        except CamlyticsError as exc:
            outcome, failed = Outcome(sensor.key, Pulled(), "failed", str(exc)), True
        report(outcome)
    return 1 if failed else 0
