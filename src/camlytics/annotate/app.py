"""The annotation web app: a Starlette app serving the labelling UI and a small JSON API over one dataset.

Every dataset call runs on one dedicated worker thread (the `Dataset` and its SQLite connection live
there), so requests from several browser tabs are serialised and the event loop never waits on disk.
Images are served by record id only: no route takes a file path, so no URL can name a file outside
the dataset directory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import hashlib
import html
import json
import pathlib
import re
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from camlytics.constants import DAY
from camlytics.errors import CamlyticsError, DatasetError
from camlytics.validate import Roi, check_roi

STATIC_DIR = pathlib.Path(__file__).with_name("static")
# The only static files served: a fixed table, so no request path ever reaches the file system.
STATIC_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
MAX_BODY_BYTES = 256 * 1024
MAX_BATCH = 1000  # records labelled by one grid keystroke
MAX_ROI_COORD = 1 << 16
MAX_RECORD_ID = (1 << 63) - 1  # SQLite's largest integer: a larger id can name no record
ANNOTATOR_RE = re.compile(r"^[\w.@+ -]{1,64}$")
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
SECURITY_HEADERS = {
    # Everything is served from this origin: the tool works offline and loads nothing from a CDN.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

T = TypeVar("T")


class BadRequest(Exception):
    """A request the API refuses, with the HTTP status and a message naming the bad value."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def validate_classes(classes: list[str]) -> list[str]:
    """Check a class list: 2..9 distinct, non-empty names (number keys 1..9 label them)."""
    names = [c.strip() for c in classes]
    if len(names) < 2 or len(names) > 9:
        raise DatasetError(f"classes={classes!r}: need between 2 and 9 classes (number keys 1..9)")
    for name in names:
        if not re.fullmatch(r"[\w-]{1,32}", name):
            raise DatasetError(f"class name {name!r}: use 1-32 letters, digits, '_' or '-'")
    if len(set(names)) != len(names):
        raise DatasetError(f"classes={classes!r}: duplicate class names")
    return names


def validate_annotator(name: str) -> str:
    """Check an annotator name: 1-64 letters, digits, spaces or . @ + - _."""
    if not isinstance(name, str) or not ANNOTATOR_RE.fullmatch(name):
        raise CamlyticsError(f"annotator {name!r}: use 1-64 letters, digits, spaces or . @ + - _")
    return name


def time_text(timestamp: float) -> str:
    """A capture time for people: simulated-day seconds as 'day HH:MM:SS', Unix time as UTC."""
    if timestamp < 400 * DAY:  # simulator clocks count seconds since simulated midnight
        day, rest = divmod(float(timestamp), DAY)
        hh, rest = divmod(rest, 3600.0)
        mm, ss = divmod(rest, 60.0)
        prefix = f"day {int(day)} " if day else "sim "
        return f"{prefix}{int(hh):02d}:{int(mm):02d}:{ss:04.1f}"
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def record_json(record: Any) -> dict[str, Any]:
    """The fields of a store Record that the UI shows (meta, which may carry ground truth, stays out)."""
    return {
        "id": int(record.id),
        "timestamp": float(record.timestamp),
        "time": time_text(float(record.timestamp)),
        "source": record.source,
        "sampler": record.sampler,
        "reason": record.reason,
        "score": None if record.score is None else float(record.score),
        "original_name": record.original_name,
        "label": record.label,
        "annotator": record.annotator,
        "labelled_at": record.labelled_at,
        "prediction": record.prediction,
        "confidence": None if record.confidence is None else float(record.confidence),
        "probs": record.probs,
    }


def placeholder_svg(record_id: int, problem: str) -> bytes:
    """A 16:9 grey placeholder image naming the record and what is wrong with its file."""
    text = html.escape(problem[:90])
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="360" viewBox="0 0 640 360">'
        '<rect width="640" height="360" fill="#2a2d33"/>'
        '<path d="M0 0L640 360M640 0L0 360" stroke="#3a3e46" stroke-width="3"/>'
        '<rect x="120" y="130" width="400" height="100" rx="8" fill="#1c1e22" stroke="#e5534b"/>'
        f'<text x="320" y="172" fill="#e5534b" font-family="sans-serif" font-size="22" '
        f'text-anchor="middle">image #{record_id} unavailable</text>'
        f'<text x="320" y="204" fill="#adbac7" font-family="sans-serif" font-size="13" '
        f'text-anchor="middle">{text}</text></svg>'
    ).encode()


