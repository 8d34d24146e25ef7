"""Crash-safe, content-addressed image files: write to a temp file, fsync, rename, fsync the folder."""

from __future__ import annotations

import errno
import hashlib
import os
import pathlib
import re
import time

from camlytics.errors import DatasetError

IMAGES_DIR = "images"
TMP_PREFIX = ".tmp-"
# errno values that mean "no room to write": the run must stop with a clear message.
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_STORED_NAME = re.compile(r"[0-9a-f]{64}\.jpg")


def content_path(data: bytes) -> str:
    """The store path (relative, POSIX) of an image with these bytes: images/ab/<sha256>.jpg."""
    digest = hashlib.sha256(data).hexdigest()
    return f"{IMAGES_DIR}/{digest[:2]}/{digest}.jpg"


def stored_images(root: pathlib.Path) -> list[pathlib.Path]:
    """The content-addressed image files under root/images (images/ab/<sha256>.jpg), sorted by name."""
    images = root / IMAGES_DIR
    if not images.is_dir():
        return []
    return sorted(
        (path for path in images.glob("??/*.jpg") if _STORED_NAME.fullmatch(path.name) and path.parent.name == path.name[:2]),
        key=lambda path: path.name,
    )


def has_stored_images(root: pathlib.Path) -> bool:
    """Whether root/images holds at least one content-addressed image (stops at the first)."""
    images = root / IMAGES_DIR
    if not images.is_dir():
        return False
    return any(_STORED_NAME.fullmatch(path.name) for path in images.glob("??/*.jpg"))


def fsync_dir(path: pathlib.Path) -> None:
    """Flush a directory entry (a rename or a new file) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a write may be short)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_atomic(root: pathlib.Path, rel: str, data: bytes) -> None:
    """Write `data` to root/rel so that the file is either absent or complete, even after kill -9."""
    final = root / rel
    if final.exists() and final.stat().st_size == len(data):
        return  # content-addressed: same name, same bytes (a rename is all-or-nothing)
    folder = final.parent
    new_folder = not folder.is_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if new_folder:
        fsync_dir(folder.parent)
    tmp = folder / f"{TMP_PREFIX}{os.getpid()}-{time.monotonic_ns()}-{final.name}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        fsync_dir(folder)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if exc.errno in DISK_FULL_ERRNOS:
            raise DatasetError(f"disk full while writing image {final}: {exc.strerror}") from None
        raise DatasetError(f"cannot write image {final}: {exc.strerror or exc}") from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(root: pathlib.Path, max_age_s: float = 3600.0) -> int:
    """Delete temp files left by killed writers (their pid is gone, or they are old); returns how many."""
    images = root / IMAGES_DIR
    if not images.is_dir():
        return 0
    removed = 0
    now = time.time()
    for tmp in images.glob(f"*/{TMP_PREFIX}*"):
        try:
            pid = int(tmp.name[len(TMP_PREFIX):].split("-", 1)[0])
        except ValueError:
            pid = -1
        try:
            # A live pid may be another process writing right now (two processes share a dataset).
            if pid <= 0 or not _pid_alive(pid) or now - tmp.stat().st_mtime > max_age_s:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed
