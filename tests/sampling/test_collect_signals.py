"""`camlytics collect` ends cleanly on SIGINT, SIGTERM and SIGHUP: the frames kept so far are in a consistent
dataset, no temp file is left, no process it started lives on, no traceback, and the exit code is 128+N."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from camlytics.store import Dataset
from camlytics.store.files import IMAGES_DIR, TMP_PREFIX
from tests.runtime.test_run_signals import processes_mentioning


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_ends_collect_cleanly_with_exit_128_plus_n(sig, tmp_path):
    ds_dir = tmp_path / "ds"
    proc = subprocess.Popen(
        [sys.executable, "-m", "camlytics", "collect", "sim:office?seed=3&interval=10&width=320&height=180",
         "--dataset", str(ds_dir), "--sampler", "time", "--every", "10", "--budget", "9000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if (ds_dir / "index.sqlite").exists():
            with Dataset.open(ds_dir) as ds:
                if len(ds) >= 5:
                    break
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, (out, err)
    assert "Traceback" not in out + err, err
    summary = out.strip().splitlines()[-1]
    kept = int(summary.split(" kept")[0].rsplit(" ", 1)[1])
    with Dataset.open(ds_dir) as ds:
        assert len(ds) == kept >= 5 and ds.integrity_check() == "ok"
        for record in ds.records():
            assert ds.image_path(record).is_file()
    assert list(Path(ds_dir, IMAGES_DIR).glob(f"*/{TMP_PREFIX}*")) == []
    assert processes_mentioning(str(ds_dir)) == []
