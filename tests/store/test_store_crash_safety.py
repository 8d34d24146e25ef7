"""The store survives kill -9 at any instant, two processes at once, and a full disk."""

from __future__ import annotations

import hashlib
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from camlytics.frames import decode_jpeg
from camlytics.store import Dataset
from camlytics.store.schema import INDEX_NAME

WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from camlytics.frames import encode_jpeg
    from camlytics.store import Dataset

    path, seed, count, label_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(seed)
    with Dataset.open(path, create=True) as ds:
        print("ready", flush=True)
        for i in range(count):
            jpeg = encode_jpeg(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8), quality=90)
            rid = ds.add_image(jpeg, timestamp=seed * 1e5 + i, source="writer", sampler="time",
                               reason="loop", score=float(i), meta={"seed": seed, "i": i})
            if label_every and i % label_every == 0:
                ds.set_label(rid, "open", f"writer{seed}")
    print("done", flush=True)
    """
)

LABELLER = textwrap.dedent(
    """
    import sys, time
    from camlytics.store import Dataset

    path, expected = sys.argv[1], int(sys.argv[2])
    labelled = set()
    deadline = time.monotonic() + 60
    with Dataset.open(path, create=True) as ds:
        while len(labelled) < expected and time.monotonic() < deadline:
            todo = ds.records(labelled=False)
            for rec in todo:
                ds.set_label(rec.id, "closed", "labeller")
                labelled.add(rec.id)
            if todo:
                undone = ds.undo_last_label("labeller")  # undo + redo races with the writer too
                ds.set_label(undone, "closed", "labeller")
            else:
                time.sleep(0.005)  # like a person, do not hammer the index while waiting
    print(len(labelled), flush=True)
    """
)


def check_consistent(root) -> Dataset:
    """Open the store and check: SQLite sound, every row's image complete, no temp files left."""
    ds = Dataset.open(root)
    assert ds.integrity_check() == "ok"
    for rec in ds.records():
        data = ds.image_path(rec).read_bytes()
        assert hashlib.sha256(data).hexdigest() in rec.path  # the whole file, not a prefix
        decode_jpeg(data, rec.path)
    assert not list(root.glob("images/*/.tmp-*"))  # left-overs of killed writers are cleaned on open
    return ds


def test_kill_9_at_random_moments_leaves_a_consistent_store(tmp_path):
    root = tmp_path / "ds"
    rng = random.Random(1234)
    counts = []
    for seed in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(seed), "100000", "3"],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.02, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        with check_consistent(root) as ds:
            counts.append(len(ds))
    assert counts == sorted(counts) and counts[-1] > 0  # nothing committed was lost


def test_two_processes_write_and_label_at_once(tmp_path):
    root = tmp_path / "ds"
    Dataset.open(root, create=True).close()
    n = 120
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root), "7", str(n), "0"], stdout=subprocess.PIPE, text=True)
    labeller = subprocess.Popen([sys.executable, "-c", LABELLER, str(root), str(n)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    w_out, _ = writer.communicate(timeout=90)
    l_out, l_err = labeller.communicate(timeout=90)
    assert writer.returncode == 0 and "done" in w_out
    assert labeller.returncode == 0, l_err
    assert int(l_out) == n
    with check_consistent(root) as ds:
        assert len(ds) == n
        assert all(rec.label == "closed" for rec in ds.records())  # labeller came after the writer
    with sqlite3.connect(root / INDEX_NAME) as conn:
        assert conn.execute("SELECT COUNT(*) FROM label_history").fetchone()[0] >= n


DISK_FULL = textwrap.dedent(
    """
    import resource, signal, sys
    import numpy as np
    from camlytics.errors import DatasetError
    from camlytics.frames import encode_jpeg
    from camlytics.store import Dataset

    rng = np.random.default_rng(0)
    with Dataset.open(sys.argv[1], create=True) as ds:
        for i in range(5):
            ds.add_image(encode_jpeg(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)), timestamp=i,
                         source="s", sampler="time", reason="r", score=0.0)
        big = encode_jpeg(rng.integers(0, 256, (500, 500, 3), dtype=np.uint8), quality=95)
        assert len(big) > 200_000, len(big)
        # The kernel now refuses to grow any file past 150 kB (EFBIG), like a full disk would (ENOSPC).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, resource.RLIM_INFINITY))
        try:
            ds.add_image(big, timestamp=9, source="s", sampler="time", reason="r", score=0.0)
        except DatasetError as exc:
            print(exc)
    """
)


def test_disk_full_while_writing_an_image_is_a_clear_error_and_leaves_no_trace(tmp_path):
    root = tmp_path / "ds"
    out = subprocess.run([sys.executable, "-c", DISK_FULL, str(root)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("disk full while writing image") and out.stdout.count("\n") == 1
    with check_consistent(root) as ds:
        assert len(ds) == 5
    assert len(list(root.glob("images/*/*"))) == 5  # no partial file of the big image
