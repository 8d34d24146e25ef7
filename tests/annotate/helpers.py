"""Helpers for the annotation tests: small datasets of rendered frames and `camlytics annotate` in a subprocess."""

from __future__ import annotations

import contextlib
import functools
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

from camlytics.sim import Scene
from camlytics.store import Dataset

REPO = pathlib.Path(__file__).resolve().parents[2]
ANNOTATOR = "tester"


@functools.lru_cache(maxsize=4)
def scene(width: int = 320, height: int = 180, preset: str = "office") -> Scene:
    """The simulated door scene (cached: building one takes a moment)."""
    return Scene(preset=preset, seed=0, width=width, height=height)


def frame_time(i: int) -> float:
    """Capture time of test frame i: every 30 minutes from 06:00, around the simulated clock."""
    return (6 * 3600 + 1800.0 * i + 60.0 * (i // 48)) % 86400  # distinct images after a full day


def frame_jpeg(i: int) -> bytes:
    """Test frame i as the simulated camera would send it."""
    return scene().frame(frame_time(i)).jpeg


def add_frames(ds: Dataset, start: int, count: int, sampler: str = "time") -> list[int]:
    """Add test frames start .. start+count-1; their record ids."""
    return [
        ds.add_image(frame_jpeg(i), timestamp=frame_time(i), source="sim:office?seed=0", sampler=sampler,
                     reason=f"every 30 min (#{i})", score=1.0, original_name=f"frame-{i:04d}.jpg")
        for i in range(start, start + count)
    ]


def make_dataset(root: pathlib.Path, n: int = 30) -> pathlib.Path:
    """A dataset directory with `n` unlabelled frames."""
    with Dataset.open(root, create=True) as ds:
        add_frames(ds, 0, n)
    return root


class ServerProcess:
    """`camlytics annotate` running in a subprocess on a free port; `.url` is the URL it printed."""

    def __init__(self, dataset: pathlib.Path, *extra: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "camlytics", "annotate", str(dataset), "--port", "0", "--no-browser",
             "--annotator", ANNOTATOR, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.url = ""
        started = threading.Event()

        def read(stream, lines: list[str], watch: bool) -> None:
            for line in stream:
                lines.append(line)
                m = re.search(r"(http://\S+:\d+/)", line)
                if watch and m and not self.url:
                    self.url = m.group(1)
                if watch and "press Q" in line:
                    started.set()  # the socket is listening from here on
            started.set()  # exited before starting

        self.readers = [
            threading.Thread(target=read, args=(self.proc.stdout, self.stdout, True), daemon=True),
            threading.Thread(target=read, args=(self.proc.stderr, self.stderr, False), daemon=True),
        ]
        for reader in self.readers:
            reader.start()
        if not started.wait(30) or not self.url:
            self.stop()
            raise RuntimeError(f"annotate did not start: {self.output()}")

    def output(self) -> str:
        """Everything printed so far, stdout then stderr (all of it once the process has ended)."""
        if self.proc.poll() is not None:
            for reader in self.readers:
                reader.join(5)
        return "".join(self.stdout) + "".join(self.stderr)

    def stop(self) -> None:
        """Ctrl-C, as a person would; kill only if it does not stop."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@contextlib.contextmanager
def serve(dataset: pathlib.Path, *extra: str) -> Iterator[ServerProcess]:
    """Run `camlytics annotate DATASET --port 0` until the block ends."""
    server = ServerProcess(dataset, *extra)
    try:
        yield server
    finally:
        server.stop()
