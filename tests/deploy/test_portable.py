"""Cameras whose MicroPython has no native emitter (aarch64): the package carries plain copies of
the viper modules in lib/portable, and they decode exactly like the viper versions."""

from __future__ import annotations

import re
import tarfile

from camlytics.deploy.bundle import build_bundle
from camlytics.sim import Scene
from tests.edge.conftest import run_micropython


def test_portable_copies_have_no_native_code_and_decode_identically(model_dir, tmp_path):
    eap = build_bundle(model_dir, tmp_path)
    root = tmp_path / "pkg"
    with tarfile.open(eap) as tar:
        tar.extractall(root, filter="data")
    portable = root / "lib" / "portable" / "camlytics" / "edge"
    assert (portable / "jpeg.py").exists() and (portable / "preprocess.py").exists()
    for path in portable.glob("*.py"):
        assert not re.search(r"^\s*@micropython\.", path.read_text(), re.M), path.name
    assert "lib/portable" in (root / "camlytics_door").read_text()

    snapshot = tmp_path / "snap.jpg"
    snapshot.write_bytes(Scene("office", 0, 320, 180).frame(12 * 3600).jpeg)
    script = f"""
import sys
from camlytics.edge import jpeg
w, h, px = jpeg.decode_luma(open("{snapshot}", "rb").read(), 4)
print(w, h, sum(px), "portable" if "lib/portable" in jpeg.__file__ else "viper")
"""
    with_viper = run_micropython(script, env={"MICROPYPATH": f".frozen:{root}/lib/python"})
    plain = run_micropython(script, env={"MICROPYPATH": f".frozen:{root}/lib/portable:{root}/lib/python"})
    assert with_viper.split()[-1] == "viper" and plain.split()[-1] == "portable"
    assert with_viper.split()[:3] == plain.split()[:3]