class AnnotationService:
    """One dataset opened for labelling by one annotator: the operations behind the API."""

    def __init__(self, dataset_dir: str | pathlib.Path, *, annotator: str,
                 advice: dict[str, Any] | None = None) -> None:
        self.dataset_dir = pathlib.Path(dataset_dir)
        self.annotator = validate_annotator(annotator)
        self.advice = advice  # a trained model's "more labels?" advice (annotate/advice.py), read once at start
        self.problems: dict[int, dict[str, Any]] = {}  # record id -> {"id", "path", "error"}
        self._checked: set[int] = set()  # records whose image decoded once (files never change)
        self._ds: Any = None
        self._backed_up = False
        self._frame_size: tuple[int, int] | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="camlytics-ds")

    # -- thread plumbing ---------------------------------------------------------------------------
    async def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the dataset thread (the only thread that touches the Dataset)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def dataset(self) -> Any:
        """The open Dataset (opened on first use, on the dataset thread)."""
        if self._ds is None:
            from camlytics.store import Dataset

            self._ds = Dataset.open(self.dataset_dir, create=False)
        return self._ds

    def close(self) -> None:
        """Close the dataset (on its thread) and stop the thread."""
        def _close() -> None:
            if self._ds is not None:
                self._ds.close()
                self._ds = None

        self._executor.submit(_close).result(timeout=30)
        self._executor.shutdown(wait=True)

    def _before_write(self) -> None:
        """Back up the index once per session, before the first change (the original tool's TODO)."""
        if not self._backed_up:
            self.dataset().backup_index()
            self._backed_up = True

    # -- reads ---------------------------------------------------------------------------------------
    def classes(self) -> list[str]:
        """The dataset's classes, in number-key order."""
        return list(self.dataset().classes)

    def snapshot(self, order: str) -> dict[str, Any]:
        """Everything the UI shows: records in labelling order, progress, ROI, problems, a model's advice."""
        ds = self.dataset()
        records = ds.records(order="time")
        has_predictions = any(r.confidence is not None for r in records)
        if order == "auto":
            order = "uncertain" if has_predictions else "unlabelled_first"
        if order == "unlabelled_first":
            records = ds.records(order=order)
        elif order == "uncertain":
            # Unlabelled first, and within each group the least confident prediction first.
            records.sort(key=lambda r: (r.label is not None, r.confidence is None, r.confidence or 0.0))
        classes = list(ds.classes)
        per_class = {c: 0 for c in classes}
        labelled = 0
        for r in records:
            if r.label is not None:
                labelled += 1
                per_class[r.label] = per_class.get(r.label, 0) + 1
        return {
            "dataset": self.dataset_dir.name,
            "annotator": self.annotator,
            "classes": classes,
            "order": order,
            "roi": None if ds.roi is None else list(ds.roi),
            "progress": {"total": len(records), "labelled": labelled, "per_class": per_class},
            "has_predictions": has_predictions,
            "records": [record_json(r) for r in records],
            "problems": sorted(self.problems.values(), key=lambda p: p["id"]),
            "advice": self.advice,
        }

    def record(self, record_id: int) -> dict[str, Any]:
        """One record as JSON; 404 if there is none with that id."""
        return record_json(self._get(record_id))

    def _get(self, record_id: int) -> Any:
        try:
            return self.dataset().get(record_id)
        except (DatasetError, KeyError, LookupError):
            raise BadRequest(f"no record with id {record_id}", 404) from None

    def image_file(self, record_id: int) -> tuple[pathlib.Path | None, str]:
        """A record's absolute image path (None, reported as a problem, if it leads outside the dataset)."""
        ds = self.dataset()
        record = self._get(record_id)
        try:
            path: pathlib.Path | None = pathlib.Path(ds.image_path(record)).resolve()
        except DatasetError:
            path = None
        # The store checks this too; checked again here because this is where a path meets HTTP
        # (resolve() follows symlinks, so a link inside the dataset to a file outside is caught).
        if path is None or not path.is_relative_to(self.dataset_dir.resolve()):
            self._problem(record_id, str(record.path), "image path leads outside the dataset")
            return None, str(record.path)
        return path, str(record.path)

    def read_image(self, record_id: int, path: pathlib.Path, rel: str) -> tuple[bytes | None, str | None]:
        """Read (and on first use, fully decode) an image file: (bytes, None) or (None, problem)."""
        from camlytics.frames import decode_jpeg

        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None, self._problem(record_id, rel, "image file missing")
        except OSError as exc:
            return None, self._problem(record_id, rel, f"cannot read image file: {exc.strerror or exc}")
        if record_id not in self._checked:
            try:
                decode_jpeg(data, what=rel)
            except CamlyticsError as exc:
                return None, self._problem(record_id, rel, str(exc).removeprefix(f"{rel}: "))
            self._checked.add(record_id)
        self.problems.pop(record_id, None)
        return data, None

    def _problem(self, record_id: int, rel: str, error: str) -> str:
        self.problems[record_id] = {"id": record_id, "path": rel, "error": error}
        return error

    # -- writes --------------------------------------------------------------------------------------
    def check_label(self, label: Any) -> str | None:
        """A label value from a request: one of the classes, or null to clear; 400 otherwise."""
        if label is None:
            return None
        classes = self.classes()
        if not isinstance(label, str) or label not in classes:
            raise BadRequest(f"label {label!r} is not one of the classes {classes}")
        return label

    def set_labels(self, record_ids: list[int], label: str | None) -> list[dict[str, Any]]:
        """Label records, written before the reply (one transaction; clearing takes one per record)."""
        ds = self.dataset()
        records = [self._get(i) for i in record_ids]  # all must exist before anything is written
        self._before_write()
        if len(records) == 1 or label is None:
            for r in records:
                ds.set_label(r.id, label, self.annotator)
        else:
            ds.set_labels({r.id: label for r in records}, self.annotator)  # one transaction for a grid keystroke
        return [record_json(ds.get(r.id)) for r in records]

    def undo(self, count: int = 1) -> list[dict[str, Any]]:
        """Revert this annotator's latest `count` label changes; the records touched, latest undo last."""
        ds = self.dataset()
        self._before_write()
        touched: list[int] = []
        for _ in range(count):
            record_id = ds.undo_last_label(self.annotator)
            if record_id is None:
                break
            touched.append(record_id)
        return [record_json(ds.get(i)) for i in touched]

    def frame_size(self) -> tuple[int, int] | None:
        """(width, height) of the dataset's images, from its first readable one; None if it has none."""
        if self._frame_size is None:
            from camlytics.frames import decode_jpeg

            ds = self.dataset()
            for record in ds.records(order="time")[:5]:
                try:
                    height, width = decode_jpeg(ds.read_image(record), what=str(record.path)).shape[:2]
                except (CamlyticsError, OSError):
                    continue
                self._frame_size = (int(width), int(height))
                break
        return self._frame_size

    def set_roi(self, roi: tuple[int, int, int, int] | None) -> list[int] | None:
        """Set (or clear) the dataset's region of interest; 400 if it reaches outside the frames."""
        size = self.frame_size()
        if roi is not None and size is not None and (roi[2] > size[0] or roi[3] > size[1]):
            raise BadRequest(f"roi={list(roi)}: outside the {size[0]}x{size[1]} frames of this dataset")
        ds = self.dataset()
        self._before_write()
        ds.set_roi(roi)
        return None if ds.roi is None else list(ds.roi)


