"""A dataset's model versions: every model trained on it, numbered and kept, and where each was deployed.

Layout (under DATASET/models/):
    v3-1a2b3c4d/      one version: model.cml, metrics.json, config.json, report.html (+ its pictures) and
                      version.json (what this module knows of it); written in a temp dir, then renamed, so a
                      version directory is complete or absent, and the directories are the list of versions
    deploys.json      every deploy (version, camera, time, rollback or not), replaced atomically
    .lock             flock'd by a writer: two trains of one dataset never take the same number
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camlytics.errors import DatasetError
from camlytics.store.dataset import Dataset
from camlytics.store.files import TMP_PREFIX, _pid_alive, fsync_dir

MODELS_DIR = "models"
VERSION_FILE = "version.json"
DEPLOYS_FILE = "deploys.json"
LOCK_FILE = ".lock"
# What a version keeps of a model directory (student.pt and model.onnx stay in the model dir: large, host-only).
KEPT_FILES = ("model.cml", "metrics.json", "config.json", "report.html")
KEPT_PATTERNS = ("*.png",)  # the report's pictures
_VERSION_NAME = re.compile(r"v([1-9][0-9]*)-([0-9a-f]{8})")


@dataclass(frozen=True)
class ModelVersion:
    """One recorded model of a dataset: `v<counter>-<first 8 hex of sha256(model.cml)>`."""

    version: str
    counter: int
    sha256: str
    created: float
    path: Path  # DATASET/models/<version>/
    summary: dict  # shipped family/name, cv mean/std, counts per class, input, macs
    data: dict  # what it saw: labelled record count, per class, digest of (record id, image hash, label)

    @property
    def model_file(self) -> Path:
        """The version's edge model file (model.cml)."""
        return self.path / "model.cml"


def models_root(dataset_dir: str | os.PathLike) -> Path:
    """DATASET/models (may not exist yet)."""
    return Path(dataset_dir).expanduser().absolute() / MODELS_DIR


def _check_dataset(dataset_dir: str | os.PathLike) -> Path:
    root = Path(dataset_dir).expanduser().absolute()
    if not root.is_dir():
        raise DatasetError(f"dataset {root} does not exist" if not root.exists()
                           else f"dataset path {root} is a file, expected a directory")
    return root


