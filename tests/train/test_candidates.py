"""`camlytics train --candidates K --check DATASET`: whole runs with K seeds, the best on the check set kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from camlytics.cli import main
from camlytics.store import Dataset

from .conftest import FAST_TRAIN, make_sim_dataset, shared
from ..conftest import copy_dataset
from .test_commands import _expect_error


@pytest.fixture(scope="session")
def check_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 labelled office frames of another simulated day: the check set."""
    return shared(tmp_path_factory, "train-check", lambda p: make_sim_dataset(p, 12, 12, seed=5))


def _fast_config(**extra: object):
    """TrainConfig with the settings of conftest.FAST_TRAIN (the `model_dir` fixture's run)."""
    from camlytics.train.pipeline import TrainConfig

    return TrainConfig(input_wh=(16, 16), budget_macs=40000, epochs_teacher=2, epochs_student=3, epochs_finetune=1,
                       epochs_qat=1, pool=192, family="cnn", color="gray", **extra)


def _check_scores(model: object, check: Path) -> float:
    from camlytics.model import int8ref
    from camlytics.model.inputs import InputSpec, load_input
    from camlytics.train.metrics import balanced_accuracy

    q = int8ref.as_model(model)
    spec = InputSpec(16, 16, "gray", tuple(q.meta["preprocess"]["roi"]), tuple(q.meta["preprocess"]["source_size"]))
    with Dataset.open(check) as ds:
        records = ds.records(labelled=True)
        x = np.stack([load_input(ds.read_image(r), spec) for r in records])
        y = np.array([q.classes.index(r.label) for r in records])
    return balanced_accuracy(y, int8ref.forward(q, x).argmax(1), len(q.classes))


def test_the_best_run_on_the_check_set_is_kept(sim_dataset: Path, check_dataset: Path, model_dir: Path,
                                               tmp_path: Path) -> None:
    from camlytics.train.pipeline import run_training

    models: dict = {}
    metrics = run_training(sim_dataset, tmp_path / "m", _fast_config(candidates=3, check=str(check_dataset), jobs=2),
                           models=models)
    cands = metrics["candidates"]
    assert [(c["index"], c["seed"]) for c in cands] == [(0, 0), (1, 1), (2, 2)] and sum(c["chosen"] for c in cands) == 1

    # Candidate i is the one-candidate run with seed i, bit for bit.
    runs = [m["int8"].to_bytes() for m in models["candidates"]]
    assert runs[0] == (model_dir / "model.cml").read_bytes()
    assert main(["train", str(sim_dataset), "--out", str(tmp_path / "seed1"), *FAST_TRAIN, "--seed", "1"]) == 0
    assert runs[1] == (tmp_path / "seed1" / "model.cml").read_bytes()
    assert len(set(runs)) == 3
    # Each is scored on the check set as the int8 reference scores it ...
    for c, run in zip(cands, runs):
        assert c["check_balanced_accuracy"] == pytest.approx(_check_scores(run, check_dataset))
    # ... and the kept one is the best: check accuracy, then lower check log loss; ties to the first.
    keys = [(c["check_balanced_accuracy"], -c["check_log_loss"]) for c in cands]
    kept = keys.index(max(keys))
    assert cands[kept]["chosen"]
    out = tmp_path / "m"
    assert (out / "model.cml").read_bytes() == runs[kept]
    assert metrics["check"]["int8"]["balanced_accuracy"] == cands[kept]["check_balanced_accuracy"]
    assert not [p for p in out.iterdir() if p.name.startswith("candidate")]  # only the kept run's files

    report = (out / "report.html").read_text()
    assert "Candidate runs" in report and report.count("<td>kept</td>") == 1 and "Check set (int8)" in report
    config = json.loads((out / "config.json").read_text())
    assert (config["candidates"], config["seed"], config["kept_seed"], config["jobs"]) == (3, 0, kept, 2)
    assert json.loads((out / "metrics.json").read_text())["candidates"] == cands
    assert metrics["train_seconds"] >= max(c["seconds"] for c in cands)  # the whole run, not the kept one's