class MultiAnnotationService:
    """Several datasets behind one UI (`fleet annotate`, `improve --annotate`): one AnnotationService each.

    Records get session ids (1, 2, ...) mapped to (dataset key, record id); each record carries its sensor
    key, classes and ROI; "uncertain" order is the least confident first across every dataset, and the
    records named in `first` (e.g. frames just pulled from a camera) come before all others."""

    def __init__(self, datasets: dict[str, str | pathlib.Path], *, annotator: str,
                 first: dict[str, list[int]] | None = None) -> None:
        if not datasets:
            raise DatasetError("no datasets to annotate")
        self.annotator = validate_annotator(annotator)
        self.services = {key: AnnotationService(path, annotator=annotator) for key, path in datasets.items()}
        self.first = {(key, int(i)) for key, ids in (first or {}).items() for i in ids}
        self.ids: dict[tuple[str, int], int] = {}
        self.keys: dict[int, tuple[str, int]] = {}
        self.history: list[str] = []  # the dataset of each label this session wrote, for undo
        self.advice = None
        self.problems: dict[int, dict[str, Any]] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="camlytics-ds")

    async def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the one dataset thread (every dataset's connection lives there)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def dataset(self) -> Any:
        """Open every dataset (a broken one fails at start)."""
        return [service.dataset() for service in self.services.values()]

    def close(self) -> None:
        def _close() -> None:
            for service in self.services.values():
                if service._ds is not None:
                    service._ds.close()
                    service._ds = None

        self._executor.submit(_close).result(timeout=30)
        self._executor.shutdown(wait=True)

    def _sid(self, key: str, record_id: int) -> int:
        sid = self.ids.get((key, record_id))
        if sid is None:
            sid = self.ids[(key, record_id)] = len(self.ids) + 1
            self.keys[sid] = (key, record_id)
        return sid

    def _where(self, sid: int) -> tuple[str, int]:
        if sid not in self.keys:
            raise BadRequest(f"no record with id {sid}", 404)
        return self.keys[sid]

    def _json(self, key: str, record: Any) -> dict[str, Any]:
        ds = self.services[key].dataset()
        out = record_json(record)
        out.update(id=self._sid(key, record.id), record=int(record.id), sensor=key, classes=list(ds.classes),
                   roi=None if ds.roi is None else list(ds.roi))
        return out

    def classes(self) -> list[str]:
        """Every dataset's classes, in first-seen order (the progress chips)."""
        names: list[str] = []
        for service in self.services.values():
            names += [c for c in service.classes() if c not in names]
        return names

    def snapshot(self, order: str) -> dict[str, Any]:
        rows = [(key, r) for key, service in self.services.items() for r in service.dataset().records(order="time")]
        if order == "auto":
            order = "uncertain"
        if order == "unlabelled_first":
            rows.sort(key=lambda kr: (kr[1].label is not None, (kr[0], kr[1].id) not in self.first))
        elif order == "uncertain":
            rows.sort(key=lambda kr: (kr[1].label is not None, (kr[0], kr[1].id) not in self.first,
                                      kr[1].confidence is None, kr[1].confidence or 0.0))
        per_class: dict[str, int] = {c: 0 for c in self.classes()}
        labelled = 0
        for _, r in rows:
            if r.label is not None:
                labelled += 1
                per_class[r.label] = per_class.get(r.label, 0) + 1
        return {"dataset": ", ".join(self.services), "annotator": self.annotator, "classes": self.classes(),
                "order": order, "roi": None, "progress": {"total": len(rows), "labelled": labelled,
                                                          "per_class": per_class},
                "has_predictions": any(r.confidence is not None for _, r in rows),
                "records": [self._json(key, r) for key, r in rows], "problems": sorted(
                    self.problems.values(), key=lambda p: p["id"]), "advice": None, "sensors": list(self.services)}

    def record(self, sid: int) -> dict[str, Any]:
        key, record_id = self._where(sid)
        return self._json(key, self.services[key]._get(record_id))

    def image_file(self, sid: int) -> tuple[pathlib.Path | None, str]:
        key, record_id = self._where(sid)
        return self.services[key].image_file(record_id)

    def read_image(self, sid: int, path: pathlib.Path, rel: str) -> tuple[bytes | None, str | None]:
        key, record_id = self._where(sid)
        data, problem = self.services[key].read_image(record_id, path, rel)
        if problem is not None:
            self.problems[sid] = {"id": sid, "path": f"{key}: {rel}", "error": problem}
        else:
            self.problems.pop(sid, None)
        return data, problem

    def check_label(self, label: Any) -> Any:
        """Any class of any dataset, or null; set_labels checks it against each record's own classes."""
        if label is not None and (not isinstance(label, str) or label not in self.classes()):
            raise BadRequest(f"label {label!r} is not one of the classes {self.classes()}")
        return label

    def set_labels(self, sids: list[int], label: str | None) -> list[dict[str, Any]]:
        where = [self._where(sid) for sid in sids]
        for key, _ in where:  # every record must take this label before anything is written
            if label is not None and label not in self.services[key].classes():
                raise BadRequest(f"label {label!r} is not one of {key}'s classes {self.services[key].classes()}")
        out = []
        for key, record_id in where:
            self.services[key].set_labels([record_id], label)
            self.history.append(key)
            out.append(self.record(self._sid(key, record_id)))
        return out

    def undo(self, count: int = 1) -> list[dict[str, Any]]:
        touched = []
        for _ in range(count):
            if not self.history:
                break
            key = self.history.pop()
            service = self.services[key]
            service._before_write()
            record_id = service.dataset().undo_last_label(self.annotator)
            if record_id is not None:
                touched.append(self.record(self._sid(key, record_id)))
        return touched

    def set_roi(self, roi: Any) -> Any:
        raise BadRequest("several datasets are open: set each sensor's ROI in the fleet file (or annotate one "
                         "dataset with camlytics annotate)")


# -- request parsing -------------------------------------------------------------------------------
async def json_body(request: Request) -> dict[str, Any]:
    """The JSON object of a POST body; 415 unless sent as application/json (which cross-site forms cannot)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise BadRequest(f"content-type {ctype or 'none'!r}: send application/json", 415)
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise BadRequest(f"request body over {MAX_BODY_BYTES} bytes", 413)
    except ClientDisconnect:  # hung up (or cut for sending too slowly) before the whole body came
        raise BadRequest("the client closed the connection before sending the whole body") from None
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON ({exc})") from None
    except RecursionError:  # e.g. 100,000 nested arrays: nothing the API takes nests more than two deep
        raise BadRequest("body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


def record_id_of(value: Any, what: str = "id") -> int:
    """A record id from JSON: a non-negative integer below 2**63 (booleans and strings refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RECORD_ID:
        raise BadRequest(f"{what}={value!r}: expected a record id (integer 0..{MAX_RECORD_ID})")
    return value


def path_record_id(request: Request) -> int:
    """The record id in a URL path; 404 (as for an unknown id) unless it is a whole number in 0..2**63-1."""
    text = request.path_params["record_id"]
    if not re.fullmatch(r"-?[0-9]{1,30}", text):
        raise BadRequest(f"no record with id {text[:40]!r} (record ids are whole numbers)", 404)
    record_id = int(text)
    if not 0 <= record_id <= MAX_RECORD_ID:
        raise BadRequest(f"no record with id {record_id}", 404)
    return record_id


def roi_of(value: Any) -> Roi | None:
    """An ROI from JSON: null or [x0, y0, x1, y1] integers with x0 < x1, y0 < y1, in image range."""
    return None if value is None else check_roi(value, error=BadRequest, limit=MAX_ROI_COORD)


# -- the app ---------------------------------------------------------------------------------------
def create_app(
    dataset_dir: str | pathlib.Path,
    *,
    annotator: str,
    on_quit: Callable[[], None] | None = None,
    allowed_hosts: list[str] | None = None,
    advice: dict[str, Any] | None = None,
    service: Any = None,
) -> Starlette:
    """Build the annotation app for one dataset.

    `on_quit` is called after the reply to POST /api/quit (the CLI stops uvicorn there).
    `allowed_hosts` guards against DNS rebinding: by default only loopback Host headers are served.
    `advice` (from `annotate.advice.load_advice`) is served as /api/state's "advice"; None without --model.
    `service`: a MultiAnnotationService to serve several datasets instead (dataset_dir is then ignored).
    """
    service = service or AnnotationService(dataset_dir, annotator=annotator, advice=advice)

    def json_response(data: Any, status: int = 200, **kwargs: Any) -> JSONResponse:
        return JSONResponse(data, status, headers={"Cache-Control": "no-store", **SECURITY_HEADERS}, **kwargs)

    async def index(request: Request) -> Response:
        return Response((STATIC_DIR / "index.html").read_bytes(), media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache", **SECURITY_HEADERS})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            raise BadRequest(f"no static file {name!r}", 404)
        return Response((STATIC_DIR / name).read_bytes(), media_type=STATIC_FILES[name],
                        headers={"Cache-Control": "no-cache", **SECURITY_HEADERS})

    async def state(request: Request) -> Response:
        order = request.query_params.get("order", "auto")
        if order not in ("auto", "time", "unlabelled_first", "uncertain"):
            raise BadRequest(f"order={order!r}: expected auto, time, unlabelled_first or uncertain")
        body = json.dumps(await service.call(lambda: service.snapshot(order)), separators=(",", ":")).encode()
        # The page polls this every few seconds: an unchanged dataset costs a 304, not the whole list again.
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        headers = {"ETag": etag, "Cache-Control": "no-cache", **SECURITY_HEADERS}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    async def record(request: Request) -> Response:
        record_id = path_record_id(request)
        return json_response(await service.call(lambda: service.record(record_id)))

    async def image(request: Request) -> Response:
        record_id = path_record_id(request)
        path, rel = await service.call(lambda: service.image_file(record_id))
        if path is None:
            data, problem = None, "image path leads outside the dataset"
        else:
            # Reading and decoding run off the dataset thread so that label writes never wait for them.
            data, problem = await asyncio.to_thread(service.read_image, record_id, path, rel)
        if data is None:
            # The placeholder comes with an error status; browsers still draw it, scripts see the error.
            return Response(placeholder_svg(record_id, problem or "unavailable"), status_code=404,
                            media_type="image/svg+xml", headers={"Cache-Control": "no-store", **SECURITY_HEADERS})
        # A record's image never changes (content-addressed), so the browser may keep it.
        return Response(data, media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=86400, immutable", **SECURITY_HEADERS})

    async def label(request: Request) -> Response:
        body = await json_body(request)
        if "ids" in body:
            ids = body["ids"]
            if not isinstance(ids, list) or not ids or len(ids) > MAX_BATCH:
                raise BadRequest(f"ids: expected a list of 1..{MAX_BATCH} record ids")
            ids = [record_id_of(i, "ids[]") for i in ids]
        else:
            ids = [record_id_of(body.get("id"))]
        if "label" not in body:
            raise BadRequest("label: missing (a class name, or null to clear)")
        value = await service.call(lambda: service.check_label(body["label"]))
        records = await service.call(lambda: service.set_labels(ids, value))
        return json_response({"ok": True, "records": records})

    async def undo(request: Request) -> Response:
        body = await json_body(request)
        count = body.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_BATCH:
            raise BadRequest(f"count={count!r}: expected an integer 1..{MAX_BATCH} (label changes to undo)")
        records = await service.call(lambda: service.undo(count))
        return json_response({"ok": True, "records": records})

    async def roi(request: Request) -> Response:
        body = await json_body(request)
        if "roi" not in body:
            raise BadRequest("roi: missing (null or [x0, y0, x1, y1])")
        value = roi_of(body["roi"])
        saved = await service.call(lambda: service.set_roi(value))
        return json_response({"ok": True, "roi": saved})

    async def problems(request: Request) -> Response:
        return json_response({"problems": sorted(service.problems.values(), key=lambda p: p["id"])})

    async def quit_(request: Request) -> Response:
        await json_body(request)
        task = BackgroundTask(on_quit) if on_quit else None
        return json_response({"ok": True, "stopping": on_quit is not None}, background=task)

    async def bad_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadRequest)
        return json_response({"error": str(exc)}, exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        # Starlette's own refusals (no such route, wrong method) in the API's JSON shape.
        assert isinstance(exc, HTTPException)
        headers = {"Cache-Control": "no-store", **SECURITY_HEADERS, **(exc.headers or {})}
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=headers)

    async def user_error(request: Request, exc: Exception) -> Response:
        # A store refusal (e.g. the dataset vanished) is the user's problem, not a crash.
        return json_response({"error": str(exc)}, 409)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await service.call(service.dataset)  # open now: a broken dataset fails at start, not on first key
        try:
            yield
        finally:
            await asyncio.to_thread(service.close)

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/state", state),
        Route("/api/records/{record_id}", record),  # parsed by path_record_id: any text gets a JSON answer
        Route("/api/image/{record_id}", image),
        Route("/api/label", label, methods=["POST"]),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/api/roi", roi, methods=["POST"]),
        Route("/api/problems", problems),
        Route("/api/quit", quit_, methods=["POST"]),
    ]
    hosts = allowed_hosts if allowed_hosts is not None else LOOPBACK_HOSTS
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)],
        exception_handlers={BadRequest: bad_request, HTTPException: http_error, CamlyticsError: user_error},
        lifespan=lifespan,
    )
    app.state.service = service
    return app
