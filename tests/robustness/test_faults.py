"""The fault-injection matrix, a few tries of each (bench/faults.py runs more and prints the table).

Real commands in subprocesses against a real simulated camera with fault injection, a real mosquitto stopped
and restarted, a real file-size limit (RLIMIT_FSIZE, as a full disk fails writes) and real `kill -9`s.
Each row must be survived every time with no data lost (see tests/robustness/faultlib.py for the rules)."""

from __future__ import annotations

import pytest

from tests.robustness import faultlib


def assert_clean(rows: list[faultlib.Outcome]) -> None:
    for row in rows:
        assert row.tries > 0 and row.survived == row.tries and row.lost == 0, (row, row.notes)


@pytest.mark.parametrize("fault", ["refused", "401", "503", "html"])  # all seven: bench/faults.py
def test_camera_faults_are_survived_by_run_and_collect(tmp_path, fault):
    assert_clean(faultlib.camera_faults(tmp_path, 1, [fault]))


def test_broker_down_and_back(tmp_path):
    assert_clean([faultlib.broker_down_and_back(tmp_path, 1)])


def test_disk_full_during_collect(tmp_path):
    row = faultlib.disk_full(tmp_path, 1, seed=3)
    assert_clean([row])


def test_kill_collect(tmp_path):
    assert_clean([faultlib.kill_collect(tmp_path, 1, seed=1)])


def test_kill_annotate_label_writes(tmp_path):
    assert_clean([faultlib.kill_annotate(tmp_path, 2, seed=2)])


def test_kill_train(tmp_path):
    assert_clean([faultlib.kill_train(tmp_path, 1, seed=4, retrain=False, span=6.0)])


def test_the_checks_can_fail(tmp_path):
    """Guard: verify_store and the exit rules do catch a broken store and a traceback."""
    import subprocess

    from tests.robustness.storecheck import verify_store

    faultlib._small_dataset(tmp_path / "ds", 3)
    image = next((tmp_path / "ds" / "images").rglob("*.jpg"))
    image.write_bytes(b"\xff\xd8 damaged")
    (tmp_path / "ds" / "images" / "orphan.jpg").write_bytes(b"x")
    check = verify_store(tmp_path / "ds")
    assert not check.sound and len(check.corrupt) == 1 and check.orphans
    crash = subprocess.CompletedProcess([], 1, "", "Traceback (most recent call last):\n  ...\nValueError: x\n")
    assert faultlib.clean_exit(crash) == (False, "traceback: " + crash.stderr[-300:])
    two = subprocess.CompletedProcess([], 2, "", "camlytics x: error: a\ncamlytics x: error: b\n")
    assert not faultlib.clean_exit(two)[0]


def test_disk_full_at_the_first_frame_leaves_a_dataset_that_opens(tmp_path):
    ds = tmp_path / "ds"
    proc = faultlib.camlytics(["collect", "sim:office?seed=3&interval=60", "--dataset", str(ds), "--sampler", "time",
                               "--budget", "30", "--every", "60", "--duration", "1800"], timeout=120,
                              preexec_fn=faultlib._file_size_limit(60_000))
    assert proc is not None and faultlib.clean_exit(proc)[0]
    if ds.exists():  # removed whole, or left as a dataset that opens
        again = faultlib.camlytics(["info", str(ds)], timeout=60)
        assert again is not None and again.returncode == 0, again.stderr if again else "info did not end"