@contextlib.contextmanager
def _locked(dataset_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold DATASET/models/.lock (exclusive) for a block; yields DATASET/models."""
    root = models_root(_check_dataset(dataset_dir))
    try:
        root.mkdir(exist_ok=True)
        fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DatasetError(f"cannot write {root}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if this process is killed
        yield root
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON to path so that the file is the old one or the new one, even after kill -9."""
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{time.monotonic_ns()}-{path.name}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(value, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise DatasetError(f"cannot write {path}: {exc.strerror or exc}") from None


def _remove_stale_temps(root: Path) -> None:
    """Remove temp dirs and files of killed writers (their pid is gone); called with the lock held."""
    for tmp in root.glob(f"{TMP_PREFIX}*"):
        try:
            pid = int(tmp.name[len(TMP_PREFIX):].split("-", 1)[0])
        except ValueError:
            pid = -1
        if pid > 0 and pid != os.getpid() and _pid_alive(pid):
            continue
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """What `camlytics models` shows of metrics.json."""
    cv = metrics.get("cv") or {}
    shipped = cv.get("shipped") or {}
    summary = {"family": metrics.get("family"), "shipped": metrics.get("shipped"),
               "cv_mean": shipped.get("mean"), "cv_std": shipped.get("std"), "folds": cv.get("folds"),
               "counts": metrics.get("counts"), "classes": metrics.get("classes"), "input": metrics.get("input"),
               "macs": metrics.get("macs")}
    if isinstance(metrics.get("check"), dict):
        summary["check"] = (metrics["check"].get("int8") or {}).get("balanced_accuracy")
    return summary


def labels_digest(dataset_dir: str | os.PathLike, ids: list[int] | None = None) -> tuple[str, int, int]:
    """(sha256 over the (record id, image hash, label) of `ids`, default every labelled record, in id order;
    how many records; how many of `ids` this dataset lacks). What a model saw, comparable across datasets' copies."""
    digest = hashlib.sha256()
    missing = 0
    with Dataset.open(dataset_dir) as ds:
        if ids is None:
            records = {r.id: r for r in ds.records(labelled=True)}
            ids = list(records)
        else:
            records = {}
            for record_id in ids:
                try:
                    records[record_id] = ds.get(record_id)
                except DatasetError:
                    pass
        for record_id in sorted(ids):
            record = records.get(record_id)
            if record is None:
                missing += 1  # a model trained on another dataset: its ids say nothing here
                digest.update(f"{record_id}:-:-\n".encode())
                continue
            image = Path(record.path).stem  # content-addressed: images/ab/<sha256>.jpg
            digest.update(f"{record_id}:{image}:{record.label}\n".encode())
    return digest.hexdigest(), len(ids), missing


def _data(dataset_dir: Path, config: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """What the model saw: its record ids (config.json) looked up in this dataset, hashed with image and label."""
    ids = config.get("record_ids")
    ids = [int(i) for i in ids] if isinstance(ids, list) and all(isinstance(i, int) for i in ids) else []
    digest, count, missing = labels_digest(dataset_dir, ids)
    return {"records": count, "per_class": metrics.get("counts") or {}, "digest": digest,
            "missing": missing, "trained_on": config.get("dataset")}


def _from_dir(path: Path) -> ModelVersion | None:
    """The version stored in `path`, or None if it is not a complete version directory."""
    match = _VERSION_NAME.fullmatch(path.name)
    if match is None or not path.is_dir():
        return None
    meta = _read_json(path / VERSION_FILE)
    if not isinstance(meta, dict) or meta.get("version") != path.name:
        return None
    return ModelVersion(version=path.name, counter=int(match.group(1)), sha256=str(meta["sha256"]),
                        created=float(meta["created"]), path=path, summary=dict(meta.get("summary") or {}),
                        data=dict(meta.get("data") or {}))


def list_models(dataset_dir: str | os.PathLike) -> list[ModelVersion]:
    """Every recorded model version of the dataset, oldest first (empty if none)."""
    root = models_root(_check_dataset(dataset_dir))
    if not root.is_dir():
        return []
    versions = [v for v in map(_from_dir, root.iterdir()) if v is not None]
    return sorted(versions, key=lambda v: v.counter)


def get_model(dataset_dir: str | os.PathLike, version: str) -> ModelVersion:
    """The version named "v3", "v3-1a2b3c4d" or by a prefix (4+ hex) of its sha256; DatasetError lists them."""
    versions = list_models(dataset_dir)
    text = version.strip().lower()
    if re.fullmatch(r"v[0-9]+", text):
        found = [v for v in versions if v.counter == int(text[1:])]
    elif _VERSION_NAME.fullmatch(text):
        found = [v for v in versions if v.version == text]
    elif re.fullmatch(r"[0-9a-f]{4,64}", text):
        found = [v for v in versions if v.sha256.startswith(text)]
    else:
        found = []
    if len(found) == 1:
        return found[0]
    known = ", ".join(v.version for v in versions) or "none yet (train with `camlytics train`)"
    if len(found) > 1:
        raise DatasetError(f"model version {version!r} is ambiguous: {', '.join(v.version for v in found)}")
    raise DatasetError(f"no model version {version!r} in {Path(dataset_dir)}; versions: {known}")


def _check_model_dir(model_dir: Path) -> tuple[bytes, dict[str, Any], dict[str, Any]]:
    """model.cml bytes, metrics.json and config.json of a model directory (DatasetError if unusable)."""
    if not model_dir.is_dir():
        raise DatasetError(f"model directory {model_dir} does not exist" if not model_dir.exists()
                           else f"{model_dir} is a file, expected a model directory")
    try:
        model_bytes = (model_dir / "model.cml").read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"model directory {model_dir} has no model.cml") from None
    except OSError as exc:
        raise DatasetError(f"cannot read {model_dir / 'model.cml'}: {exc.strerror or exc}") from None
    metrics = _read_json(model_dir / "metrics.json")
    config = _read_json(model_dir / "config.json")
    return model_bytes, metrics if isinstance(metrics, dict) else {}, config if isinstance(config, dict) else {}


def record_model(dataset_dir: str | os.PathLike, model_dir: str | os.PathLike) -> ModelVersion:
    """Record MODEL_DIR as the dataset's next version (the same model.cml bytes: the version that has them)."""
    dataset = _check_dataset(dataset_dir)
    source = Path(model_dir).expanduser().absolute()
    model_bytes, metrics, config = _check_model_dir(source)
    sha = hashlib.sha256(model_bytes).hexdigest()
    with _locked(dataset) as root:
        _remove_stale_temps(root)
        versions = list_models(dataset)
        for existing in versions:
            if existing.sha256 == sha:
                return existing
        counter = max((v.counter for v in versions), default=0) + 1
        # A version dir from a crash with no version.json would block the name: it is never a version.
        name = f"v{counter}-{sha[:8]}"
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        meta = {"version": name, "sha256": sha, "created": time.time(), "summary": _summary(metrics),
                "data": _data(dataset, config, metrics), "source": str(source)}
        tmp = root / f"{TMP_PREFIX}{os.getpid()}-{time.monotonic_ns()}-{name}"
        try:
            tmp.mkdir()
            names = [n for n in KEPT_FILES if (source / n).is_file()]
            names += sorted(p.name for pattern in KEPT_PATTERNS for p in source.glob(pattern) if p.is_file())
            for n in names:
                shutil.copyfile(source / n, tmp / n)
            (tmp / "model.cml").write_bytes(model_bytes)  # the bytes hashed, whatever changed since
            (tmp / VERSION_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
            for path in tmp.iterdir():
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
            fsync_dir(tmp)
            os.rename(tmp, final)
            fsync_dir(root)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DatasetError(f"cannot record model {source} in {root}: {exc.strerror or exc}") from None
        version = _from_dir(final)
        assert version is not None
        return version


def _deploys(root: Path) -> list[dict[str, Any]]:
    entries = _read_json(root / DEPLOYS_FILE)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise DatasetError(f"{root / DEPLOYS_FILE}: expected a JSON list of deploys")
    return [e for e in entries if isinstance(e, dict)]


def record_deploy(dataset_dir: str | os.PathLike, version: str, camera: str, *, rollback: bool = False,
                  app: str | None = None, params: dict[str, str] | None = None) -> None:
    """Note that `version` now runs on `camera` (a fleet camera name or a URL without credentials), as `app`
    with these package parameter defaults (never secrets: the file is not private)."""
    name = get_model(dataset_dir, version).version
    with _locked(dataset_dir) as root:
        entries = _deploys(root)
        entries.append({"version": name, "camera": camera, "time": time.time(), "rollback": rollback, "app": app,
                        "params": dict(params or {})})
        _write_json_atomic(root / DEPLOYS_FILE, entries)


def deployed(dataset_dir: str | os.PathLike, camera: str) -> list[tuple[str, float]]:
    """The versions deployed on `camera`, oldest first (the last one is the current one)."""
    root = models_root(_check_dataset(dataset_dir))
    return [(str(e["version"]), float(e["time"])) for e in _deploys(root) if e.get("camera") == camera]


def current_deploy(dataset_dir: str | os.PathLike, camera: str) -> dict[str, Any] | None:
    """The latest deploy to `camera`: {"version", "time", "rollback", "app", "params"} (None if none)."""
    root = models_root(_check_dataset(dataset_dir))
    entries = [e for e in _deploys(root) if e.get("camera") == camera]
    return dict(entries[-1]) if entries else None


def deployments(dataset_dir: str | os.PathLike) -> dict[str, str]:
    """{camera: current version} for every camera this dataset's models were deployed to."""
    root = models_root(_check_dataset(dataset_dir))
    return {str(e["camera"]): str(e["version"]) for e in _deploys(root)}


def _stack(entries: list[dict[str, Any]]) -> list[str]:
    """The versions a camera went through, a rollback undoing the deploy it went back from."""
    stack: list[str] = []
    for entry in entries:
        if entry.get("rollback") and stack:
            target = str(entry["version"])
            while stack and stack[-1] != target:
                stack.pop()
            if not stack:
                stack.append(target)
        else:
            stack.append(str(entry["version"]))
    return stack


def rollback_target(dataset_dir: str | os.PathLike, camera: str) -> ModelVersion:
    """The version deployed on `camera` before the current one (rollbacks undone); DatasetError if none."""
    root = models_root(_check_dataset(dataset_dir))
    stack = _stack([e for e in _deploys(root) if e.get("camera") == camera])
    if not stack:
        raise DatasetError(f"no model of {Path(dataset_dir)} was deployed to {camera}; nothing to roll back")
    current = stack[-1]
    earlier = [v for v in stack if v != current]
    if not earlier:
        raise DatasetError(f"{camera} runs {current}, the first version of {Path(dataset_dir)} deployed there; "
                           "nothing earlier to roll back to")
    return get_model(dataset_dir, earlier[-1])


def version_of(model_dir: str | os.PathLike, sha256: str) -> str | None:
    """The recorded version whose model.cml has this sha256: MODEL_DIR itself when it is a version directory,
    else one of the dataset its config.json names (what `camlytics train` wrote); None if unrecorded."""
    folder = Path(model_dir).expanduser().absolute()
    here = _from_dir(folder) if folder.parent.name == MODELS_DIR else None
    if here is not None and here.sha256 == sha256:
        return here.version
    config = _read_json(folder / "config.json") if folder.is_dir() else None
    dataset = config.get("dataset") if isinstance(config, dict) else None
    if not isinstance(dataset, str) or not (Path(dataset) / MODELS_DIR).is_dir():
        return None
    try:
        found = [v.version for v in list_models(dataset) if v.sha256 == sha256]
    except DatasetError:
        return None  # an unreadable registry only costs the name
    return found[0] if found else None


def reported_version(model_dir: str | os.PathLike, model_bytes: bytes) -> str:
    """What an edge app running these model bytes reports as its model_version: the registry's version
    (`version_of`), else "sha-<first 8 hex of sha256>"."""
    sha = hashlib.sha256(model_bytes).hexdigest()
    return version_of(model_dir, sha) or f"sha-{sha[:8]}"
