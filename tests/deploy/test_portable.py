"""The package for a camera's own MicroPython (`--arch all --interpreter camera`): the edge app as the
firmware freezes it (no native code, so a MicroPython without a native emitter, as on aarch64, runs it),
compiled to .mpy. The old lib/portable fallback could not even import the app (lib/portable/camlytics
shadowed lib/python/camlytics); this package has one tree, and the app imports and decodes from it."""

from __future__ import annotations

import tarfile

from camlytics.deploy.bundle import BundleOptions, build_bundle
from camlytics.sim import Scene
from tests.edge.conftest import run_micropython


def test_the_camera_interpreter_package_imports_the_app_and_decodes_like_the_source(model_dir, tmp_path):
    eap = build_bundle(model_dir, tmp_path, BundleOptions(arch="all", interpreter="camera"))
    root = tmp_path / "pkg"
    with tarfile.open(eap) as tar:
        tar.extractall(root, filter="data")
    assert not (root / "lib" / "portable").exists()
    launcher = (root / "camlytics_door").read_text()
    assert 'MICROPYPATH=".frozen:$DIR/lib/python"' in launcher and "lib/portable" not in launcher

    snapshot = tmp_path / "snap.jpg"
    snapshot.write_bytes(Scene("office", 0, 320, 180).frame(12 * 3600).jpeg)
    script = f"""
import camlytics.edge.app
from camlytics.edge import jpeg
w, h, px = jpeg.decode_luma(open("{snapshot}", "rb").read(), 4)
print(w, h, sum(px), jpeg.__file__)
"""
    packaged = run_micropython(script, env={"MICROPYPATH": f".frozen:{root}/lib/python"})
    assert packaged.split()[-1].endswith("lib/python/camlytics/edge/jpeg.mpy")
    source = run_micropython(script)  # the repository's edge package (viper kernels where they compile)
    assert packaged.split()[:3] == source.split()[:3]
