"""The generated C runtime is bit-exact with the int8 reference on the host, on ARM (qemu) and under valgrind."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from camlytics.cli import main as cli_main
from camlytics.edge.preprocess import area_resize_numpy
from camlytics.errors import ModelError
from camlytics.export import c_codegen, testmodels
from camlytics.model import int8ref
from camlytics.model.modelfile import write_model
from camlytics.runtime.predictors import c_predictor

FAST = ("-O1",)  # the arithmetic is exact at any optimisation level; -O1 keeps the suite quick
CROSS = {
    "armv7hf": ("arm-linux-gnueabihf-gcc", ("-O2", "-mfpu=neon"), "qemu-arm"),
    "aarch64": ("aarch64-linux-gnu-gcc", ("-O2",), "qemu-aarch64"),
}


def run_raw(cmd: list[str], inputs: np.ndarray, tmp: Path) -> tuple[np.ndarray, np.ndarray]:
    """Run the example program in --raw mode; returns (class indices, int8 logits)."""
    raw = tmp / "inputs.bin"
    raw.write_bytes(np.ascontiguousarray(inputs).tobytes())
    out = subprocess.run(cmd + ["--raw", str(raw)], capture_output=True, text=True, timeout=120, check=True).stdout
    rows = np.array([[int(v) for v in line.split()] for line in out.splitlines()])
    return rows[:, 0], rows[:, 1:].astype(np.int8)


@pytest.mark.parametrize("arch, seed", [("tiny", 0), ("rgb", 1), ("zp", 2), ("zp", 3), ("door", 4), ("whole", 5)])
def test_shared_library_is_bit_exact_with_the_reference(tmp_path, arch, seed):
    model = testmodels.random_model(seed, arch)
    runtime = c_codegen.CRuntime(model, build_dir=tmp_path, cflags=FAST)
    x = testmodels.random_inputs(model, 64, seed=seed + 10)
    np.testing.assert_array_equal(runtime.forward(x), int8ref.forward(model, x))
    index, logits = runtime.predict(x[5])
    assert (index, logits.tolist()) == (int8ref.predict(model, x[5])[0], int8ref.forward(model, x[5]).tolist())


def test_optimised_host_build_is_bit_exact(tmp_path):
    model = testmodels.random_model(7, "door")
    runtime = c_codegen.CRuntime(model, build_dir=tmp_path)  # the default -O3 -march=native library
    x = testmodels.random_inputs(model, 64, seed=1)
    np.testing.assert_array_equal(runtime.forward(x), int8ref.forward(model, x))
    with pytest.raises(ValueError, match=r"\(32, 32, 1\)"):
        runtime.forward(x[:, :16])


def test_generated_sources_are_self_contained_c99(tmp_path):
    model = testmodels.random_model(1, "rgb")
    files = {p.name for p in c_codegen.generate(model, tmp_path)}
    assert files == {"camlytics_model.h", "camlytics_model.c", "main.c", "Makefile"}
    source = (tmp_path / "camlytics_model.c").read_text()
    assert "malloc" not in source and "#include <" not in source  # only its own header (stdint.h)
    assert "static const int16_t cml_w0" in source and "int cml_predict(" in source
    proc = subprocess.run(["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                           str(tmp_path / "camlytics_model.c"), str(tmp_path / "main.c")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def door_build(tmp_path_factory) -> tuple[object, Path]:
    model = testmodels.random_model(5, "door")
    out = tmp_path_factory.mktemp("c_door")
    c_codegen.generate(model, out)
    return model, out


def test_example_program_classifies_a_pgm_of_any_size(door_build, tmp_path):
    model, src = door_build
    exe = c_codegen.build_executable(src, tmp_path / "predict", cflags=FAST)
    image = testmodels.random_images((90, 70, 1), 1, np.random.default_rng(3))[0]
    pgm = tmp_path / "frame.pgm"
    pgm.write_bytes(b"P5\n# a comment\n70 90\n255\n" + image.tobytes())
    out = subprocess.run([str(exe), str(pgm)], capture_output=True, text=True, check=True).stdout
    x = area_resize_numpy(image, (0, 0, 70, 90), 32, 32)  # docs/int8.md 4.3, as the edge does it
    want_class, want_logits = int8ref.predict(model, x)
    assert out.splitlines()[0] == f"class: {model.classes[want_class]}"
    logits = [int(line.split("logit ")[1].rstrip(")")) for line in out.splitlines()[1:]]
    assert logits == want_logits.tolist()
    probs = [float(line.split()[1]) for line in out.splitlines()[1:]]
    np.testing.assert_allclose(probs, int8ref.scores(model, want_logits), atol=1e-4)


def test_example_program_rejects_bad_input(door_build, tmp_path):
    _, src = door_build
    exe = str(c_codegen.build_executable(src, tmp_path / "predict", cflags=FAST))
    ppm = tmp_path / "colour.ppm"
    ppm.write_bytes(b"P6\n4 4\n255\n" + bytes(48))
    bad = subprocess.run([exe, str(ppm)], capture_output=True, text=True)
    assert bad.returncode == 2 and "PGM (P5)" in bad.stderr
    short = tmp_path / "short.pgm"
    short.write_bytes(b"P5\n40 40\n255\n" + bytes(100))
    bad = subprocess.run([exe, str(short)], capture_output=True, text=True)
    assert bad.returncode == 2 and "truncated" in bad.stderr
    raw = tmp_path / "odd.bin"
    raw.write_bytes(bytes(32 * 32 + 5))
    bad = subprocess.run([exe, "--raw", str(raw)], capture_output=True, text=True)
    assert bad.returncode == 2 and "whole number" in bad.stderr


@pytest.mark.parametrize("target", sorted(CROSS))
def test_arm_cross_builds_match_the_reference_under_qemu(tmp_path, target):
    cc, flags, qemu = CROSS[target]
    for arch, seed in (("door", 11), ("zp", 12)):
        model = testmodels.random_model(seed, arch)
        src = tmp_path / arch
        c_codegen.generate(model, src)
        exe = c_codegen.build_executable(src, src / f"predict-{target}", cc=cc, cflags=flags, static=True)
        assert exe.read_bytes()[:4] == b"\x7fELF"
        x = testmodels.random_inputs(model, 48, seed=seed)
        classes, logits = run_raw([shutil.which(qemu) or qemu, str(exe)], x, tmp_path)
        np.testing.assert_array_equal(logits, int8ref.forward(model, x), err_msg=f"{target} {arch}")
        np.testing.assert_array_equal(classes, int8ref.forward(model, x).argmax(axis=1))


def test_valgrind_memcheck_is_clean(door_build, tmp_path):
    model, src = door_build
    exe = c_codegen.build_executable(src, tmp_path / "predict", cflags=("-O1", "-g"))
    pgm = tmp_path / "frame.pgm"
    pgm.write_bytes(b"P5\n64 48\n255\n" + bytes(range(256)) * 12)
    vg = ["valgrind", "--tool=memcheck", "--leak-check=full", "--errors-for-leak-kinds=all", "--error-exitcode=1", "-q"]
    proc = subprocess.run(vg + [str(exe), str(pgm)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "class:" in proc.stdout, proc.stderr
    x = testmodels.random_inputs(model, 4, seed=0)
    classes, logits = run_raw(vg + [str(exe)], x, tmp_path)  # raises if valgrind reports an error
    np.testing.assert_array_equal(logits, int8ref.forward(model, x))


def test_cli_exports_c_sources_that_build_with_make(tmp_path, capsys):
    model = testmodels.random_model(2, "tiny")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    write_model(model, model_dir / "model.cml")
    out = tmp_path / "c"
    assert cli_main(["export", str(model_dir), "--target", "c", "--out", str(out)]) == 0
    assert "make -C" in capsys.readouterr().out
    subprocess.run(["make", "-s", "-C", str(out), "CFLAGS=-O1"], check=True, capture_output=True)
    x = testmodels.random_inputs(model, 8, seed=4)
    _, logits = run_raw([str(out / "camlytics_predict")], x, tmp_path)
    np.testing.assert_array_equal(logits, int8ref.forward(model, x))
    assert (out / "libcamlytics_model.so").exists()
    assert cli_main(["export", str(model_dir / "model.cml"), "--target", "edge", "--out", str(tmp_path / "e")]) == 0
    assert (tmp_path / "e" / "model.cml").read_bytes() == (model_dir / "model.cml").read_bytes()


def test_cli_reports_a_missing_or_corrupt_model_in_one_line(tmp_path, capsys):
    assert cli_main(["export", str(tmp_path), "--target", "c", "--out", str(tmp_path / "c")]) == 2
    assert "model.cml" in capsys.readouterr().err
    (tmp_path / "model.cml").write_bytes(testmodels.random_model_bytes(1)[:-3])
    assert cli_main(["export", str(tmp_path), "--target", "c", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "size" in err
    assert not (tmp_path / "c").exists()  # nothing written for an invalid model


def test_compiler_errors_are_model_errors(tmp_path):
    c_codegen.generate(testmodels.random_model(0), tmp_path)
    with pytest.raises(ModelError, match="not found"):
        c_codegen.build_shared(tmp_path, cc="no-such-cc")


def test_bit_exact_on_preprocessed_simulated_camera_frames(tmp_path):
    from camlytics.edge.preprocess import prepare_host
    from camlytics.sim import Scene

    scene = Scene(preset="office", seed=0, width=320, height=180)
    model = testmodels.random_model(9, "door")
    model.meta["preprocess"] = {"color": "gray", "roi": list(scene.door_roi), "source_size": [320, 180],
                                "resize": "area"}
    opened = [(e.start + e.end) / 2 for e in scene.timeline.events][:3]
    times = [2 * 3600.0, 12 * 3600.0, 19.5 * 3600.0] + opened  # night (IR), day, twilight, open door
    x = np.stack([prepare_host(scene.frame(t).jpeg, model.meta) for t in times])
    assert x.shape == (len(times), 32, 32, 1) and x.std() > 5
    runtime = c_codegen.CRuntime(model, build_dir=tmp_path, cflags=FAST)
    np.testing.assert_array_equal(runtime.forward(x), int8ref.forward(model, x))


def test_c_predictor_gives_the_int8_probabilities(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the cached build goes here
    model = testmodels.random_model(3, "tiny")
    write_model(model, tmp_path / "model.cml")
    predictor = c_predictor(tmp_path)
    x = testmodels.random_inputs(model, 6, seed=2)
    np.testing.assert_allclose(predictor.probs(x), int8ref.scores(model, int8ref.forward(model, x)))
    assert predictor.runtime == "c" and predictor.classes == model.classes
    assert len(list((tmp_path / "cache" / "camlytics" / "c-runtime").iterdir())) == 1
    again = c_codegen.CRuntime(tmp_path)  # reuses the cached library
    assert again.lib_path == c_codegen.CRuntime(tmp_path / "model.cml").lib_path


def test_any_class_and_model_names_are_safe_c(tmp_path):
    model = testmodels.random_model(0, "tiny")
    model.meta["name"] = 'evil */ #include "x" \\ name'
    model.meta["classes"] = ['dOOr "open"\\*/', "fermée\n?"]
    exe = c_codegen.build_executable(c_codegen.generate(model, tmp_path)[0].parent, tmp_path / "p", cflags=FAST)
    pgm = tmp_path / "f.pgm"
    pgm.write_bytes(b"P5\n16 16\n255\n" + bytes(range(256)))
    out = subprocess.run([str(exe), str(pgm)], capture_output=True, check=True).stdout.decode("utf-8")
    assert 'dOOr "open"\\*/' in out and "fermée\n?" in out
