"""`camlytics fleet collect`: every camera at once, one dataset per sensor; a camera that goes away is retried
and reported while the others go on (and `fleet check` says which); a stop signal ends it cleanly with exit 128+N."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from camlytics.store import Dataset
from camlytics.store.files import IMAGES_DIR, TMP_PREFIX


def assert_valid(dataset: Path, classes: list[str], roi: tuple | None = None) -> int:
    """The dataset opens, passes SQLite's integrity check, has every record's image; its record count."""
    with Dataset.open(dataset) as ds:
        assert ds.integrity_check() == "ok"
        assert list(ds.classes) == classes
        if roi is not None:
            assert tuple(ds.roi) == roi
        for record in ds.records():
            assert ds.image_path(record).is_file()
        count = len(ds)
    assert list(Path(dataset, IMAGES_DIR).glob(f"*/{TMP_PREFIX}*")) == []
    return count


def test_twelve_cameras_one_killed_mid_run_the_others_keep_collecting(sim_fleet):
    fleet = sim_fleet(12, interval=0.5, budget=40)
    check = fleet.run("check")
    assert check.returncode == 0 and "12/12 cameras reachable" in check.stdout, check.stdout + check.stderr
    proc = fleet.popen("collect", "--duration", "12")
    time.sleep(5)
    killed = fleet.cameras[5]
    killed.kill()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err
    lines = {line.split(":")[0]: line for line in out.splitlines()}
    assert "failed polls (down at the end)" in lines[killed.name] and "connection refused" in lines[killed.name]
    seen_after_kill = {}
    for cam in fleet.cameras:
        key = f"{cam.name}/door"
        kept = assert_valid(fleet.root / "datasets" / cam.name / "door", ["closed", "open"])
        seen = int(lines[key].split(": ")[1].split(" frames seen")[0])
        assert f"{kept} kept" in lines[key]
        seen_after_kill[cam.name] = seen
        if cam is not killed:
            assert cam.name not in lines  # no failure line for a healthy camera
    healthy = [seen for name, seen in seen_after_kill.items() if name != killed.name]
    # polled every 0.5 s for 12 s: about 24 frames each; the killed one stopped after about 5 s
    assert min(healthy) >= 14, seen_after_kill
    assert seen_after_kill[killed.name] < min(healthy)
    check = fleet.run("check", "--json")
    assert check.returncode == 1 and f"1 of 12 cameras not reachable: {killed.name}" in check.stderr, check.stderr


def test_one_frame_feeds_every_sensor_of_its_camera_each_with_its_roi_and_dataset(sim_fleet):
    fleet = sim_fleet(2, sensors=2, interval=0.3, budget=5)
    out = fleet.run("collect", "--frames", "6")
    assert out.returncode == 0, out.stderr
    for cam in fleet.cameras:
        door = [line for line in out.stdout.splitlines() if line.startswith(f"{cam.name}/door:")][0]
        half = [line for line in out.stdout.splitlines() if line.startswith(f"{cam.name}/s1:")][0]
        assert door.startswith(f"{cam.name}/door: 6 frames seen") and half.startswith(f"{cam.name}/s1: 6 frames seen")
        assert 1 <= assert_valid(fleet.root / "datasets" / cam.name / "door", ["closed", "open"]) <= 5
        assert assert_valid(fleet.root / "datasets" / cam.name / "s1", ["closed", "open"], roi=(0, 0, 160, 180)) >= 1


def test_sigterm_ends_the_run_cleanly_with_exit_143(sim_fleet):
    fleet = sim_fleet(3, interval=0.3, budget=500)
    proc = fleet.popen("collect")
    deadline = time.monotonic() + 60
    index = fleet.root / "datasets" / "cam00" / "door" / "index.sqlite"
    while time.monotonic() < deadline and not index.exists():
        time.sleep(0.2)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, (out, err)
    assert "Traceback" not in out + err and "stopped by Ctrl-C" in out
    for cam in fleet.cameras:
        assert assert_valid(fleet.root / "datasets" / cam.name / "door", ["closed", "open"]) >= 1


def test_a_camera_refusing_the_credentials_stops_alone(sim_fleet):
    fleet = sim_fleet(2, interval=0.3)
    fleet.env["CAM01_PASSWORD"] = "not-the-password"
    out = fleet.run("collect", "--duration", "3")
    assert out.returncode == 1
    assert "stopped early: cam01" in out.stderr and "Traceback" not in out.stderr
    assert "cam01: refused the credentials, not retried" in out.stdout and "HTTP 401" in out.stdout
    assert "cam00/door: " in out.stdout and not out.stdout.startswith("cam00/door: 0 frames")
