"""The fault-injection matrix: each scenario runs real camlytics commands (subprocesses) against a real
simulated camera, a real mosquitto, a real disk limit or a real `kill -9`, and says how many tries it made,
how many the software survived and how much data was lost.

Survived means: the command ended by itself within its bound, with exit 0 or exactly one
`camlytics CMD: error: ...` line and no traceback, and (where a dataset is involved) the store verifies:
SQLite integrity "ok", every record's image present and matching its hash. Lost counts records whose image is
gone or damaged and acknowledged labels that are not in the store. Orphans (a stored image whose row a kill
prevented, a temporary file) are counted apart: nothing is lost, `camlytics repair` adopts them.

Used by tests/robustness/test_faults.py (few tries) and bench/faults.py (the table, more tries).
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tests.conftest import Mosquitto, find_free_port, wait_for_port
from tests.robustness.storecheck import verify_store

CAMLYTICS = [sys.executable, "-m", "camlytics"]


@dataclass
class Outcome:
    """One row of the matrix."""

    fault: str
    command: str
    tries: int = 0
    survived: int = 0
    lost: int = 0
    orphans: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, survived: bool, lost: int = 0, orphans: int = 0, note: str = "") -> None:
        self.tries += 1
        self.survived += bool(survived)
        self.lost += lost
        self.orphans += orphans
        if note and (not survived or lost):
            self.notes.append(note[-300:])


def clean_exit(proc: subprocess.CompletedProcess, *, want_ok: bool = False) -> tuple[bool, str]:
    """(survived, note): exit 0, or (unless want_ok) one `error:` line and no traceback."""
    out = (proc.stdout or "") + (proc.stderr or "")
    if "Traceback" in out:
        return False, "traceback: " + out[-300:]
    if proc.returncode == 0:
        return True, ""
    errors = [line for line in out.splitlines() if ": error:" in line]
    if want_ok or len(errors) != 1:
        return False, f"exit {proc.returncode}: " + out[-300:]
    return True, ""


def camlytics(args: list[str], timeout: float, **kw) -> subprocess.CompletedProcess | None:
    """Run a camlytics command; None when it did not end within `timeout` (it is killed)."""
    try:
        return subprocess.run([*CAMLYTICS, *args], capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        return None


def interrupted(args: list[str], after: float, **kw) -> tuple[bool, str]:
    """Start a command, Ctrl-C it after `after` seconds: (it stopped cleanly within 30 s, note)."""
    proc = subprocess.Popen([*CAMLYTICS, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    try:
        out = proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return False, "did not stop on Ctrl-C: " + proc.communicate()[0][-200:]
    if "Traceback" in out or proc.returncode not in (0, 130):
        return False, f"exit {proc.returncode}: {out[-300:]}"
    return True, ""


def model_dir(work: Path) -> Path:
    """A small valid model directory (the tiny test architecture)."""
    from camlytics.export.testmodels import random_model_bytes

    folder = work / "model"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.cml").write_bytes(random_model_bytes(3, "tiny"))
    return folder


class StallingServer:
    """Accepts connections and never answers (a camera whose HTTP server hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


# --- the camera misbehaving ---------------------------------------------------------------------------------

CAMERA_FAULTS = ["refused", "401", "503", "stall", "truncated", "html", "drop"]


def _camera(fault: str, cam, stall: StallingServer) -> str:
    """The camera URL a command should use for `fault`, with the fault injected (after one good answer)."""
    if fault == "refused":
        return f"http://127.0.0.1:{find_free_port()}"
    if fault == "stall":
        return f"http://127.0.0.1:{stall.port}"
    if fault == "401":
        return cam.url.replace("http://", "http://root:wrong@")
    if fault == "503":
        cam.inject_fault("status", count=3, status=503, after=1)
    else:
        cam.inject_fault(fault, count=3, after=1)
    return cam.url.replace("http://", "http://root:pass@")


def camera_faults(work: Path, tries: int, faults: list[str] = CAMERA_FAULTS) -> list[Outcome]:
    """Each camera fault against `run` (the edge app, 3 frames) and `collect` (3 frames into a dataset).

    run must finish its frames when the fault passes (503/truncated/html/drop: 3 answers, then good ones) and
    refuse cleanly at the start when it does not (refused, 401, stall); collect ends either way, store sound
    (a 401 with one error line, a camera that is away by Ctrl-C while it waits)."""
    from camlytics.sim.camera import SimulatedCamera

    model = model_dir(work)
    env = dict(os.environ, CAMLYTICS_PASSWORD="pass")
    rows = []
    stall = StallingServer()
    try:
        for fault in faults:
            run_row, collect_row = Outcome(fault, "run"), Outcome(fault, "collect")
            for i in range(tries):
                with SimulatedCamera(preset="office", seed=i, speed=60.0, start=12 * 3600.0, auth=("root", "pass")) as cam:
                    url = _camera(fault, cam, stall)
                    proc = camlytics(["run", str(model), "--camera", url, "--max-frames", "3", "--fps", "20",
                                      "--runtime", "python"], timeout=60, env=env)
                    recoverable = fault not in ("refused", "401", "stall")
                    ok, note = clean_exit(proc, want_ok=recoverable) if proc else (False, "did not end in 60 s")
                    run_row.add(ok, note=note)
                    url = _camera(fault, cam, stall)
                    ds = work / f"collect-{fault}-{i}"
                    args = ["collect", url, "--dataset", str(ds), "--sampler", "time", "--budget", "3",
                            "--interval", "1", "--duration", "3", "--timeout", "1", "--retries", "2"]
                    if recoverable or fault == "401":  # a wrong password stops collect with one error line
                        proc = camlytics(args, timeout=60, env=env)
                        ok, note = clean_exit(proc) if proc else (False, "did not end in 60 s")
                    else:  # collect waits for a camera that is away (backoff): Ctrl-C must stop it cleanly
                        ok, note = interrupted(args, 3.0, env=env)
                    check = verify_store(ds)
                    lost = len(check.missing) + len(check.corrupt)
                    collect_row.add(ok and check.sound, lost, len(check.orphans), note or check.problem)
            rows += [run_row, collect_row]
    finally:
        stall.close()
    return rows


# --- the broker down and back ---------------------------------------------------------------------------------


def broker_down_and_back(work: Path, tries: int) -> Outcome:
    """run publishes its state to mosquitto; the broker stops for 2 s and comes back: the state is published
    again (retained) and run ends by itself."""
    from camlytics.sim.camera import SimulatedCamera
    from tests.edge.mqtt_helpers import Subscriber

    model = model_dir(work)
    row = Outcome("broker down and back", "run --mqtt")
    for i in range(tries):
        (work / f"broker{i}").mkdir(parents=True, exist_ok=True)
        broker = Mosquitto(work / f"broker{i}")
        broker.start()
        try:
            with SimulatedCamera(preset="office", seed=i, speed=60.0, start=12 * 3600.0, auth=None) as cam:
                node = f"fault{i}"
                proc = subprocess.Popen([*CAMLYTICS, "run", str(model), "--camera", cam.url, "--max-frames", "80",
                                         "--fps", "10", "--runtime", "python", "--stable-frames", "1",
                                         "--mqtt", f"mqtt://127.0.0.1:{broker.port}", "--node-id", node],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                topic = f"camlytics/{node}/state"
                seen = _wait_state(broker, topic, Subscriber, 30)
                broker.stop()
                time.sleep(2)
                broker.start()
                again = _wait_state(broker, topic, Subscriber, 30)
                try:
                    out, _ = proc.communicate(timeout=60)
                    ended = proc.returncode == 0
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, ended = proc.communicate()[0], False
                row.add(seen and again and ended and "Traceback" not in out,
                        note=f"state before {seen}, after {again}, ended {ended}: {out[-200:]}")
        finally:
            broker.stop()
    return row


def _wait_state(broker: Mosquitto, topic: str, subscriber_class, timeout: float) -> bool:
    """Whether a (retained) state message arrives on `topic` within `timeout` seconds."""
    try:
        sub = subscriber_class(broker.host, broker.port, topic)
    except Exception:  # noqa: BLE001 - the broker may still be starting
        return False
    try:
        sub.wait_for(lambda t, payload, retain: bool(payload), timeout=timeout)
        return True
    except AssertionError:
        return False
    finally:
        sub.close()


# --- the disk full ----------------------------------------------------------------------------------------------


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        # SIGXFSZ ignored (and it stays ignored across exec): a write past the limit fails with EFBIG instead
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def disk_full(work: Path, tries: int, seed: int = 0) -> Outcome:
    """collect with writes failing past a file-size limit (RLIMIT_FSIZE, as a full disk fails them): a clear
    error or a normal end, and every record it did commit intact."""
    rng = random.Random(seed)
    row = Outcome("disk full (RLIMIT_FSIZE)", "collect")
    for i in range(tries):
        limit = rng.choice([20_000, 40_000, 60_000, 90_000, 150_000])
        ds = work / f"full-{i}"
        proc = camlytics(["collect", f"sim:office?seed={i}&interval=60", "--dataset", str(ds), "--sampler", "time",
                          "--budget", "30", "--every", "60", "--duration", "1800"],
                         timeout=120, preexec_fn=_file_size_limit(limit))
        ok, note = clean_exit(proc) if proc else (False, "did not end")
        check = verify_store(ds)
        lost = len(check.missing) + len(check.corrupt)
        # after the fault, the same dataset opens and takes more frames (no limit now)
        again = camlytics(["collect", f"sim:office?seed={i + 100}&interval=60", "--dataset", str(ds), "--sampler",
                           "time", "--budget", "2", "--every", "60", "--duration", "120"], timeout=120)
        reopened = again is not None and again.returncode == 0 and verify_store(ds).sound
        row.add(ok and check.sound and reopened, lost, len(check.orphans),
                f"limit {limit}: {note} {check.problem} reopened={reopened} {again.stderr[-200:] if again else ''}")
    return row


# --- kill -9 at random points -----------------------------------------------------------------------------------


def _kill_after(proc: subprocess.Popen, delay: float) -> None:
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


def kill_collect(work: Path, tries: int, seed: int = 0) -> Outcome:
    """kill -9 collect at a random instant; the store verifies and a new collect continues in it."""
    rng = random.Random(seed)
    row = Outcome("kill -9", "collect")
    for i in range(tries):
        ds = work / f"kill-collect-{i}"
        proc = subprocess.Popen([*CAMLYTICS, "collect", f"sim:office?seed={i}&interval=30", "--dataset", str(ds),
                                 "--sampler", "time", "--budget", "200", "--every", "30", "--duration", "6000"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _kill_after(proc, rng.uniform(0.5, 4.0))
        check = verify_store(ds)
        again = camlytics(["collect", f"sim:office?seed={i + 50}&interval=60", "--dataset", str(ds), "--sampler",
                           "time", "--budget", "1", "--every", "60", "--duration", "60"], timeout=120)
        ok, note = clean_exit(again) if again else (False, "second collect did not end")
        row.add(check.sound and ok and again.returncode == 0, len(check.missing) + len(check.corrupt),
                len(check.orphans) + len(check.temp_files), f"{check.problem} {note}")
    return row


def _small_dataset(root: Path, n: int) -> None:
    """A dataset of n distinct small JPEGs (no labels)."""
    import io

    import numpy as np
    from PIL import Image

    from camlytics.store import Dataset

    ds = Dataset.open(root, create=True)
    try:
        for i in range(n):
            out = io.BytesIO()
            Image.fromarray(np.full((16, 16), i, np.uint8)).save(out, "JPEG")
            ds.add_image(out.getvalue(), timestamp=float(i), source="fault", sampler="time", reason="t", score=0.0)
    finally:
        ds.close()


def kill_annotate(work: Path, tries: int, seed: int = 0) -> Outcome:
    """Label through the annotation server's HTTP API and kill -9 it at a random instant: every label it
    acknowledged (HTTP 200) is in the store, which verifies."""
    rng = random.Random(seed)
    row = Outcome("kill -9", "annotate (label writes)")
    for i in range(tries):
        ds = work / f"kill-annotate-{i}"
        _small_dataset(ds, 40)
        port = find_free_port()
        proc = subprocess.Popen([*CAMLYTICS, "annotate", str(ds), "--port", str(port), "--no-browser"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        acked: dict[int, str] = {}
        in_flight = (0, "")
        try:
            wait_for_port("127.0.0.1", port, 30)
            killer = threading.Thread(target=_kill_after, args=(proc, rng.uniform(0.2, 2.0)))
            killer.start()
            for n in range(2000):
                record, label = n % 40 + 1, ("open", "closed")[(n // 40) % 2]
                in_flight = (record, label)  # the kill may land after the commit, before the answer
                try:
                    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/label", method="POST",
                                                 data=json.dumps({"id": record, "label": label}).encode(),
                                                 headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(req, timeout=5) as response:
                        if response.status == 200:
                            acked[record] = label
                except OSError:
                    break  # the server is gone
            killer.join()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        check = verify_store(ds)
        from camlytics.store import Dataset

        stored = {}
        if check.ok:
            with Dataset.open_or_create(ds) as d:
                stored = {r.id: r.label for r in d.records()}
        lost = sum(stored.get(rid) not in (label, in_flight[1] if rid == in_flight[0] else label)
                   for rid, label in acked.items())
        row.add(check.sound and not lost and bool(acked), lost, len(check.orphans),
                f"{len(acked)} acked, {lost} lost, {check.problem}")
    return row


def _valid_model(folder: Path) -> bool:
    from camlytics.model.modelfile import read_model

    try:
        read_model(folder / "model.cml")
    except Exception:  # noqa: BLE001 - missing, half-written or invalid: not a model
        return False
    return True


def kill_train(work: Path, tries: int, seed: int = 0, retrain: bool = True, span: float | None = None) -> Outcome:
    """Train a model, then kill -9 later trains into the same MODEL_DIR at random instants of a whole run:
    MODEL_DIR keeps a valid model (old or new; never a half-written one, never none unless the previous model
    lies set aside for the next run to put back), and the dataset verifies unchanged. With `retrain`, a last
    train must succeed and tidy up what the kills left. With `span` (seconds), no first train: the kills land
    in the first `span` seconds of a train into a new MODEL_DIR (the short version for the test suite)."""
    from tests.train.conftest import FAST_TRAIN, make_sim_dataset

    rng = random.Random(seed)
    row = Outcome("kill -9", "train")
    source = make_sim_dataset(work / "train-source", n_open=10, n_closed=10)
    before = verify_store(source)
    out = work / "kill-train"
    if span is None:
        start = time.monotonic()
        first = camlytics(["train", str(source), "--out", str(out), *FAST_TRAIN], timeout=600)
        span = time.monotonic() - start
        if first is None or first.returncode != 0 or not _valid_model(out):
            row.add(False, note="the first train failed: " + (first.stderr[-300:] if first else "did not end"))
            return row
    for _ in range(tries):
        had = _valid_model(out)  # a model the kill must not take away
        proc = subprocess.Popen([*CAMLYTICS, "train", str(source), "--out", str(out), *FAST_TRAIN],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _kill_after(proc, rng.uniform(0.3, 1.05 * span))
        aside = [p for p in out.parent.glob(f".{out.name}.*") if p.is_dir()]
        kept = _valid_model(out) or any(_valid_model(p) for p in aside) or not (had or (out / "model.cml").exists())
        after = verify_store(source)
        lost = (not kept) + len(after.missing) + len(after.corrupt) + (after.labels != before.labels)
        row.add(kept and after.sound and not lost, lost, len(aside), after.problem or f"model kept: {kept}")
    if retrain:
        again = camlytics(["train", str(source), "--out", str(out), *FAST_TRAIN], timeout=600)
        left = [p.name for p in out.parent.glob(f".{out.name}.*")]
        if again is None or again.returncode != 0 or not _valid_model(out) or left:
            row.notes.append(f"train after the kills: {again.returncode if again else 'did not end'}, left {left}")
            row.survived = min(row.survived, row.tries - 1)
    return row


def table(rows: list[Outcome]) -> str:
    """The matrix as a Markdown table."""
    lines = ["| fault | command | tries | survived | data lost | orphans |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.fault} | {r.command} | {r.tries} | {r.survived} | {r.lost} | {r.orphans} |")
    total = Outcome("all", "", sum(r.tries for r in rows), sum(r.survived for r in rows), sum(r.lost for r in rows),
                    sum(r.orphans for r in rows))
    lines.append(f"| **all** | | **{total.tries}** | **{total.survived}** | **{total.lost}** | {total.orphans} |")
    return "\n".join(lines)


def clean(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