def test_runs_in_parallel_processes_equal_runs_one_after_another(sim_dataset: Path, check_dataset: Path,
                                                                  tmp_path: Path) -> None:
    import multiprocessing

    from camlytics.train.pipeline import run_training

    results = {}
    for jobs in (1, 3):
        models: dict = {}
        metrics = run_training(sim_dataset, tmp_path / f"jobs{jobs}",
                               _fast_config(candidates=3, check=str(check_dataset), jobs=jobs), models=models)
        results[jobs] = ([{k: v for k, v in c.items() if k != "seconds"} for c in metrics["candidates"]],
                         [m["int8"].to_bytes() for m in models["candidates"]],
                         (tmp_path / f"jobs{jobs}" / "model.cml").read_bytes())
    assert results[1] == results[3]
    assert len(set(results[1][1])) == 3
    assert json.loads((tmp_path / "jobs1" / "config.json").read_text())["jobs"] == 1
    assert not multiprocessing.active_children()  # every worker process has ended
    # One after another, the whole run takes at least the sum of the runs.
    metrics = json.loads((tmp_path / "jobs1" / "metrics.json").read_text())
    assert metrics["train_seconds"] >= sum(c["seconds"] for c in metrics["candidates"])


def test_a_candidate_process_that_dies_stops_the_run(sim_dataset: Path, check_dataset: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    """A worker killed from outside (as the kernel's OOM killer would) ends training with one clear line."""
    import os
    import signal
    import threading

    killed: list[int] = []

    def kill_first_worker() -> None:
        for _ in range(600):
            workers = [pid for pid in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
                       if b"spawn_main" in _cmdline(pid)]
            if workers:
                os.kill(int(workers[0]), signal.SIGKILL)
                killed.append(int(workers[0]))
                return
            threading.Event().wait(0.05)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    try:
        _expect_error(sim_dataset, tmp_path, capsys, "its process ended with exit code -9", "--candidates", "2",
                      "--jobs", "2", "--check", str(check_dataset))
    finally:
        killer.join()
    assert killed


def _saves_its_run_then_dies(messages: object, parent: int, dataset: Path, run_dir: Path, cfg: object,
                             index: int) -> None:
    """Stands in for pipeline._candidate_worker: saves a run; candidate 1 is then killed before it can say so."""
    import os
    import pickle
    import signal

    from camlytics.train.pipeline import RESULT_FILE

    run_dir.mkdir()
    (run_dir / RESULT_FILE).write_bytes(pickle.dumps(({"seed": cfg.seed}, (), {})))
    if index == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    messages.put(("done", index, "done"))


def test_a_candidate_killed_after_saving_its_run_still_counts(tmp_path: Path) -> None:
    from rich.progress import Progress

    from camlytics.train.pipeline import RESULT_FILE, _train_in_processes

    cfgs = [_fast_config(seed=seed) for seed in (3, 4, 5)]
    with Progress(disable=True) as progress:
        results = _train_in_processes(tmp_path / "unused", tmp_path, cfgs, 2, progress, worker=_saves_its_run_then_dies)
    assert [r[0]["seed"] for r in results] == [3, 4, 5]
    assert not list(tmp_path.glob(f"candidate-*/{RESULT_FILE}"))  # read and removed


def _ends_without_a_word(messages: object, parent: int, dataset: Path, run_dir: Path, cfg: object,
                         index: int) -> None:
    """Stands in for pipeline._candidate_worker: exits cleanly without "done" or "failed"; saves a run unless
    its seed is odd."""
    import pickle

    from camlytics.train.pipeline import RESULT_FILE

    run_dir.mkdir()
    if cfg.seed % 2 == 0:
        (run_dir / RESULT_FILE).write_bytes(pickle.dumps(({"seed": cfg.seed}, (), {})))


def test_a_worker_that_ends_without_a_message_does_not_hang_the_run(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.progress import Progress

    from camlytics.errors import TrainingError
    from camlytics.train import pipeline

    monkeypatch.setattr(pipeline, "EXIT_GRACE", 0.3)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with Progress(disable=True) as progress:  # runs saved: they count
        results = pipeline._train_in_processes(tmp_path / "unused", tmp_path / "a", [_fast_config(seed=s) for s in (2, 4)],
                                               2, progress, worker=_ends_without_a_word)
        assert [r[0]["seed"] for r in results] == [2, 4]
        with pytest.raises(TrainingError, match=r"candidate 1 \(seed 3\): its process ended with exit code 0 but "
                                                r"without its result or an error"):
            pipeline._train_in_processes(tmp_path / "unused", tmp_path / "b", [_fast_config(seed=s) for s in (2, 3)],
                                         2, progress, worker=_ends_without_a_word)


def test_a_workers_failure_is_one_small_message() -> None:
    """Every message fits one atomic pipe write: a bug's deep traceback is cut to its end, a user error kept."""
    import pickle

    from camlytics.errors import DatasetError
    from camlytics.train.pipeline import MESSAGE_LIMIT, _failure

    def deep(n: int) -> None:
        if n:
            deep(n - 1)
        raise ValueError("x" * 5000)

    try:
        deep(200)
    except ValueError as exc:
        data = _failure(exc, "candidate 1 (seed 4)")
    assert len(data) <= MESSAGE_LIMIT
    err = pickle.loads(data)
    assert isinstance(err, RuntimeError) and str(err).startswith("candidate 1 (seed 4) failed:\n")
    assert "in deep" in str(err) and "ValueError: xxx" in str(err) and str(err).endswith("...\n")  # where, what (cut)
    user = pickle.loads(_failure(DatasetError("dataset d has no labels"), "candidate 0 (seed 0)"))
    assert isinstance(user, DatasetError) and str(user) == "dataset d has no labels"


def test_a_check_set_alone_is_scored_and_never_trained_on(sim_dataset: Path, check_dataset: Path, model_dir: Path,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", str(sim_dataset), "--out", str(tmp_path / "m"), *FAST_TRAIN, "--check",
                 str(check_dataset)]) == 0
    printed = capsys.readouterr().out
    assert "check set: int8 balanced accuracy" in printed and "kept" not in printed
    assert (tmp_path / "m" / "model.cml").read_bytes() == (model_dir / "model.cml").read_bytes()
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert "candidates" not in metrics and metrics["check"]["int8"]["n"] == 24
    assert metrics["check"]["int8"]["balanced_accuracy"] == pytest.approx(
        _check_scores(tmp_path / "m" / "model.cml", check_dataset))
    report = (tmp_path / "m" / "report.html").read_text()
    assert "Check set (int8)" in report and "Candidate runs" not in report


def test_candidates_print_a_line_each(sim_dataset: Path, check_dataset: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    assert main(["train", str(sim_dataset), "--out", str(tmp_path / "m"), *FAST_TRAIN, "--candidates", "2",
                 "--check", str(check_dataset), "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert "candidate 0 (seed 5): int8 check" in printed and "candidate 1 (seed 6): int8 check" in printed
    assert printed.count("<- kept (best on the check set)") == 1


def test_sigterm_stops_training_like_ctrl_c(sim_dataset: Path, check_dataset: Path, tmp_path: Path) -> None:
    """`kill PID` (a service manager stopping it, `timeout`) ends the workers and leaves nothing behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "model"
    proc = subprocess.Popen([sys.executable, "-m", "camlytics", "train", str(sim_dataset), "--out", str(out),
                             *FAST_TRAIN, "--candidates", "2", "--jobs", "2", "--check", str(check_dataset)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers: list[str] = []
    deadline = time.monotonic() + 60
    while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        workers = [pid for pid in (children.read_text().split() if children.exists() else [])
                   if b"spawn_main" in _cmdline(pid)]
        time.sleep(0.05)
    assert len(workers) == 2, "the candidate processes did not start"
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().endswith("camlytics train: interrupted")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".model.tmp")]
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]  # ended and reaped


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # ended meanwhile
        return b""


# ---- bad input: one clear line, exit code 2, nothing left where MODEL_DIR would be ----

@pytest.mark.parametrize("n", ["17", "-1"])
def test_jobs_out_of_range(sim_dataset: Path, check_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                           n: str) -> None:
    _expect_error(sim_dataset, tmp_path, capsys, f"jobs must be a whole number 0-16 (0: one per core), got {n}",
                  "--candidates", "2", "--check", str(check_dataset), "--jobs", n)


@pytest.mark.parametrize("k", ["0", "17", "-1"])
def test_candidates_out_of_range(sim_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture, k: str) -> None:
    _expect_error(sim_dataset, tmp_path, capsys, f"candidates must be a whole number 1-16, got {k}", "--candidates", k)


def test_without_a_check_set_the_best_cross_validated_candidate_is_kept(sim_dataset: Path, tmp_path: Path) -> None:
    from camlytics.train.pipeline import run_training

    models: dict = {}
    metrics = run_training(sim_dataset, tmp_path / "m", _fast_config(candidates=2, jobs=2), models=models)
    cands = metrics["candidates"]
    assert all(c["check_balanced_accuracy"] is None for c in cands) and "check" not in metrics
    kept = next(i for i, c in enumerate(cands) if c["chosen"])
    assert cands[kept]["cv_balanced_accuracy"] == max(c["cv_balanced_accuracy"] for c in cands)
    assert metrics["cv"]["shipped"]["mean"] == cands[kept]["cv_balanced_accuracy"]  # the kept run's own metrics
    assert (tmp_path / "m" / "model.cml").read_bytes() == models["candidates"][kept]["int8"].to_bytes()


def test_the_training_dataset_is_no_check_set(sim_dataset: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    _expect_error(sim_dataset, tmp_path, capsys, "is the training dataset", "--check", str(sim_dataset))


def test_a_missing_check_set(sim_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _expect_error(sim_dataset, tmp_path, capsys, f"--check: dataset {tmp_path / 'nope'} does not exist",
                  "--check", str(tmp_path / "nope"))


@pytest.mark.parametrize("candidates", [[], ["--candidates", "2", "--jobs", "2"]], ids=["one run", "in processes"])
def test_a_check_set_with_other_classes(check_dataset: Path, sim_dataset: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture, candidates: list[str]) -> None:
    """Also when the error is raised in a candidate's own process: the same one line, nothing left."""
    bad = tmp_path / "check"
    copy_dataset(check_dataset, bad)
    with Dataset.open(bad) as ds:
        ds.set_classes(["closed", "open", "ajar"])
        ds.set_label(ds.records(labelled=True)[0].id, "ajar", "test")
    _expect_error(sim_dataset, tmp_path, capsys, "--check: labels ['ajar']", "--check", str(bad), *candidates)


def test_a_check_set_sharing_images_with_the_training_set(sim_dataset: Path, check_dataset: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    mixed = tmp_path / "check"
    copy_dataset(check_dataset, mixed)
    with Dataset.open(sim_dataset) as train, Dataset.open(mixed) as ds:
        for r in train.records(labelled=True)[:3]:  # three training images copied into the check set
            rid = ds.add_image(train.read_image(r), timestamp=r.timestamp, source=r.source, sampler="copy",
                               reason="test", score=0.0)
            ds.set_label(rid, r.label, "test")
    _expect_error(sim_dataset, tmp_path, capsys, "3 of its labelled images are also in the training dataset",
                  "--check", str(mixed))


def test_a_check_set_of_another_frame_size(sim_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from camlytics.sim import Scene
    from camlytics.train.simdata import build_sim_dataset, state_times

    times = state_times(Scene("office", 5, 480, 270), 10, 10, np.random.default_rng(5))
    build_sim_dataset(tmp_path / "check", "office", 5, times, width=480, height=270)
    _expect_error(sim_dataset, tmp_path, capsys, "frames are 480x270, the training frames 320x180", "--check",
                  str(tmp_path / "check"))
