"""The JPEG kernels of the camlytics C module (firmware/cmodule/camlytics/jpeg.c) inside each firmware:
the edge decoder running on them decodes like Pillow, bit for bit, on the decoder corpus of
tests/edge/test_jpeg.py (every scale, luma, RGB and regions); `area_resize` gives the Python
kernel's bytes; corrupt data gives the viper kernel's JpegError (or its pixels), never a crash; and
buffers that do not fit the plan are refused with ValueError before anything is read or written.

ARM firmwares run under qemu-user. The frozen edge package (MICROPYPATH=.frozen, decorators
stripped: "pure" kernels beside "c") is what the camera runs; the x86_64 firmware also runs the
package from the repository, where the viper kernels compile, to compare C with viper.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest

from camlytics.edge import jpeg
from camlytics.edge.preprocess import area_bounds, area_resize_numpy
from tests.edge.conftest import SRC, run_micropython
from tests.edge.test_jpeg import CASES, RGB_CASES, SCALES, case_bytes, micropython_corpus, pillow_luma, pillow_rgb

ARCHES = ("x86_64", "armv7hf", "aarch64")


def run_firmware(argv: list[str], script: str, cwd: Path, path: str = ".frozen", timeout: float = 540) -> str:
    """Run `script` in a firmware with MICROPYPATH=`path` (".frozen": the package built into it) -> stdout."""
    (cwd / "script.py").write_text(script)
    proc = subprocess.run([*argv, "-X", "heapsize=64M", "script.py"], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "MICROPYPATH": path})
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def decoder_corpus() -> list[bytes]:
    """Every picture of the decoder corpus of tests/edge/test_jpeg.py."""
    return [case_bytes(c) for c in CASES + RGB_CASES] + micropython_corpus()


# Runs each job [file, kind, scale, box] with the default kernels (asserted to be the C module's) and
# writes its pixels to job<i>.raw; prints the kernel set, then one JSON line per job.
DECODE_SCRIPT = """
import json
from camlytics.edge import jpeg
print(jpeg.KERNELS)
for i, (name, kind, d, box) in enumerate(json.load(open("jobs.json"))):
    data = open(name, "rb").read()
    if kind == "luma":
        w, h, out = jpeg.decode_luma(data, d)
        where = [0, 0, w, h]
    elif kind == "rgb":
        w, h, out = jpeg.decode_rgb(data, d)
        where = [0, 0, w, h]
    else:
        where = list(jpeg.decode_luma_region(data, d, box)[:4])
        out = jpeg.decode_luma_region(data, d, box)[4]
    open("job%d.raw" % i, "wb").write(out)
    print(json.dumps(where))
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_the_c_module_decodes_the_corpus_like_pillow(arch, firmware_argv, tmp_path):
    rng = random.Random(23)
    jobs, expected = [], []
    for i, data in enumerate(decoder_corpus()):
        name = f"{i}.jpg"
        (tmp_path / name).write_bytes(data)
        for d in SCALES:
            if d > min(jpeg.info(data)[:2]):  # Pillow's draft() cannot scale below one pixel
                continue
            luma = pillow_luma(data, d)
            jobs.append([name, "luma", d, None])
            expected.append(luma)
            jobs.append([name, "rgb", d, None])
            expected.append(pillow_rgb(data, d))
            ph, pw = luma.shape
            for _ in range(2):
                x0, y0 = rng.randrange(pw), rng.randrange(ph)
                box = [x0, y0, rng.randint(x0 + 1, pw + 2), rng.randint(y0 + 1, ph + 2)]
                jobs.append([name, "region", d, box])
                expected.append(luma)
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    lines = run_firmware(firmware_argv(arch), DECODE_SCRIPT, tmp_path).splitlines()
    assert lines[0] == "c"  # the firmware picks its C module by itself
    assert len(lines) == len(jobs) + 1
    differing = []
    for i, ((name, kind, d, box), ref, line) in enumerate(zip(jobs, expected, lines[1:])):
        x, y, w, h = json.loads(line)
        got = np.frombuffer((tmp_path / f"job{i}.raw").read_bytes(), np.uint8)
        if kind == "region":
            block = 8 // d
            assert (x, y) == (box[0] // block * block, box[1] // block * block)
            ref = ref[y:y + h, x:x + w]
        if got.size != ref.size or not np.array_equal(got.reshape(ref.shape), ref):
            differing.append((name, kind, d, box))
    assert differing == []
    assert {kind for _, kind, _, _ in jobs} == {"luma", "rgb", "region"}


AREA_SCRIPT = """
import json
from camlytics.edge import jpeg, preprocess
same = 0
for i, (w, h, ch, box, ow, oh) in enumerate(json.load(open("cases.json"))):
    src = open("img%d.raw" % i, "rb").read()
    jpeg.KERNELS = "c"
    out = preprocess.area_resize(src, w, h, ch, box, ow, oh)
    jpeg.KERNELS = "pure"  # the frozen package's own kernels (no viper in a frozen copy)
    same += out == preprocess.area_resize(src, w, h, ch, box, ow, oh)
    open("out%d.raw" % i, "wb").write(out)
print(same)
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_the_c_area_resize_equals_the_python_one(arch, firmware_argv, tmp_path):
    rng = np.random.default_rng(5)
    cases = []
    for i in range(40):
        w, h, ch = int(rng.integers(1, 90)), int(rng.integers(1, 70)), int(rng.choice([1, 3]))
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        box = [x0, y0, int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1))]
        # out sizes below, equal to and above the box (upscaling repeats pixels)
        ow, oh = int(rng.integers(1, 2 * (box[2] - x0) + 2)), int(rng.integers(1, 2 * (box[3] - y0) + 2))
        image = rng.integers(0, 256, (h, w, ch), dtype=np.uint8)
        image[: h // 2] = 255  # saturated areas: the largest sums, rounding at the top
        (tmp_path / f"img{i}.raw").write_bytes(image.tobytes())
        cases.append((w, h, ch, box, ow, oh, image))
    (tmp_path / "cases.json").write_text(json.dumps([c[:6] for c in cases]))
    same = int(run_firmware(firmware_argv(arch), AREA_SCRIPT, tmp_path))
    assert same == len(cases)  # C == the Python kernel, in the firmware
    for i, (w, h, ch, box, ow, oh, image) in enumerate(cases):
        ref = area_resize_numpy(image, box, ow, oh)
        assert (tmp_path / f"out{i}.raw").read_bytes() == ref.tobytes(), (w, h, ch, box, ow, oh)
    assert max(len(area_bounds(c[3][2] - c[3][0], c[4])[0]) for c in cases) > 1


# Decodes each mutated file with the C and the viper kernels: one JSON line per file with both
# outcomes (pixels digest or the JpegError message). Any other exception or a crash ends the run.
CORRUPT_SCRIPT = """
import json, hashlib, binascii
from camlytics.edge import jpeg
blob = open("cases.bin", "rb").read()
for start, end, d, rgb in json.load(open("cases.json")):
    data = blob[start:end]
    outcome = []
    for kernels in ("c", "viper"):
        jpeg.KERNELS = kernels
        try:
            w, h, out = (jpeg.decode_rgb if rgb else jpeg.decode_luma)(data, d)
            outcome.append([w, h, binascii.hexlify(hashlib.sha256(out).digest()).decode()])
        except jpeg.JpegError as exc:
            outcome.append(str(exc))
    print(json.dumps(outcome))
"""


def mutations(rng: random.Random, count: int) -> list[tuple[bytes, int, bool]]:
    """Corrupt and truncated versions of small corpus files: (bytes, scale, decode RGB)."""
    bases = [case_bytes(dict(size=(32, 24), quality=70, subsampling=2, restart_marker_blocks=3)),
             case_bytes(dict(size=(40, 17), quality=95, subsampling=0)),
             case_bytes(dict(size=(24, 30), quality=30, subsampling=1, restart_marker_rows=1)),
             case_bytes(dict(size=(33, 20), quality=60, grey=True))]
    out = []
    for n in range(count):
        data = bytearray(rng.choice(bases))
        scan = data.rfind(b"\xff\xda")
        how = n % 5
        if how == 0:  # any bytes of the file
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(2, len(data))] = rng.randrange(256)
        elif how == 1:  # the entropy-coded data only: Huffman codes, coefficients, restart markers
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(scan + 14, len(data) - 2)] ^= 1 << rng.randrange(8)
        elif how == 2:  # truncated, sometimes with a fresh EOI
            data = data[:rng.randrange(scan, len(data) - 2)] + (b"\xff\xd9" if rng.random() < 0.5 else b"")
        elif how == 3:  # bursts of 0xFF / 0x00 (fake markers, stuffing) in the scan
            i = rng.randrange(scan + 14, len(data) - 4)
            data[i:i + 3] = bytes(rng.choice((0x00, 0xFF, 0xD0, 0xD9)) for _ in range(3))
        else:  # a symbol of a Huffman table: DC sizes over 11, AC runs past the end of the block
            dht = rng.choice([i for i in range(len(data) - 1) if data[i:i + 2] == b"\xff\xc4"])
            count = sum(data[dht + 5:dht + 21])  # the first table of the segment: 16 counts, then values
            data[dht + 21 + rng.randrange(count)] = rng.choice((12, 15, 0xF0, 0xF1, 0xFF, rng.randrange(256)))
        out.append((bytes(data), rng.choice(SCALES), rng.random() < 0.3))
    return out


@pytest.mark.parametrize("arch,count", [("x86_64", 1000), ("armv7hf", 300)])
def test_corrupt_data_gives_the_viper_kernels_outcome_never_a_crash(arch, count, firmware_argv, tmp_path):
    """The source package (viper kernels) beside the C module: same pixels or same JpegError."""
    cases = mutations(random.Random(7), count)
    blob, index = b"", []
    for data, d, rgb in cases:
        index.append([len(blob), len(blob) + len(data), d, rgb])
        blob += data
    (tmp_path / "cases.bin").write_bytes(blob)
    (tmp_path / "cases.json").write_text(json.dumps(index))
    lines = run_firmware(firmware_argv(arch), CORRUPT_SCRIPT, tmp_path, path=str(SRC)).splitlines()
    assert len(lines) == count
    outcomes = [json.loads(line) for line in lines]
    assert [c for c, v in outcomes if c != v] == []
    errors = [c for c, _ in outcomes if isinstance(c, str)]
    assert len(errors) > count // 4 and count - len(errors) > count // 10
    assert any("Huffman" in e for e in errors) and any("truncated" in e for e in errors)


# Each call gives a kernel buffers that do not fit its parameters; it must raise, never read or write
# outside them. Prints the name of each case that did not raise ValueError/TypeError.
HOSTILE_SCRIPT = """
import array, _camlytics as C

def scan_args():
    plan = array.array("H", bytes(2 * 280))
    for k in range(64):
        plan[216 + k] = k
    plan[0], plan[1], plan[2] = 1, 2, 2  # one block per MCU, 2 x 2 MCUs
    p = 16
    plan[p], plan[p + 1], plan[p + 3] = 0, 4 * 832, 1
    plan[p + 7] = plan[p + 8] = 1
    plan[p + 11] = plan[p + 12] = plan[p + 13] = 16  # a 16 x 16 plane at offset 0
    plan[p + 14] = 8
    lut = array.array("H", bytes(2 * 8 * 832))
    for t in (0, 4 * 832):
        for i in range(512):
            lut[t + i] = (1 << 8) | 0  # a 1-bit code for symbol 0: DC diff 0, AC end of block
    st = array.array("i", [0, 4, 0, 0, 0, 0, 1 << 29, 1 << 29, 1 << 29, 1 << 29])
    qt = array.array("H", [1] * 256)
    return [b"\\x00" * 4, lut, plan, st, array.array("H", bytes(128)), qt, bytearray(256), array.array("i", bytes(320))]

args = scan_args()
assert C.jpeg_scan(*args) == 0 and bytes(args[6]) == bytes([128]) * 256  # the baseline is valid

def scan_with(i, value):
    a = scan_args()
    a[i] = value
    return a

def plan_with(k, value):
    a = scan_args()
    a[2][k] = value
    return a

def lut_with(i, value):
    a = scan_args()
    a[1][i] = value
    return a

def lut_bytes_as_out():
    a = scan_args()
    a[6] = memoryview(a[1])
    return a

cases = {
    "plan: 11 blocks": plan_with(0, 11),
    "plan: dc table beyond lut": plan_with(16, 8 * 832 - 818),
    "plan: ac table beyond lut": plan_with(17, 65535),
    "plan: component 4": plan_with(18, 4),
    "plan: quant table beyond qt": plan_with(22, 193),
    "plan: plane offset beyond out": plan_with(26, 1),
    "plan: plane wider than out": plan_with(27, 17),
    "plan: block size 3": plan_with(30, 3),
    "plan: block size 16": plan_with(30, 16),
    "plan: zig-zag index 64": plan_with(216 + 5, 64),
    "plan: too short": scan_with(2, array.array("H", bytes(2 * 279))),
    "st: end beyond data": scan_with(3, array.array("i", [0, 5] + [1 << 29] * 8)),
    "st: negative position": scan_with(3, array.array("i", [-1, 4] + [1 << 29] * 8)),
    "st: 9 entries": scan_with(3, array.array("i", [0, 4] + [1 << 29] * 7)),
    "st: misaligned": scan_with(3, memoryview(bytearray(44))[1:]),
    "lut: too short": scan_with(1, array.array("H", bytes(2 * (4 * 832 + 818)))),
    "lut: code longer than the lookahead": lut_with(4 * 832 + 77, (10 << 8) | 1),
    "out: read-only": scan_with(6, bytes(256)),
    "out: overlaps lut": lut_bytes_as_out(),
    "coef: 63 entries": scan_with(4, array.array("H", bytes(126))),
}
failed = []
checked = 0

def must_raise(name, fn, *a):
    global checked
    checked += 1
    try:
        fn(*a)
        failed.append(name)
    except (ValueError, TypeError):
        pass

for name, a in cases.items():
    must_raise(name, C.jpeg_scan, *a)

I = lambda *v: array.array("i", v)
up = C.jpeg_upsample
C.jpeg_upsample(bytes(6), bytearray(24), I(3, 2, 2, 2, 1))  # fits
must_raise("upsample: dst too small", up, bytes(6), bytearray(23), I(3, 2, 2, 2, 1))
must_raise("upsample: src too small", up, bytes(5), bytearray(24), I(3, 2, 2, 2, 1))
must_raise("upsample: factor 0", up, bytes(6), bytearray(24), I(3, 2, 0, 2, 1))
must_raise("upsample: negative width", up, bytes(6), bytearray(24), I(-3, 2, 2, 2, 1))
must_raise("upsample: overflowing sizes", up, bytes(6), bytearray(24), I(3, 2, 1 << 30, 1 << 30, 0))
must_raise("upsample: p too short", up, bytes(6), bytearray(24), I(3, 2, 2, 2))
ycc = C.jpeg_ycc_to_rgb
p6 = bytes(6)
ycc(p6, p6, p6, bytearray(18), I(3, 2, 3, 3, 3))  # fits
must_raise("ycc: dst too small", ycc, p6, p6, p6, bytearray(17), I(3, 2, 3, 3, 3))
must_raise("ycc: luma stride too large", ycc, p6, p6, p6, bytearray(18), I(3, 2, 4, 3, 3))
must_raise("ycc: cr too small", ycc, p6, p6, bytes(5), bytearray(18), I(3, 2, 3, 3, 3))
must_raise("ycc: negative stride", ycc, p6, p6, p6, bytearray(18), I(3, 2, 3, -3, 3))
area = C.area_resize
src = bytes(12)  # 4 x 3 pixels, 1 channel; bounds: x0 x0 | x1 x1 | y0 | y1 for a 2 x 1 output
area(src, bytearray(2), I(0, 2, 2, 4, 0, 3), I(4, 1, 2, 1))  # fits
must_raise("area: column beyond width", area, src, bytearray(2), I(0, 2, 2, 5, 0, 3), I(4, 1, 2, 1))
must_raise("area: rows beyond src", area, src, bytearray(2), I(0, 2, 2, 4, 0, 4), I(4, 1, 2, 1))
must_raise("area: empty box", area, src, bytearray(2), I(0, 2, 2, 4, 1, 1), I(4, 1, 2, 1))
must_raise("area: negative start", area, src, bytearray(2), I(-1, 2, 2, 4, 0, 3), I(4, 1, 2, 1))
must_raise("area: dst too small", area, src, bytearray(1), I(0, 2, 2, 4, 0, 3), I(4, 1, 2, 1))
must_raise("area: bounds too short", area, src, bytearray(2), I(0, 2, 2, 4, 0), I(4, 1, 2, 1))
must_raise("area: 0 channels", area, src, bytearray(2), I(0, 2, 2, 4, 0, 3), I(4, 0, 2, 1))
must_raise("area: misaligned bounds", area, src, bytearray(2), memoryview(bytearray(25))[1:], I(4, 1, 2, 1))
print(checked, failed)
"""


def test_the_c_kernels_refuse_buffers_that_do_not_fit_their_parameters(firmware_argv, tmp_path):
    count, failed = run_firmware(firmware_argv("x86_64"), HOSTILE_SCRIPT, tmp_path).split(" ", 1)
    assert failed.strip() == "[]"  # every case raised, and the interpreter lived on to say so
    assert int(count) == 38


# Prints {"default": KERNELS as imported, "ran": {kernels: RGB decode digest}, "refused": {kernels: why}}.
SELECT_SCRIPT = """
import json, hashlib, binascii
from camlytics.edge import jpeg
data = open("a.jpg", "rb").read()
report = {"default": jpeg.KERNELS, "ran": {}, "refused": {}}
for kernels in ("c", "viper", "pure", "numpy"):
    jpeg.KERNELS = kernels
    try:
        out = jpeg.decode_rgb(data, 1)[2]
        report["ran"][kernels] = binascii.hexlify(hashlib.sha256(out).digest()).decode()
    except ValueError as exc:
        report["refused"][kernels] = str(exc)
print(json.dumps(report))
"""


def test_each_interpreter_picks_its_fastest_kernels_and_refuses_missing_ones(firmware_argv, tmp_path):
    (tmp_path / "a.jpg").write_bytes(case_bytes(RGB_CASES[2]))
    digest = hashlib.sha256(pillow_rgb(case_bytes(RGB_CASES[2]), 1).tobytes()).hexdigest()
    argv = firmware_argv("x86_64")
    # the firmware with its frozen package (no viper there): C by default, the plain kernels on request
    frozen = json.loads(run_firmware(argv, SELECT_SCRIPT, tmp_path))
    assert frozen["default"] == "c" and frozen["ran"] == {"c": digest, "pure": digest}
    # the firmware running the repository's package: the viper kernels compile beside the C module
    source = json.loads(run_firmware(argv, SELECT_SCRIPT, tmp_path, path=str(SRC)))
    assert source["default"] == "c" and source["ran"] == {"c": digest, "viper": digest}
    assert "this interpreter runs 'viper' kernels or 'c'" in source["refused"]["pure"]
    # MicroPython without the C module (the PyPI build): viper, and 'c' refused with the reason
    plain = json.loads(run_micropython(SELECT_SCRIPT, cwd=tmp_path, heapsize="16M"))
    assert plain["default"] == "viper" and plain["ran"] == {"viper": digest}
    assert "camlytics firmware" in plain["refused"]["c"]


def test_cpython_runs_the_plain_kernels_and_refuses_the_others(monkeypatch):
    data = case_bytes(RGB_CASES[0])
    assert jpeg.KERNELS == "pure"
    expected = jpeg.decode_rgb(data, 2)
    for kernels in ("c", "viper"):
        monkeypatch.setattr(jpeg, "KERNELS", kernels)
        with pytest.raises(ValueError, match=f"KERNELS = '{kernels}'"):
            jpeg.decode_rgb(data, 2)
    monkeypatch.setattr(jpeg, "KERNELS", "pure")
    assert jpeg.decode_rgb(data, 2) == expected
    assert bytes(expected[2]) == pillow_rgb(data, 2).tobytes()
