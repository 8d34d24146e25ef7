"""The one way the host runs the edge package under MicroPython: an interpreter and a batch runner.

An `Interpreter` is an argv prefix plus the environment it needs: today the PyPI `micropython`
(`host_interpreter()`), later a firmware build under qemu-user, e.g.

    Interpreter(("qemu-arm", "-L", sysroot, "build/armv7hf/micropython"), path=(".frozen",))

Every MicroPython process the host starts goes through one: `camlytics run` (the edge app), the
"micropython" evaluation runtime and the demo's held-out check (`run_edge_batch`), and the simulated
camera's device PATH (`find_micropython`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from camlytics.constants import EDGE_HEAPSIZE
from camlytics.errors import ModelError

HEAPSIZE = EDGE_HEAPSIZE
# Seconds a batch may take: start-up plus a generous per-item allowance (a 640x360 frame takes ~30 ms
# under the PyPI MicroPython; a slow CI machine, or qemu, may be 20x slower).
START_TIMEOUT = 60.0
ITEM_TIMEOUT = 1.0

# Runs inside MicroPython: argv = model file, list file. Each list line is "jpeg PATH" or "tensor PATH".
# Prints {"backend": ...}, then one line per item: {"logits": [...], "input": hex, "us": [prepare, infer]}
# or {"error": "..."}.
BATCH_SCRIPT = """
import sys, json, binascii, time
from camlytics.edge.model import load_model
from camlytics.edge.infer import Network
from camlytics.edge.preprocess import prepare
model = load_model(sys.argv[1])
net = Network(model)
print(json.dumps({"backend": net.backend}))
with open(sys.argv[2]) as f:
    lines = f.read().split("\\n")
for line in lines:
    if not line:
        continue
    kind, path = line.split(" ", 1)
    try:
        with open(path, "rb") as g:
            data = g.read()
        t0 = time.ticks_us()
        x = prepare(data, model.meta) if kind == "jpeg" else data
        t1 = time.ticks_us()
        logits = net.run(x)
        t2 = time.ticks_us()
        out = {"logits": [v for v in logits], "input": binascii.hexlify(x).decode(),
               "us": [time.ticks_diff(t1, t0), time.ticks_diff(t2, t1)]}
    except Exception as exc:
        out = {"error": "%s: %s" % (type(exc).__name__, exc)}
    print(json.dumps(out))
"""


def source_root() -> str:
    """The directory that holds the `camlytics` package: on MICROPYPATH, `camlytics.edge` imports from it."""
    import camlytics

    return str(Path(camlytics.__file__).resolve().parent.parent)


@dataclass(frozen=True)
class Interpreter:
    """A MicroPython interpreter: the argv prefix that starts it and the environment it needs.

    `path` is MICROPYPATH (default: the frozen modules, then this installation's source); `env` holds
    extra variables (e.g. for qemu); `heapsize` is passed as `-X heapsize=` (None: the interpreter's own).
    """

    argv: tuple[str, ...]
    path: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    heapsize: str | None = HEAPSIZE

    def command(self, *args: str) -> list[str]:
        """The command line that runs `args` (a script and its arguments, or `-m MODULE ...`)."""
        heap = ["-X", f"heapsize={self.heapsize}"] if self.heapsize else []
        return [*self.argv, *heap, *args]

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default: this process's environment) with `env` and MICROPYPATH set."""
        path = self.path if self.path is not None else (".frozen", source_root())
        return {**(os.environ if base is None else base), **self.env, "MICROPYPATH": os.pathsep.join(path)}

    def run(self, *args: str, timeout: float, cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
        """Run `args` to completion, capturing stdout and stderr as text; TimeoutExpired after `timeout` s."""
        return subprocess.run(self.command(*args), cwd=cwd, env=self.environ(), capture_output=True, text=True,
                              timeout=timeout)


def find_micropython() -> str | None:
    """The PyPI `micropython` executable next to this Python or on PATH; None when it is not installed."""
    beside = Path(sys.executable).parent / "micropython"
    return str(beside) if beside.exists() else shutil.which("micropython")


def host_interpreter() -> Interpreter | None:
    """The PyPI MicroPython as an Interpreter (the edge package from this source tree); None if missing."""
    mpy = find_micropython()
    return Interpreter((mpy,)) if mpy else None


@dataclass
class EdgeBatch:
    """What one MicroPython process computed: the int8 backend it used and one result per item.

    Each result is {"logits": [int8...], "input": bytes, "us": [prepare, infer]} or {"error": message}.
    """

    backend: str
    results: list[dict[str, Any]]


def run_edge_batch(interpreter: Interpreter, model_file: str | os.PathLike, items: Sequence[tuple[str, bytes]],
                   timeout: float | None = None) -> EdgeBatch:
    """Decode, preprocess and infer `items` ("jpeg" | "tensor", bytes) with the edge package in one process.

    ModelError when the process fails or does not answer for every item; a per-item failure (an
    unreadable JPEG) is that item's {"error": ...}.
    """
    for kind, _ in items:
        if kind not in ("jpeg", "tensor"):
            raise ValueError(f"item kind must be 'jpeg' or 'tensor', got {kind!r}")
    if not items:
        return EdgeBatch("", [])
    if timeout is None:
        timeout = START_TIMEOUT + ITEM_TIMEOUT * len(items)
    with tempfile.TemporaryDirectory(prefix="camlytics-mpy-") as tmp:
        root = Path(tmp)
        lines = []
        for i, (kind, data) in enumerate(items):
            path = root / f"{i:06d}.{'jpg' if kind == 'jpeg' else 'bin'}"
            path.write_bytes(data)
            lines.append(f"{kind} {path}")
        (root / "list.txt").write_text("\n".join(lines) + "\n")
        (root / "batch.py").write_text(BATCH_SCRIPT)
        try:
            proc = interpreter.run(str(root / "batch.py"), str(Path(model_file).resolve()), str(root / "list.txt"),
                                   timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise ModelError(f"MicroPython did not finish {len(items)} items in time") from None
    out = proc.stdout.splitlines()
    if proc.returncode != 0 or len(out) != len(items) + 1:
        tail = (proc.stderr or proc.stdout)[-800:].strip()
        raise ModelError(f"MicroPython batch failed (exit {proc.returncode}, {max(len(out) - 1, 0)} of "
                         f"{len(items)} results): {tail}")
    results = [json.loads(line) for line in out[1:]]
    for r in results:
        if "input" in r:
            r["input"] = bytes.fromhex(r["input"])
    return EdgeBatch(json.loads(out[0])["backend"], results)
