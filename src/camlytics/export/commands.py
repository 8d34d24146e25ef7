"""`camlytics export MODEL_DIR --target c|onnx|edge --out DIR`."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

from camlytics.errors import ModelError

TARGETS = ("c", "onnx", "edge")


def register(subparsers: Any) -> None:
    """Add `export`."""
    p = subparsers.add_parser(
        "export", help="export a trained model: C runtime, ONNX, or the edge model file",
        description="Export MODEL_DIR (written by `camlytics train`; for --target c and edge a model.cml file also "
                    "works). c: dependency-free C99 sources (weights as const arrays, no malloc, cml_predict(), an "
                    "example program reading PGM/PPM or raw tensors, a Makefile; bit-exact with the int8 reference). "
                    "onnx: the float student as model.onnx (opset 17, dynamic batch). edge: the validated model.cml.")
    p.add_argument("model", metavar="MODEL_DIR", help="model directory (or a model.cml file for c/edge)")
    p.add_argument("--target", required=True, choices=TARGETS, help="what to produce")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    p.add_argument("--build", action="store_true", help="c: also compile the example program and shared library "
                   "with the host compiler (needs cc)")
    p.set_defaults(func=export_command)


def _prepare_out(out: Path) -> None:
    """Create --out (and its parents) and check a file can be written in it; ModelError otherwise."""
    import tempfile

    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".camlytics-export-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ModelError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


def export_command(args: argparse.Namespace) -> int:
    """Run the export; prints what was written."""
    model, out = Path(args.model), Path(args.out)
    if out.exists() and not out.is_dir():
        raise ModelError(f"--out {out} exists and is not a directory")
    try:
        return _export(args, model, out)
    except OSError as exc:  # a write failing half-way (disk full, permissions changed...)
        raise ModelError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


def _export(args: argparse.Namespace, model: Path, out: Path) -> int:
    if args.target == "onnx":
        from camlytics.model.onnx_export import export_onnx
        from camlytics.model.student import load_student

        if not model.is_dir():
            raise ModelError(f"{model}: --target onnx needs the model directory (with student.pt)")
        student, meta = load_student(model / "student.pt")
        inp = meta.get("input") or {}
        try:
            chw = (1 if inp.get("color", "gray") == "gray" else 3, int(inp["height"]), int(inp["width"]))
        except (KeyError, TypeError, ValueError):
            raise ModelError(f"{model / 'student.pt'}: metadata lacks the input size") from None
        _prepare_out(out)
        path = export_onnx(student, out / "model.onnx", chw, classes=meta.get("classes"))
        print(f"wrote {path}")
        return 0
    from camlytics.model.modelfile import locate_model_file, read_model

    source = locate_model_file(model)
    int8 = read_model(source)  # validates everything before anything is written
    _prepare_out(out)
    if args.target == "edge":
        target = out / "model.cml"
        if target.exists() and os.path.samefile(source, target):
            raise ModelError(f"--out {out} is the model's own directory; choose another output directory")
        shutil.copyfile(source, target)
        print(f"wrote {out / 'model.cml'} ({int8.meta.get('macs')} MACs, classes {', '.join(int8.classes)})")
        return 0
    from camlytics.export import c_codegen

    files = c_codegen.generate(int8, out)
    print("wrote " + ", ".join(str(f) for f in files))
    if args.build:
        exe = c_codegen.build_executable(out, cflags=c_codegen.HOST_CFLAGS)
        lib = c_codegen.build_shared(out, cflags=c_codegen.HOST_CFLAGS)
        print(f"built {exe} and {lib}")
    else:
        print(f"build with: make -C {out}   (cross: see the comments at the top of {out / 'Makefile'})")
    return 0
