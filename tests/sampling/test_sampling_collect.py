"""`camlytics collect`: frames into a dataset within budget, Ctrl-C, a camera that goes away, bad input."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from camlytics.cli import main
from camlytics.frames import encode_jpeg
from camlytics.sampling import make_sampler
from camlytics.sampling.collect import StopFlag, collect
from camlytics.sources import open_source
from camlytics.store import Dataset

SIM = "sim:office?seed=1&interval=10&start=24000&duration=1200&width=320&height=180"


def test_collect_from_the_simulator_stores_kept_frames_with_truth(tmp_path, capsys):
    ds_dir = tmp_path / "ds"
    assert main(["collect", SIM, "--dataset", str(ds_dir), "--budget", "12", "--roi", "160,40,200,100"]) == 0
    assert "done: 120 frames seen" in capsys.readouterr().out
    with Dataset.open(ds_dir) as ds:
        records = ds.records()
        assert 0 < len(records) <= 12 and ds.roi == (160, 40, 200, 100)
        assert all(r.sampler.startswith("smart/") and r.reason for r in records)
        assert all(r.meta["truth"]["state"] in ("open", "closed") for r in records)
        assert all(24000 <= r.timestamp < 25200 for r in records)


def test_time_sampler_keeps_every_nth_second(tmp_path):
    assert main(["collect", SIM, "--dataset", str(tmp_path / "ds"), "--sampler", "time", "--every", "100"]) == 0
    with Dataset.open(tmp_path / "ds") as ds:
        assert [r.timestamp for r in ds.records()] == [24000.0 + 100 * i for i in range(12)]
        assert ds.roi is not None  # no --roi: the simulated door's region, stored for annotation and training


def test_ctrl_c_stops_cleanly_with_everything_kept_so_far(tmp_path):
    ds_dir = tmp_path / "ds"
    proc = subprocess.Popen(
        [sys.executable, "-m", "camlytics", "collect", "sim:office?seed=2&interval=10&width=320&height=180",
         "--dataset", str(ds_dir), "--sampler", "time", "--every", "10", "--budget", "9000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if (ds_dir / "index.sqlite").exists():
            with Dataset.open(ds_dir) as ds:
                if len(ds) >= 5:
                    break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err  # 128+SIGINT, as a shell reports Ctrl-C
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("stopped by Ctrl-C")
    kept = int(summary.split(" kept")[0].rsplit(" ", 1)[1])
    with Dataset.open(ds_dir) as ds:
        assert len(ds) == kept >= 5 and ds.integrity_check() == "ok"


def test_a_camera_that_goes_away_is_retried_and_the_run_continues(tmp_path):
    from camlytics.sim.camera import SimulatedCamera

    seen = []
    stop = StopFlag()
    with SimulatedCamera(preset="office", seed=0, auth=None, prewarm=False) as cam, \
            Dataset.open(tmp_path / "ds", create=True) as ds:
        sampler = make_sampler("time", budget=1000, duration=3600, interval=0.01)
        results: list = []
        worker = threading.Thread(target=lambda: results.append(collect(
            lambda: open_source(cam.url, resolution="320x180", interval=0.1, retries=1, backoff=0.05, timeout=5),
            ds, sampler, live=True, stop=stop, on_frame=lambda stats: seen.append(stats.seen), backoff_start=0.1)))
        worker.start()
        try:
            _wait(lambda: seen and seen[-1] >= 3)
            before = seen[-1]
            cam.inject_fault("drop", count=8)  # the camera hangs up on every request for a while ...
            _wait(lambda: seen[-1] >= before + 5)  # ... and frames flow again afterwards
        finally:
            stop.event.set()
            worker.join(30)
        stats = results[0]
        assert stats.reconnects >= 2 and stats.last_error
        assert stats.stopped and len(ds) == stats.kept == stats.seen >= before + 5


def _wait(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "args, message",
    [
        (["sim:office?seed=1", "--roi", "1,2,3"], "--roi must be four integers"),
        (["sim:office?seed=1", "--roi", "50,50,10,10"], "roi must satisfy 0 <= x0 < x1 and 0 <= y0 < y1, got 50,50,10,10"),
        (["sim:office?seed=1", "--roi=-10,0,50,50"], "got -10,0,50,50"),
        (["sim:office?seed=1", "--roi", "-10,0,50,50"], "got -10,0,50,50"),  # not "expected one argument"
        (["sim:office?seed=1", "--per-hour", "-1"], "--per-hour must be a positive whole number"),
        (["sim:office?seed=1", "--sampler", "time", "--every", "-1"], "--every must be a positive number"),
        (["sim:office?seed=1", "--every", "5"], "--every sets the time sampler's spacing"),
        (["/no/such/folder"], "no such file or directory"),
        (["sim:office?seed=1", "--budget", "0"], "--budget must be a positive whole number"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, args, message):
    assert main(["collect", *args, "--dataset", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_failed_collection_leaves_no_dataset_behind(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["collect", str(tmp_path / "empty"), "--dataset", str(tmp_path / "ds")]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not (tmp_path / "ds").exists()


def test_an_roi_outside_the_frames_is_refused_before_anything_is_stored(tmp_path, capsys):
    ds = tmp_path / "ds"
    spec = "sim:office?seed=1&interval=600&duration=3600"
    assert main(["collect", spec, "--dataset", str(ds), "--roi", "0,0,5000,5000"]) == 2
    err = capsys.readouterr().err
    assert "error: roi 0,0,5000,5000 is not inside the 640x360 frames" in err and "Traceback" not in err
    assert not ds.exists()  # a failed first run leaves no empty dataset (#28 item 7)
    assert main(["collect", spec, "--dataset", str(ds), "--roi", "10,10,200,200"]) == 0
    with Dataset.open(ds) as store:
        assert store.roi == (10, 10, 200, 200) and len(store) > 0


def test_unusable_dataset_paths_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["collect", SIM, "--dataset", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "index.sqlite").write_bytes(b"garbage" * 1000)
    assert main(["collect", SIM, "--dataset", str(tmp_path / "bad")]) == 2
    assert "corrupt" in capsys.readouterr().err


DISK_FULL = textwrap.dedent(
    """
    import resource, signal, sys
    from camlytics.cli import main
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the kernel then answers EFBIG, like ENOSPC on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, resource.RLIM_INFINITY))
    sys.exit(main(sys.argv[1:]))
    """
)


def test_disk_full_stops_the_run_with_a_clear_message_and_a_consistent_store(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        (folder / f"small_{i}.jpg").write_bytes(encode_jpeg(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)))
    big = encode_jpeg(rng.integers(0, 256, (500, 500, 3), dtype=np.uint8), quality=95)
    (folder / "timestamps.csv").write_text("filename,timestamp\nsmall_0.jpg,1\nsmall_1.jpg,2\nsmall_2.jpg,3\nbig.jpg,4\n")
    (folder / "big.jpg").write_bytes(big)
    out = subprocess.run(
        [sys.executable, "-c", DISK_FULL, "collect", str(folder), "--timestamps", str(folder / "timestamps.csv"),
         "--dataset", str(tmp_path / "ds"), "--sampler", "time", "--every", "0.5"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert "disk full while writing image" in out.stderr and "Traceback" not in out.stderr
    with Dataset.open(tmp_path / "ds") as ds:
        assert ds.integrity_check() == "ok"
        assert sorted(r.original_name.rsplit("/", 1)[1] for r in ds.records()) == [f"small_{i}.jpg" for i in range(3)]
    assert len(list((tmp_path / "ds" / "images").glob("*/*"))) == 3


def test_collected_folder_images_take_labels_by_their_file_names(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        (folder / f"cam_{i}.jpg").write_bytes(encode_jpeg(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)))
    (folder / "t.csv").write_text("cam_0.jpg,10\ncam_1.jpg,20\ncam_2.jpg,30\n")
    assert main(["collect", str(folder), "--timestamps", str(folder / "t.csv"), "--dataset", str(tmp_path / "ds"),
                 "--sampler", "time", "--every", "1"]) == 0
    (tmp_path / "labels.csv").write_text("cam_0.jpg,open\ncam_2.jpg,closed\n")
    assert main(["labels", "import", str(tmp_path / "ds"), str(tmp_path / "labels.csv")]) == 0
    with Dataset.open(tmp_path / "ds") as ds:
        assert [r.label for r in ds.records()] == ["open", None, "closed"]


def test_flips_sampler_runs_a_trained_model_directory_over_a_door_event(tmp_path, door_model):
    """`--model MODEL_DIR` loads the trained int8 model; the flips sampler keeps frames where it is
    unsure or flips briefly, and records its prediction reason."""
    from camlytics.sim.camera import shared_scene
    from camlytics.store import Dataset

    scene = shared_scene("office", 0, 640, 360)
    event = max(scene.timeline.events, key=lambda e: e.end - e.start)
    start = int(event.start) - 120
    src = f"sim:office?seed=0&interval=5&start={start}&duration={int(event.end - event.start) + 240}"
    assert main(["collect", src, "--dataset", str(tmp_path / "ds"), "--sampler", "flips",
                 "--model", str(door_model), "--budget", "20"]) == 0
    with Dataset.open(tmp_path / "ds") as ds:
        records = ds.records()
    assert records, "the flips sampler kept nothing around a door event"
    assert all(r.sampler.startswith("flips") for r in records)
    assert all(r.reason for r in records)


def test_only_a_list_option_takes_a_value_with_a_leading_minus():
    from camlytics.cli import join_list_values

    assert join_list_values(["train", "d", "--roi", "-1,0,5,5", "--seed", "-1"]) == ["train", "d", "--roi=-1,0,5,5", "--seed", "-1"]
    assert join_list_values(["train", "d", "--roi", "1,0,5,5"]) == ["train", "d", "--roi", "1,0,5,5"]
    assert join_list_values(["collect", "s", "--roi", "--budget", "-1,2"]) == ["collect", "s", "--roi", "--budget", "-1,2"]
