"""Model files with hostile metadata: the host and the edge reader refuse them with the model-file error only,
agree on every verdict, and whatever they accept really runs through the edge's preprocessing.

Issue #28 item 1: a file with a valid CRC and `preprocess.source_size = [0]` used to load; 284 of 600
targeted mutations of the preprocess section raised TypeError, IndexError, ... instead of ModelFileError.
"""

from __future__ import annotations

import copy
import io
import json
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from camlytics.cli import main
from camlytics.edge.model import ModelFileError, load_model
from camlytics.edge.preprocess import prepare, prepare_host
from camlytics.errors import ModelError
from camlytics.export.testmodels import random_model_bytes
from camlytics.model.inputs import InputSpec
from camlytics.model.modelfile import read_model
from tests.conftest import one_line_error
from tests.edge.conftest import run_micropython
from tests.robustness.conftest import budget

TINY = random_model_bytes(3, "tiny")  # 16x16 grey input, preprocess roi [0, 0, 128, 128] of a 128x128 source


def split(data: bytes) -> tuple[dict, bytes]:
    """(metadata, blob) of a model file."""
    meta_len, blob_len = struct.unpack_from("<II", data, 8)
    return json.loads(data[16 : 16 + meta_len]), data[16 + meta_len : 16 + meta_len + blob_len]


def build(meta, blob: bytes) -> bytes:
    """A model file around any JSON value `meta`, with a correct CRC (the parser must look inside)."""
    text = json.dumps(meta).encode()
    text += b" " * (-len(text) % 4)
    body = struct.pack("<4sHHII", b"CMLM", 1, 16, len(text), len(blob)) + text + blob
    return body + struct.pack("<I", zlib.crc32(body))


def jpeg(width: int, height: int, mode: str = "L") -> bytes:
    """A small real JPEG (a gradient) of that size."""
    from PIL import Image

    x = np.linspace(0, 255, width * height * (1 if mode == "L" else 3)).astype(np.uint8)
    image = Image.fromarray(x.reshape((height, width) if mode == "L" else (height, width, 3)), mode)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


FRAMES = {mode: [jpeg(w, h, mode) for w, h in ((128, 128), (160, 90), (9, 31))] for mode in ("L", "RGB")}


def verdict(data: bytes) -> str:
    """"ok" or "error" from both readers, which must agree and raise nothing but the model-file error.

    An accepted model must also run: the edge's preprocessing (and the host's) on frames of several sizes,
    and the host's InputSpec when the file describes one."""
    try:
        edge = load_model(data)
    except ModelFileError:
        edge = None
    try:
        host = read_model(data)
    except ModelError:
        host = None
    assert (edge is None) == (host is None), "the host and the edge reader disagree"
    if edge is None:
        return "error"
    h, w, c = edge.input_shape
    for frame in FRAMES["L" if c == 1 else "RGB"]:
        tensor = prepare(frame, edge.meta)
        assert len(tensor) == h * w * c
        assert bytes(prepare_host(frame, host.meta).tobytes()) == bytes(tensor)
    if "roi" in edge.preprocess:
        assert InputSpec.from_model_meta(host.meta).roi == tuple(edge.preprocess["roi"])
    return "ok"


def test_the_issue_file_is_refused():
    meta, blob = split(TINY)
    meta["preprocess"]["source_size"] = [0]
    with pytest.raises(ModelFileError, match=r"preprocess.source_size must be a list of 2 integers in \[1, 16384\]"):
        load_model(build(meta, blob))
    with pytest.raises(ModelError, match="preprocess.source_size"):
        read_model(build(meta, blob))


# --- Hypothesis: hostile values where the metadata keeps its settings --------------------------------------

SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.integers(-3, 300)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6)
           | st.sampled_from(["gray", "rgb", "area", "unknown", "open", "", "\n"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=8)
NEAR = st.lists(st.integers(-2, 200) | st.sampled_from([0, 1, 127, 128, 129, 2**31, 2**64]), max_size=5)
VALUES = JSON | NEAR
PLACES = [("preprocess", "color"), ("preprocess", "resize"), ("preprocess", "roi"), ("preprocess", "source_size"),
          ("preprocess", "extra"), ("preprocess",), ("input", "height"), ("input", "width"), ("input", "channels"),
          ("input", "scale"), ("output", "scale"), ("output", "zp"), ("classes",), ("name",), ("macs",),
          ("min_confidence",), ("layers", 0, "x_scale"), ("layers", 2, "w_scale"), ("layers", 0, "kernel")]


def edit(meta: dict, place: tuple, value, delete: bool) -> None:
    node = meta
    for key in place[:-1]:
        if not isinstance(node, (dict, list)) or not isinstance(node, dict) and not isinstance(key, int):
            return  # an earlier edit replaced the parent
        node = node[key] if isinstance(node, dict) and key in node or isinstance(node, list) and key < len(node) else None
    if not isinstance(node, dict):
        return
    if delete:
        node.pop(place[-1], None)
    else:
        node[place[-1]] = value


@budget(300)
@given(edits=st.lists(st.tuples(st.sampled_from(PLACES), VALUES, st.sampled_from([False] * 5 + [True])),
                      min_size=1, max_size=3))
def test_hostile_metadata_values_give_model_file_errors_only(edits):
    meta, blob = split(TINY)
    for place, value, delete in edits:
        edit(meta, place, value, delete)
    verdict(build(meta, blob))


@budget(100)
@given(roi=st.lists(st.integers(0, 300), min_size=4, max_size=4), size=st.lists(st.integers(1, 300), min_size=2, max_size=2),
       color=st.sampled_from(["gray", "rgb"]))
def test_every_valid_preprocess_section_runs_on_any_frame_size(roi, size, color):
    """Near-valid ROIs and source sizes: accepted exactly when the ROI is inside, and then they run."""
    meta, blob = split(TINY)
    meta["preprocess"].update(roi=roi, source_size=size, color=color)
    inside = roi[0] < roi[2] <= size[0] and roi[1] < roi[3] <= size[1] and color == "gray"
    assert verdict(build(meta, blob)) == ("ok" if inside else "error")


@budget(60)
@given(meta=JSON)
def test_any_json_as_metadata_is_refused_cleanly(meta):
    assert verdict(build(meta, split(TINY)[1])) == "error"


# --- the same verdicts inside MicroPython: one process reads a sample of files ---------------------------------


def random_mutation(rng: random.Random) -> bytes:
    """One or two hostile edits (the PLACES above, values from a fixed pool) of the tiny model's metadata."""
    meta, blob = split(TINY)
    pool = [None, True, -1, 0, 1, 3, 128, 2**31, 2**64, 1.5, float("nan"), "x", "", "rgb", "gray", "area", [],
            {}, [0], [0, 0], [1, 1], [0, 0, 16, 16], [0, 0, 129, 128], [5, 5, 5, 9], [128, 128], [2**40, 1],
            ["a", "a"], ["a", "b"], ["a", 1], {"color": "gray"}, [0.5, 1.0]]
    for _ in range(rng.randrange(1, 3)):
        edit(meta, rng.choice(PLACES), copy.deepcopy(rng.choice(pool)), rng.random() < 0.15)
    return build(meta, blob)


MPY_READ = """
import sys
from camlytics.edge.model import ModelFileError, load_model
for i in range(int(sys.argv[2])):
    try:
        load_model(sys.argv[1] + "/%d.cml" % i)
        print("ok")
    except ModelFileError:
        print("error")
    except Exception as exc:
        print("CRASH", type(exc).__name__, exc)
"""


def test_micropython_gives_the_same_verdicts_on_a_sample(tmp_path):
    rng = random.Random(28)
    files = [random_mutation(rng) for _ in range(200)]
    for i, data in enumerate(files):
        (tmp_path / f"{i}.cml").write_bytes(data)
    out = [line for line in run_micropython(MPY_READ, args=[str(tmp_path), str(len(files))], heapsize="1M").split("\n")
           if line]
    assert len(out) == len(files)
    expected = []
    for data in files:
        try:
            load_model(data)
            expected.append("ok")
        except ModelFileError:
            expected.append("error")
    assert out == expected
    assert 10 < expected.count("ok") < 190  # both outcomes exercised


# --- the commands a broken model reaches: one error line each, and they end ----------------------------------


@pytest.fixture
def broken_model(tmp_path) -> Path:
    """A model directory whose model.cml has a valid CRC and preprocess.source_size = [0]."""
    meta, blob = split(TINY)
    meta["preprocess"]["source_size"] = [0]
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "model.cml").write_bytes(build(meta, blob))
    return folder


@pytest.mark.parametrize("argv", [
    ["export", "{model}", "--target", "edge", "--out", "{tmp}/out"],
    ["evaluate", "{model}", "sim:office?seed=1&interval=600"],
    ["bundle", "{model}", "--out", "{tmp}/packages", "--arch", "armv7hf"],
], ids=["export", "evaluate", "bundle"])
def test_commands_refuse_the_broken_model_in_one_line(broken_model, tmp_path, capsys, argv):
    argv = [a.format(model=broken_model, tmp=tmp_path) for a in argv]
    assert main(argv) != 0
    one_line_error(capsys, f"camlytics {argv[0]}: error:", "source_size")


def test_run_refuses_the_broken_model_and_ends(broken_model, simcam):
    proc = subprocess.run([sys.executable, "-m", "camlytics", "run", str(broken_model), "--camera", simcam.url,
                           "--max-frames", "3", "--runtime", "python"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "source_size" in proc.stdout + proc.stderr and "Traceback" not in proc.stdout + proc.stderr


def test_run_ends_when_every_frame_fails(tmp_path, simcam):
    """The camera answers HTML for every snapshot: run --max-frames 3 still ends (failed frames count)."""
    (tmp_path / "model.cml").write_bytes(TINY)
    simcam.inject_fault("html", count=1000)
    proc = subprocess.run([sys.executable, "-m", "camlytics", "run", str(tmp_path), "--camera", simcam.url,
                           "--max-frames", "3", "--runtime", "python", "--fps", "20"],
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert out.count("cannot decode frame") == 3 and "Traceback" not in out
