"""Label files in and out: CSV `filename,label`, the original tool's JSON index, an image folder per class."""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field

from camlytics.errors import DatasetError
from camlytics.store.dataset import Dataset, Record, check_classes

EXPORT_FORMATS = ("csv", "json", "imagefolder")
MAX_LABEL_FILE_BYTES = 64 * 1024 * 1024
MAX_LISTED = 5  # how many bad entries an error message names


@dataclass
class ImportResult:
    """What an import did: labels changed, labels that already had that value, entries skipped per unknown class,
    and the dataset's classes when the import set them (else None)."""

    changed: int
    unchanged: int
    skipped: dict[str, int] = field(default_factory=dict)
    classes: list[str] | None = None

    def skipped_line(self) -> str:
        """ "skipped 12 labels of unknown classes: 'person' 10, 'x' 2", or "" when none was skipped."""
        if not self.skipped:
            return ""
        counts = sorted(self.skipped.items(), key=lambda item: (-item[1], item[0]))
        return (f"skipped {sum(self.skipped.values())} labels of unknown classes: "
                + ", ".join(f"{name!r} {n}" for name, n in counts))


def read_label_file(path: str | os.PathLike) -> list[tuple[str, str, int]]:
    """(name, label, line or entry number) from a CSV `filename,label` or a JSON `{path: label}` file."""
    path = pathlib.Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_LABEL_FILE_BYTES:
            raise DatasetError(f"label file {path} is {size} bytes, more than {MAX_LABEL_FILE_BYTES}")
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"label file {path} does not exist") from None
    except UnicodeDecodeError:
        raise DatasetError(f"label file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise DatasetError(f"cannot read label file {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        return _parse_json(text, path)
    return _parse_csv(text, path)


def _parse_json(text: str, path: pathlib.Path) -> list[tuple[str, str, int]]:
    try:
        index = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"label file {path} is not valid JSON: {exc}") from None
    if not isinstance(index, dict):
        raise DatasetError(f"label file {path}: expected a JSON object {{path: label}}, got {type(index).__name__}")
    entries = []
    for n, (name, value) in enumerate(index.items(), 1):
        label = value.get("label") if isinstance(value, dict) else value  # tolerate {path: {"label": ...}}
        if not isinstance(label, str) or not label:
            raise DatasetError(f"label file {path}: entry {name!r} has label {value!r}, expected a class name")
        entries.append((name, label, n))
    return entries


def _parse_csv(text: str, path: pathlib.Path) -> list[tuple[str, str, int]]:
    entries = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < 2:
            raise DatasetError(f"label file {path} line {n}: expected 'filename,label', got {','.join(row)!r}")
        name, label = row[0].strip(), row[1].strip()
        if n == 1 and (name.lower(), label.lower()) in {("filename", "label"), ("file", "label"), ("path", "label")}:
            continue  # header
        if not name or not label:
            raise DatasetError(f"label file {path} line {n}: empty filename or label in {','.join(row)!r}")
        entries.append((name, label, n))
    return entries


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(repr(i) for i in items[:MAX_LISTED]) + more


def _resolve(ds: Dataset, name: str) -> list[Record]:
    """Records matching `name`; an exact path match wins over a base-name match."""
    found = ds.find(name)
    exact = [r for r in found if name in (r.path, r.original_name)]
    return exact or found


def import_labels(
    ds: Dataset,
    path: str | os.PathLike,
    annotator: str = "import",
    *,
    classes: list[str] | None = None,
    skip_unknown: bool = False,
) -> ImportResult:
    """Apply a label file to the dataset, all or nothing; every problem is found before anything is written.

    `classes` sets the dataset's classes first (it must keep every class labels already use); `skip_unknown`
    skips, and counts, entries whose label is not a class instead of refusing the file.
    """
    entries = read_label_file(path)
    if not entries:
        raise DatasetError(f"label file {path} has no entries")
    if classes is not None:
        classes = check_classes(classes, "--classes")
        dropped = sorted(ds.labels_in_use() - set(classes))
        if dropped:
            raise DatasetError(f"--classes {','.join(classes)} leaves out {_listed(dropped)}, which labels in the "
                               "dataset use; list every class in use")
    target = ds.classes if classes is None else classes
    skipped = Counter(label for _, label, _ in entries if label not in target)
    if skipped and not skip_unknown:
        raise DatasetError(f"label file {path}: unknown labels {_listed(sorted(skipped))}; the dataset's classes are "
                           f"{target} (--classes sets them, --skip-unknown skips such labels)")
    entries = [entry for entry in entries if entry[1] in target]
    unknown, ambiguous, duplicates = [], [], []
    wanted: dict[int, tuple[str, str, int]] = {}
    for name, label, n in entries:
        found = _resolve(ds, name)
        if not found:
            unknown.append(name)
        elif len(found) > 1:
            ambiguous.append(name)
        elif found[0].id in wanted:
            duplicates.append(f"{name} (entries {wanted[found[0].id][2]} and {n})")
        else:
            wanted[found[0].id] = (name, label, n)
    if unknown:
        raise DatasetError(f"label file {path}: {len(unknown)} files are not in the dataset: {_listed(unknown)}")
    if ambiguous:
        raise DatasetError(f"label file {path}: names match several images, use store paths: {_listed(ambiguous)}")
    if duplicates:
        raise DatasetError(f"label file {path}: images listed more than once: {_listed(duplicates)}")
    current = {r.id: r.label for r in ds.records()}
    changes = {rid: label for rid, (_, label, _) in wanted.items() if current.get(rid) != label}
    new_classes = classes is not None and classes != ds.classes
    if new_classes:
        ds.set_classes(classes)  # checked above: nothing below can refuse the file now
    if changes:
        ds.set_labels(changes, annotator)
    return ImportResult(changed=len(changes), unchanged=len(wanted) - len(changes), skipped=dict(skipped),
                        classes=classes if new_classes else None)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_text(out: pathlib.Path, text: str) -> None:
    """Write a whole text file or nothing (temp file in the same folder, then rename), with the usual
    permissions (mkstemp's are 0600)."""
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def export_labels(ds: Dataset, fmt: str, out: str | os.PathLike) -> int:
    """Write the labelled records as csv, json (original tool's index) or imagefolder; returns how many."""
    if fmt not in EXPORT_FORMATS:
        raise DatasetError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    out = pathlib.Path(out).expanduser().absolute()
    if not out.parent.is_dir():
        raise DatasetError(f"cannot write {out}: folder {out.parent} does not exist")
    records = ds.records(labelled=True)
    try:
        if fmt == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(["filename", "label"])
            writer.writerows([r.path, r.label] for r in records)
            _atomic_text(out, buf.getvalue())
        elif fmt == "json":
            _atomic_text(out, json.dumps({str(ds.image_path(r)): r.label for r in records}, indent=1) + "\n")
        else:
            _export_imagefolder(ds, records, out)
    except OSError as exc:
        raise DatasetError(f"cannot write {out}: {exc.strerror or exc}") from None
    return len(records)


def _export_imagefolder(ds: Dataset, records: list[Record], out: pathlib.Path) -> None:
    """out/<class>/<image>.jpg, built in a temp folder and renamed into place."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"export folder {out} already exists and is not empty")
    tmp = pathlib.Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        for name in ds.classes:
            (tmp / name).mkdir()
        for r in records:
            image = ds.image_path(r)
            if not image.is_file():
                raise DatasetError(f"record {r.id}: its image {r.path} is missing from the dataset; nothing exported")
            shutil.copyfile(image, tmp / r.label / pathlib.PurePath(r.path).name)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
