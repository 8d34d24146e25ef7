"""`camlytics collect` against faults, run as the user runs it (the real CLI in a subprocess): a camera that
refuses the credentials stops it with one error line, a camera that is busy is retried, and a disk that fills
while a new dataset gets its first frames leaves a dataset that opens (or none at all)."""

from __future__ import annotations

import contextlib
import resource
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from camlytics.errors import DatasetError
from camlytics.sim.camera import SimulatedCamera
from camlytics.store import Dataset
from camlytics.store.files import stored_images
from camlytics.store.health import read_only
from camlytics.store.schema import INDEX_NAME
from tests.robustness.storecheck import verify_store

CAMLYTICS = [sys.executable, "-m", "camlytics"]
SNAPSHOT = "/axis-cgi/jpg/image.cgi"
REFUSED = "camlytics collect: error: the camera refused the credentials (HTTP "


@pytest.fixture
def camera():
    with SimulatedCamera(preset="office", seed=0, speed=60.0, start=12 * 3600.0, auth=("root", "pass")) as cam:
        yield cam


def collect_args(url: str, ds: Path, *extra: str) -> list[str]:
    return [*CAMLYTICS, "collect", url, "--dataset", str(ds), "--sampler", "time", "--timeout", "2",
            "--retries", "0", *extra]


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return [line for line in (proc.stdout + proc.stderr).splitlines() if ": error:" in line]


def inject(cam: SimulatedCamera, status: int, count: int) -> None:
    """Make the camera answer the next `count` snapshot requests with `status` (through its HTTP fault API)."""
    query = f"path={SNAPSHOT}&status={status}&count={count}"
    request = urllib.request.Request(f"{cam.url}/camlytics-sim/fail?{query}", method="POST")
    credentials = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    credentials.add_password(None, cam.url, "root", "pass")
    opener = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(credentials),
                                         urllib.request.HTTPBasicAuthHandler(credentials))
    with opener.open(request, timeout=10) as answer:
        assert answer.status == 200


def stored_records(ds: Path) -> int:
    """Records committed so far in a dataset another process is writing (read-only; 0 before it exists)."""
    if not (ds / INDEX_NAME).exists():
        return 0
    with contextlib.closing(read_only(ds / INDEX_NAME)) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])
        except Exception:  # the schema is not committed yet
            return 0


