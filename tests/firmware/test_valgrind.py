"""valgrind memcheck of the firmware's C module doing the camera's per-frame work: the x86_64 debug
firmware (dynamically linked, -g) decodes, preprocesses and classifies 200 real JPEG frames of a
simulated day with the C module's kernels, under

    valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite

and must report 0 errors and no definitely-lost blocks (what the original project checked for its C
modules), with every logit equal to int8ref's.

What memcheck can and cannot see here (honestly: less than it would in a malloc-based program).
- It sees: a read or write of memory that is not addressable (outside every malloc'd block, below the
  stack pointer, unmapped, or freed by free()); a branch, an address or a system call that depends on
  an uninitialised value, e.g. a C local or a stack array the module reads before writing; misuse of
  malloc/free and blocks lost at exit (the valgrind log shows "3 allocs" in all: the interpreter and the
  C module allocate almost nothing outside the GC heap).
- It does not see: overruns inside MicroPython's GC heap. The heap is ONE malloc'd block (2 MiB here)
  and every object the kernels touch (the JPEG bytes, bytearrays, arrays, parameter blocks) is carved
  out of it, so a kernel that reads or writes past the end of one buffer into the next object is still
  inside a valid block for memcheck (only an access that leaves the whole heap is caught). Objects the
  GC frees are not marked either (a use after collection goes unseen), and the GC zeroes what it hands
  out, so bytes of a buffer that no kernel wrote read as defined zeros. Nor does memcheck see overruns
  between two arrays in one stack frame or in static data (all of it addressable).
Overruns inside the heap are what the C module's own argument checks (every index bounded before a loop,
`test_int8_cmodule.py` / `test_jpeg_cmodule.py` test them) and the bit-exact comparisons with int8ref and
Pillow guard against; this test adds the C stack, uninitialised values, the C heap and leaks, on the
real per-frame path over a whole simulated day.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from camlytics.firmware.build import ensure_firmware
from tests.conftest import micropython_source

N_FRAMES = 200
VALGRIND = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite"]
# MicroPython's GC is conservative: it reads every word of the C stack and the saved registers and treats
# any that points into its heap as a reference. Those words include never-written stack slots, which
# memcheck calls undefined, so the GC branches on undefined values when it scans the stack; a stale slot
# that happens to point into the heap marks a block, and the allocation table then carries that
# undefinedness into the mark loop, the sweep and later allocations. Expected and harmless (a conservative
# GC may keep a dead block alive, nothing more), and suppressed for errors whose innermost frame is the
# GC's own code (py/gc.c and the stack-scan helper, all named gc_*): any other uninitialised use -- in the
# C module, the VM, the JPEG and int8 paths -- still counts, as do all invalid reads/writes and leaks.
SUPPRESSIONS = """
{
   micropython-conservative-gc-cond
   Memcheck:Cond
   fun:gc_*
}
{
   micropython-conservative-gc-value8
   Memcheck:Value8
   fun:gc_*
}
"""

# Runs inside the firmware under memcheck: the frozen edge package, the C module's kernels only.
SCRIPT = """
import struct, sys
import _camlytics
from camlytics.edge import jpeg, preprocess
from camlytics.edge.infer import Network
from camlytics.edge.model import load_model
from camlytics.edge.tracker import StateTracker

model_path, frames_path = sys.argv[1], sys.argv[2]
model = load_model(model_path)
net = Network(model)  # "auto": the C module in a camlytics firmware
kernels = set(step.kernel for step in net._steps)
assert jpeg.KERNELS == "c" and net.backend == "c", (jpeg.KERNELS, net.backend)
assert kernels <= set((_camlytics.conv2d, _camlytics.depthwise, _camlytics.gap)), kernels
assert jpeg.kernel("jpeg_scan", None) is _camlytics.jpeg_scan
assert jpeg.kernel("area_resize", None) is _camlytics.area_resize
tracker = StateTracker(model.classes)
frames = open(frames_path, "rb")
while True:
    head = frames.read(4)
    if not head:
        break
    data = frames.read(struct.unpack("<I", head)[0])  # one snapshot at a time, as the camera fetches them
    tensor = preprocess.prepare(data, model)  # decode (C Huffman/IDCT) + crop + area resize (C)
    index, scores = net.predict(tensor)
    tracker.update(index, scores[index])
    print(" ".join(str(v) for v in net.logits))
frames.close()
print("kernels", len(kernels), "state", tracker.state)
"""


@pytest.fixture(scope="module")
def debug_firmware() -> Path:
    if not shutil.which("valgrind"):
        pytest.fail("valgrind not found: install the Debian package valgrind (make test installs it)")
    binary = ensure_firmware("x86_64", micropython_source(), debug=True)
    # the suppressions name functions: the debug build must keep its symbols
    assert b"gc_helper_collect_regs_and_stack" in binary.read_bytes(), f"{binary} has no symbols (stripped)"
    return binary


def day_frames(door_model: Path) -> tuple[list[bytes], np.ndarray]:
    """200 JPEG frames of a simulated office day at the model's camera resolution (every ~7 minutes, plus
    frames inside door events), and int8ref's logits for them (Pillow's decode)."""
    from camlytics.edge.model import load_model
    from camlytics.edge.preprocess import prepare_host
    from camlytics.model import int8ref
    from camlytics.sim.camera import shared_scene

    model = load_model(str(door_model / "model.cml"))
    width, height = model.meta["preprocess"]["source_size"]
    scene = shared_scene("office", 11, width, height)
    times = [i * 86400.0 / (N_FRAMES // 2) + 13.0 for i in range(N_FRAMES // 2)]
    events = scene.timeline.events[: N_FRAMES // 4]
    times += [e.start + f * (e.end - e.start) for e in events for f in (0.3, 0.7)]
    times += [i * 600.0 + 300.0 for i in range(N_FRAMES - len(times))]  # if the day had few events
    frames = [scene.frame(t).jpeg for t in times[:N_FRAMES]]
    x = np.stack([prepare_host(f, model) for f in frames])
    return frames, int8ref.forward(int8ref.as_model(door_model / "model.cml"), x)


def test_memcheck_of_decode_preprocess_and_inference_over_200_frames(debug_firmware, door_model, tmp_path):
    frames, want = day_frames(door_model)
    assert len(frames) == N_FRAMES and {int(v) for v in want.argmax(1)} == {0, 1}  # both door states
    blob = tmp_path / "frames.bin"
    blob.write_bytes(b"".join(len(f).to_bytes(4, "little") + f for f in frames))
    script = tmp_path / "frames.py"
    script.write_text(SCRIPT)
    log = tmp_path / "memcheck.log"
    supp = tmp_path / "micropython.supp"
    supp.write_text(SUPPRESSIONS)
    env = {**os.environ, "MICROPYPATH": ".frozen"}  # the frozen package only, as on the camera
    started = time.monotonic()
    proc = subprocess.run([*VALGRIND, f"--suppressions={supp}", f"--log-file={log}", str(debug_firmware), str(script),
                           str(door_model / "model.cml"), str(blob)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    seconds = time.monotonic() - started
    report = log.read_text(errors="replace")
    assert proc.returncode == 0, f"exit {proc.returncode} after {seconds:.0f} s\n{report[-6000:]}\n{proc.stderr[-2000:]}"
    assert "ERROR SUMMARY: 0 errors from 0 contexts" in report, report[-6000:]
    assert "definitely lost: 0 bytes in 0 blocks" in report or "no leaks are possible" in report, report[-4000:]
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith("kernels ") and int(lines[-1].split()[1]) >= 2, lines[-1]
    got = np.array([[int(v) for v in line.split()] for line in lines[:-1]])
    assert got.shape == want.shape and np.array_equal(got, want), "the C module's logits differ from int8ref"