def run_until_stored(args: list[str], ds: Path, records: int, then) -> subprocess.CompletedProcess:
    """Start collect, wait until it has stored `records` records, call `then()`, and wait for it to end."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while stored_records(ds) < records:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "collect stored nothing in 60 s"
            time.sleep(0.1)
        then()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


# ---- credentials -----------------------------------------------------------------------------------------


def test_a_wrong_password_stops_collect_at_the_first_frame_with_one_line_and_no_dataset(tmp_path, camera):
    ds = tmp_path / "new" / "ds"
    url = camera.url.replace("http://", "http://root:wrong@")
    proc = subprocess.run(collect_args(url, ds, "--budget", "3", "--interval", "1", "--duration", "30"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    [line] = error_lines(proc)
    assert line.startswith(REFUSED + "401): ") and "wrong user name or password" in line and "wrong@" not in line
    assert "--user/--password" in line and " after " not in line.split(": camera")[0]
    assert not (tmp_path / "new").exists()  # nothing was stored: the new dataset is removed again


def test_a_wrong_password_keeps_an_existing_dataset(tmp_path, camera):
    ds = tmp_path / "ds"
    with Dataset.open(ds, create=True):
        pass
    url = camera.url.replace("http://", "http://root:wrong@")
    proc = subprocess.run(collect_args(url, ds, "--budget", "3", "--interval", "1", "--duration", "30"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and error_lines(proc)[0].startswith(REFUSED + "401)")
    with Dataset.open(ds) as again:
        assert len(again) == 0


@pytest.mark.parametrize("status", [401, 403])
def test_a_password_changed_mid_run_stops_collect_with_the_frames_kept(tmp_path, camera, status):
    ds = tmp_path / "ds"
    url = camera.url.replace("http://", "http://root:pass@")
    args = collect_args(url, ds, "--budget", "500", "--interval", "0.2", "--duration", "300")
    proc = run_until_stored(args, ds, 2, lambda: inject(camera, status, 10_000))
    assert proc.returncode == 2
    [line] = error_lines(proc)
    assert line.startswith(f"{REFUSED}{status}) after "), line
    assert f"are stored in {ds}" in line
    check = verify_store(ds)
    assert check.sound and not check.orphans, check
    with Dataset.open(ds) as again:  # the dataset is consistent and opens; the frames kept before are there
        assert len(again) >= 2


def test_a_busy_camera_is_still_retried_with_backoff(tmp_path, camera):
    ds = tmp_path / "ds"
    url = camera.url.replace("http://", "http://root:pass@")
    args = collect_args(url, ds, "--budget", "500", "--interval", "0.2", "--duration", "6")
    proc = run_until_stored(args, ds, 1, lambda: inject(camera, 503, 3))
    assert proc.returncode == 0, proc.stderr
    assert error_lines(proc) == []
    assert "reconnects" in proc.stdout  # the 503s were retried, then frames flowed again
    assert verify_store(ds).sound


# ---- a full disk -----------------------------------------------------------------------------------------


def _file_size_limit(limit: int):
    def apply() -> None:
        # SIGXFSZ ignored: a write past the limit fails with EFBIG, as a write to a full disk fails with ENOSPC
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("limit", [8_000, 20_000, 60_000, 90_000])
def test_disk_full_while_a_new_dataset_gets_its_first_frames(tmp_path, limit):
    """Whatever write fails first (the index's schema, the first image, its row, a later row), the new
    dataset is removed whole or opens, with no image left without its row."""
    ds = tmp_path / "new" / "ds"
    proc = subprocess.run([*CAMLYTICS, "collect", "sim:office?seed=3&interval=60", "--dataset", str(ds),
                           "--sampler", "time", "--budget", "30", "--every", "60", "--duration", "1800"],
                          capture_output=True, text=True, timeout=120, preexec_fn=_file_size_limit(limit))
    assert proc.returncode == 2
    [line] = error_lines(proc)
    assert "disk" in line
    if not ds.exists():
        assert not (tmp_path / "new").exists()
        return
    check = verify_store(ds)
    assert check.sound and not check.orphans, check
    with Dataset.open(ds) as again:
        assert len(again) == len(stored_images(ds)) > 0  # kept only because it holds records
    info = subprocess.run([*CAMLYTICS, "info", str(ds)], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr


def test_a_failed_first_row_removes_its_image_but_never_a_stored_record(tmp_path):
    """In-process: the row of the second image fails (the index is made read-only underneath), the first
    record stays with its image, the second image goes; with no record at all the new folder goes."""
    ds = tmp_path / "ds"
    first, second = b"\xff\xd8 first", b"\xff\xd8 second"
    with pytest.raises(RuntimeError), Dataset.open_or_create(ds) as store:
        store.add_image(first, timestamp=1, source="t", sampler="s", reason="r", score=0)
        store._conn.execute("PRAGMA query_only = ON")  # the next row fails, as on a full disk
        with pytest.raises(DatasetError):
            store.add_image(second, timestamp=2, source="t", sampler="s", reason="r", score=0)
        raise RuntimeError("the block fails")
    check = verify_store(ds)
    assert check.sound and not check.orphans and len(stored_images(ds)) == 1
    with Dataset.open(ds) as again:
        assert len(again) == 1

    empty = tmp_path / "new" / "empty"
    with pytest.raises(RuntimeError), Dataset.open_or_create(empty) as store:
        store._conn.execute("PRAGMA query_only = ON")
        with pytest.raises(DatasetError):
            store.add_image(first, timestamp=1, source="t", sampler="s", reason="r", score=0)
        assert len(stored_images(empty)) == 1  # the image went first, its row failed
        raise RuntimeError("the block fails")
    assert not (tmp_path / "new").exists()
