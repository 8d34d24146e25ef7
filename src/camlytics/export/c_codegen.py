"""Generate a dependency-free C99 runtime for an int8 model (docs/int8.md), build it, load it with ctypes.

The generated `camlytics_model.c` holds the weights as const int16 arrays, statically sized
buffers (no malloc) and one `cml_predict` function; `main.c` is an example program (PGM/PPM or raw
tensors in, scores out). Each layer is a function with every size a literal, so the compiler
unrolls and vectorizes it:
- full and 1x1 convolutions, dense: the input patch of an output pixel is gathered once as
  `x - x_zp` in int16 (zeros for padding), then per output channel an int16 dot product into int32
  (pmaddwd / smlal), four channels at a time for long rows; patches of <= OUTER_MAX_K values
  (a 3x3 stem on grey input) are summed term by term, vectorized over output channels instead;
- depthwise: vectors over channels, one pointer per kernel tap for interior pixels;
- requantization: one loop per output pixel over channels (vectorized on NEON/AVX2).
All of it is the integer arithmetic of docs/int8.md: results are bit-exact at any -O level.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from importlib import resources
from pathlib import Path

import numpy as np

from camlytics.errors import ModelError
from camlytics.model.modelfile import Int8Model

GENERATOR_VERSION = "1"
DEFAULT_CFLAGS = ("-O3", "-Wall", "-Wextra")
# For builds that run where they are compiled (ctypes library, `export --build`): use the host's
# vector units (AVX2 on x86, where the per-channel requantization shifts vectorize).
HOST_CFLAGS = ("-O3", "-march=native", "-Wall", "-Wextra")
HEADER_NAME = "camlytics_model.h"
SOURCE_NAME = "camlytics_model.c"
LIB_NAME = "libcamlytics_model.so"
EXE_NAME = "camlytics_predict"
_CTYPE = {"uint8": "uint8_t", "int8": "int8_t"}
# Patches up to this length (e.g. a 3x3 stem on grey input) are summed term by term, vectorized over
# output channels; longer ones as int16 dot products (fewest instructions measured with callgrind).
OUTER_MAX_K = 16
DOT_ALIGN = 8  # dot rows padded with zeros to a multiple of this: no scalar tail loops
_RANGE = {"uint8": (0, 255), "int8": (-128, 127)}


def _c_int(v: int) -> str:
    return "(-2147483647 - 1)" if v == -(2**31) else str(int(v))


def _c_array(ctype: str, name: str, values) -> str:
    """`static const ctype name[n] = {...};` laid out 20 values a line."""
    flat = [_c_int(v) for v in np.asarray(values).ravel()]
    lines = [", ".join(flat[i : i + 20]) for i in range(0, len(flat), 20)]
    return f"static const {ctype} {name}[{len(flat)}] = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def _c_string(text: str) -> str:
    """A C string literal for any text (non-ASCII bytes as octal escapes)."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        out.append(ch if 32 <= byte < 127 and ch not in '"\\?' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _comment_text(text: str) -> str:
    """Text safe inside a C comment: printable ASCII, no comment delimiters, at most 60 characters."""
    return "".join(ch if " " <= ch <= "~" and ch not in "*/\\" else "?" for ch in str(text))[:60]


def _requant_store(k: int, layer: dict, acc: str, dst: str) -> str:
    """C statements: requantize `acc` (channel `o`) of layer k, add the zero point, clamp, store at `dst`."""
    lo, hi = _RANGE[layer["y_dtype"]]
    yz = int(layer["y_zp"])
    if layer.get("relu"):
        lo = max(lo, yz)
    if layer["op"] == "gap":
        rq = f"({acc} * {int(layer['m'])} + {1 << (int(layer['s']) - 1)}) >> {int(layer['s'])}"
    else:
        rq = f"({acc} * cml_m{k}[o] + cml_r{k}[o]) >> cml_s{k}[o]"
    # Two one-sided clamps: compilers turn each into a single vector max / min.
    return (f"{{\n    int32_t v = ({rq}) + ({yz});\n"
            f"    v = v < {lo} ? {lo} : v;\n"
            f"    v = v > {hi} ? {hi} : v;\n"
            f"    {dst} = ({_CTYPE[layer['y_dtype']]})v;\n}}\n")


def _indent(code: str, n: int) -> str:
    pad = " " * n
    return "".join(pad + line if line.strip() else line for line in code.splitlines(keepends=True))


def _patch_len(layer: dict) -> int:
    """Input values feeding one output of a conv/dense layer: KH * KW * C / groups (groups == 1 here)."""
    kh, kw = layer.get("kernel", [1, 1])
    return kh * kw * layer["in_shape"][2]


def _dot_len(layer: dict) -> int:
    """Length of a dot-product layer's patch and weight rows, padded with zeros to a multiple of 8."""
    return (_patch_len(layer) + DOT_ALIGN - 1) // DOT_ALIGN * DOT_ALIGN


def _outer(layer: dict) -> bool:
    """Whether a conv/dense layer uses the outer-product form (weights `[K][OC]`) instead of dot products."""
    return _patch_len(layer) <= OUTER_MAX_K


def _dot_outputs(k: int, layer: dict, dst: str) -> str:
    """Every output channel: bias + dot(patch, weights row) over int16 values; then requantize into dst."""
    oc = layer["out_shape"][2]
    n = _dot_len(layer)
    # int16 operands summed into int32 over a length that is a multiple of 8: compilers emit
    # pmaddwd (x86) / smlal (NEON) with no scalar tail. The requantization loop then vectorizes.
    block = 4 if oc % 4 == 0 and n >= 32 else 1  # short rows: blocking only adds overhead
    names = [f"a{j}" for j in range(block)]
    return (f"for (int o = 0; o < {oc}; o += {block}) {{\n"
            f"    const int16_t *restrict pw = cml_w{k} + o * {n};\n"
            + "".join(f"    int32_t {a} = cml_b{k}[o + {j}];\n" for j, a in enumerate(names))
            + f"    for (int i = 0; i < {n}; i++) {{\n"
            + "".join(f"        {a} += patch[i] * pw[{j * n} + i];\n" for j, a in enumerate(names))
            + "    }\n"
            + "".join(f"    acc[o + {j}] = {a};\n" for j, a in enumerate(names))
            + f"}}\n"
            f"cml_requant{k}(acc, {dst});\n")


def _outer_outputs(k: int, layer: dict, dst: str) -> str:
    """Short patches: bias + the K patch terms written out, vectorized over output channels."""
    oc = layer["out_shape"][2]
    terms = "".join(f"    a += patch[{i}] * cml_w{k}[{i * oc} + o];\n" for i in range(_patch_len(layer)))
    return (f"for (int o = 0; o < {oc}; o++) {{\n    int32_t a = cml_b{k}[o];\n" + terms
            + "    acc[o] = a;\n}\n" + f"cml_requant{k}(acc, {dst});\n")


def _spatial_loops(layer: dict, interior: str, border: str) -> str:
    """Loops over output pixels; `interior`/`border` code runs with the tap bounds ky0..ky1, kx0..kx1."""
    h, w, _ = layer["in_shape"]
    oh, ow, _ = layer["out_shape"]
    kh, kw = layer["kernel"]
    sh, sw = layer["stride"]
    top, left = layer["pad"][:2]
    # Taps outside the input add (x_zp - x_zp) * w = 0, so they are skipped; interior pixels take
    # a branch with constant loop bounds that the compiler unrolls.
    return (f"for (int oy = 0; oy < {oh}; oy++) {{\n"
            f"    const int iy = oy * {sh} - {top};\n"
            f"    const int ky0 = iy < 0 ? -iy : 0, ky1 = iy + {kh} > {h} ? {h} - iy : {kh};\n"
            f"    for (int ox = 0; ox < {ow}; ox++) {{\n"
            f"        const int ix = ox * {sw} - {left};\n"
            f"        const int kx0 = ix < 0 ? -ix : 0, kx1 = ix + {kw} > {w} ? {w} - ix : {kw};\n"
            f"        if (ky0 == 0 && ky1 == {kh} && kx0 == 0 && kx1 == {kw}) {{\n"
            + _indent(interior, 12) + "        } else {\n" + _indent(border, 12) + "        }\n"
            + "    }\n}\n")


def _taps(layer: dict, bounds: tuple[str, str, str, str], inner: str) -> str:
    """Loops over kernel taps in bounds, with `px` the input pixel and `t` the tap index."""
    _, w, c = layer["in_shape"]
    kw = layer["kernel"][1]
    ky0, ky1, kx0, kx1 = bounds
    return (f"for (int ky = {ky0}; ky < {ky1}; ky++) {{\n"
            f"    for (int kx = {kx0}; kx < {kx1}; kx++) {{\n"
            f"        const {_CTYPE[layer['x_dtype']]} *restrict px = x + ((iy + ky) * {w} + ix + kx) * {c};\n"
            f"        const int t = ky * {kw} + kx;\n"
            + _indent(inner, 8) + "    }\n}\n")


def _layer_function(k: int, layer: dict) -> str:
    """The C function computing layer k from `x` into `y`."""
    op = layer["op"]
    x_type, y_type = _CTYPE[layer["x_dtype"]], _CTYPE[layer["y_dtype"]]
    h, w, c = layer["in_shape"]
    oh, ow, oc = layer["out_shape"]
    xz = int(layer["x_zp"])
    head = (f"/* layer {k}: {op} {layer['in_shape']} -> {layer['out_shape']} */\n"
            f"static void cml_layer{k}(const {x_type} *restrict x, {y_type} *restrict y) {{\n")
    if op != "gap":
        head = (f"static void cml_requant{k}(const int32_t *restrict acc, {y_type} *restrict y) {{\n"
                f"    for (int o = 0; o < {oc}; o++)\n"
                + _indent(_requant_store(k, layer, "acc[o]", "y[o]"), 8) + "}\n\n" + head)
    if op == "gap":
        body = (f"int32_t acc[{c}];\n"
                f"for (int o = 0; o < {c}; o++) acc[o] = 0;\n"
                f"for (int p = 0; p < {h * w}; p++) {{\n"
                f"    const {x_type} *restrict px = x + p * {c};\n"
                f"    for (int o = 0; o < {c}; o++) acc[o] += (int32_t)px[o] - ({xz});\n"
                f"}}\n"
                f"for (int o = 0; o < {c}; o++)\n" + _indent(_requant_store(k, layer, "acc[o]", "y[o]"), 4))
    elif op == "dense" or (layer["kernel"] == [1, 1] and layer["stride"] == [1, 1]
                           and layer["pad"] == [0, 0, 0, 0] and layer["groups"] == 1):
        outputs = _outer_outputs if _outer(layer) else _dot_outputs
        body = (f"int16_t patch[{_dot_len(layer)}] = {{0}}; /* the zero tail stays zero */\n"
                f"int32_t acc[{oc}];\n"
                f"for (int p = 0; p < {oh * ow}; p++) {{\n"
                f"    const {x_type} *restrict px = x + p * {c};\n"
                f"    for (int i = 0; i < {c}; i++) patch[i] = (int16_t)(px[i] - ({xz}));\n"
                + _indent(outputs(k, layer, f"(y + p * {oc})"), 4)
                + "}\n")
    elif layer["groups"] == 1:
        kh, kw = layer["kernel"]
        n = _dot_len(layer)
        fill = f"for (int i = 0; i < {c}; i++) patch[t * {c} + i] = (int16_t)(px[i] - ({xz}));\n"
        outputs = _outer_outputs if _outer(layer) else _dot_outputs
        store = outputs(k, layer, f"(y + (oy * {ow} + ox) * {oc})")
        body = (f"int16_t patch[{n}] = {{0}};\n"
                f"int32_t acc[{oc}];\n"
                + _spatial_loops(
                    layer,
                    _taps(layer, ("0", str(kh), "0", str(kw)), fill) + store,
                    f"for (int i = 0; i < {n}; i++) patch[i] = 0; /* padding: x - x_zp = 0 */\n"
                    + _taps(layer, ("ky0", "ky1", "kx0", "kx1"), fill) + store))
    else:  # depthwise: vectors over channels
        kh, kw = layer["kernel"]
        mac = (f"const int16_t *restrict pw = cml_w{k} + t * {c};\n"
               f"for (int o = 0; o < {c}; o++) acc[o] += (int16_t)(px[o] - ({xz})) * pw[o];\n")
        store = f"cml_requant{k}(acc, y + (oy * {ow} + ox) * {c});\n"
        # Interior pixels: one pointer per tap and the whole sum per channel in a register.
        pointers = "".join(f"const {x_type} *restrict p{ky * kw + kx} = x + ((iy + {ky}) * {w} + ix + {kx}) * {c};\n"
                           for ky in range(kh) for kx in range(kw))
        terms = "".join(f"    a += (int16_t)(p{t}[o] - ({xz})) * cml_w{k}[{t * c} + o];\n" for t in range(kh * kw))
        interior = (pointers + f"for (int o = 0; o < {c}; o++) {{\n    int32_t a = cml_b{k}[o];\n" + terms
                    + "    acc[o] = a;\n}\n" + store)

        body = (f"int32_t acc[{c}];\n"
                + _spatial_loops(
                    layer, interior,
                    f"for (int o = 0; o < {c}; o++) acc[o] = cml_b{k}[o];\n"
                    + _taps(layer, ("ky0", "ky1", "kx0", "kx1"), mac) + store))
    return head + _indent(body, 4) + "}\n"


def _layer_arrays(k: int, layer: dict, w: np.ndarray | None, b: np.ndarray | None) -> str:
    """Const arrays of layer k: int16 weights (dot layout, or [KH][KW][C] depthwise), bias, m, rounding, s."""
    if layer["op"] == "gap":
        return ""
    if layer["op"] == "conv2d" and layer["groups"] != 1:
        wc = w[:, :, :, 0].transpose(1, 2, 0)  # depthwise [C][KH][KW][1] -> [KH][KW][C]
    elif _outer(layer):  # [K][OC]: one row of output channels per patch element
        wc = w.reshape(w.shape[0], -1).T
    else:  # [OC][KH][KW][C] or [OC][C]: one contiguous row per output channel, zero-padded
        flat = w.reshape(w.shape[0], -1)
        wc = np.zeros((w.shape[0], _dot_len(layer)), dtype=np.int16)
        wc[:, : flat.shape[1]] = flat
    s = np.asarray(layer["s"], dtype=np.int64)
    # int16 weights: one load feeds the multiply directly (no sign extension in the inner loop).
    return (_c_array("int16_t", f"cml_w{k}", wc) + _c_array("int32_t", f"cml_b{k}", b)
            + _c_array("int32_t", f"cml_m{k}", layer["m"]) + _c_array("int32_t", f"cml_r{k}", 1 << (s - 1))
            + _c_array("int32_t", f"cml_s{k}", s))


def generate_sources(model: Int8Model) -> dict[str, str]:
    """File name -> text of the generated runtime: header, model source, example program, Makefile."""
    meta = model.meta
    layers = model.layers
    h, w, c = model.input_shape
    n_classes = len(model.classes)
    out = meta["output"]
    header = f"""/* camlytics int8 model {_comment_text(meta.get('name', ''))}: generated C runtime API (docs/int8.md). */
#ifndef CAMLYTICS_MODEL_H
#define CAMLYTICS_MODEL_H
#include <stdint.h>

#define CML_INPUT_H {h}
#define CML_INPUT_W {w}
#define CML_INPUT_C {c}
#define CML_INPUT_SIZE ({h * w * c})
#define CML_NUM_CLASSES {n_classes}
#define CML_OUTPUT_ZP ({int(out['zp'])})
#define CML_OUTPUT_SCALE {float(out['scale'])!r}f

extern const char *const cml_class_names[CML_NUM_CLASSES];

/* Run the network on one uint8 HWC input; write the int8 logits, return the class index (the first
   largest logit). Uses static buffers: not reentrant, call from one thread at a time. */
int cml_predict(const uint8_t *input, int8_t *logits);

/* cml_predict over n consecutive inputs; classes may be NULL. */
void cml_predict_batch(const uint8_t *inputs, int32_t n, int8_t *logits, int32_t *classes);

#endif
"""
    sizes = [int(np.prod(layer["out_shape"])) for layer in layers[:-1]] or [1]
    parts = [
        f"/* Generated by camlytics (C generator {GENERATOR_VERSION}) from model {_comment_text(meta.get('name', ''))}:\n"
        f"   {len(layers)} layers, {meta.get('macs', 0)} MACs. Integer arithmetic of docs/int8.md; do not edit.\n"
        "   Every accumulator and product fits int32_t (the model file's requantization bound);\n"
        "   `>>` on a negative int32_t is an arithmetic shift on every compiler we target (gcc, clang). */\n",
        f'#include "{HEADER_NAME}"\n\n',
        "const char *const cml_class_names[CML_NUM_CLASSES] = {"
        + ", ".join(_c_string(name) for name in model.classes) + "};\n\n",
        f"static uint8_t cml_buf[2][{max(sizes)}]; /* ping-pong activations; int8 tensors alias them */\n\n",
    ]
    for k, (layer, wt, bias) in enumerate(zip(layers, model.weights, model.biases)):
        parts.append(_layer_arrays(k, layer, wt, bias))
    for k, layer in enumerate(layers):
        parts.append("\n" + _layer_function(k, layer))
    calls = []
    for k, layer in enumerate(layers):
        src = "input" if k == 0 else f"(const {_CTYPE[layer['x_dtype']]} *)cml_buf[{(k - 1) % 2}]"
        dst = "logits" if k == len(layers) - 1 else f"({_CTYPE[layer['y_dtype']]} *)cml_buf[{k % 2}]"
        calls.append(f"    cml_layer{k}({src}, {dst});\n")
    parts.append(
        "\nint cml_predict(const uint8_t *input, int8_t *logits) {\n" + "".join(calls)
        + "    int best = 0;\n"
        "    for (int k = 1; k < CML_NUM_CLASSES; k++)\n"
        "        if (logits[k] > logits[best]) best = k;\n"
        "    return best;\n}\n\n"
        "void cml_predict_batch(const uint8_t *inputs, int32_t n, int8_t *logits, int32_t *classes) {\n"
        "    for (int32_t i = 0; i < n; i++) {\n"
        "        const int best = cml_predict(inputs + (long)i * CML_INPUT_SIZE, logits + (long)i * CML_NUM_CLASSES);\n"
        "        if (classes) classes[i] = best;\n"
        "    }\n}\n")
    makefile = f"""# Build the generated camlytics C runtime (C99, no dependencies beyond libc and libm for the example).
#   make                                   host build: {EXE_NAME} and {LIB_NAME}
#   make {EXE_NAME} CC=arm-linux-gnueabihf-gcc CFLAGS="-O3 -mfpu=neon" LDFLAGS=-static   (armv7hf)
#   make {EXE_NAME} CC=aarch64-linux-gnu-gcc CFLAGS=-O3 LDFLAGS=-static                  (aarch64)
# -O3 vectorizes far more loops than -O2 (NEON on ARM). Results are identical at any level.
CC ?= cc
CFLAGS ?= {' '.join(HOST_CFLAGS)}
LDFLAGS ?=

all: {EXE_NAME} {LIB_NAME}

{EXE_NAME}: main.c {SOURCE_NAME} {HEADER_NAME}
\t$(CC) -std=c99 $(CFLAGS) -o $@ main.c {SOURCE_NAME} $(LDFLAGS) -lm

{LIB_NAME}: {SOURCE_NAME} {HEADER_NAME}
\t$(CC) -std=c99 $(CFLAGS) -fPIC -shared -o $@ {SOURCE_NAME}

clean:
\trm -f {EXE_NAME} {LIB_NAME}

.PHONY: all clean
"""
    main_c = resources.files("camlytics.export").joinpath("c_templates/main.c").read_text(encoding="utf-8")
    return {HEADER_NAME: header, SOURCE_NAME: "".join(parts), "main.c": main_c, "Makefile": makefile}


def generate(model: Int8Model, out_dir: str | os.PathLike) -> list[Path]:
    """Write the generated runtime into `out_dir` (created if needed); returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate_sources(model).items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _compile(args: list[str], what: str) -> None:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        raise ModelError(f"C compiler {args[0]!r} not found") from None
    if proc.returncode != 0:
        raise ModelError(f"building {what} failed ({' '.join(args)}):\n{proc.stderr.strip()[-2000:]}")


def build_executable(src_dir: str | os.PathLike, out: str | os.PathLike | None = None, *, cc: str = "cc",
                     cflags: tuple[str, ...] | list[str] = DEFAULT_CFLAGS, static: bool = False) -> Path:
    """Compile the example program (e.g. `cc="arm-linux-gnueabihf-gcc", static=True` to cross-build)."""
    src_dir = Path(src_dir)
    out = Path(out) if out else src_dir / EXE_NAME
    args = [cc, "-std=c99", *cflags, "-o", str(out), str(src_dir / "main.c"), str(src_dir / SOURCE_NAME)]
    _compile(args + (["-static"] if static else []) + ["-lm"], str(out))
    return out


def build_shared(src_dir: str | os.PathLike, out: str | os.PathLike | None = None, *, cc: str = "cc",
                 cflags: tuple[str, ...] | list[str] = DEFAULT_CFLAGS) -> Path:
    """Compile the runtime as a shared library for ctypes."""
    src_dir = Path(src_dir)
    out = Path(out) if out else src_dir / LIB_NAME
    _compile([cc, "-std=c99", *cflags, "-fPIC", "-shared", "-o", str(out), str(src_dir / SOURCE_NAME)], str(out))
    return out


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "camlytics" / "c-runtime"


class CRuntime:
    """The generated C runtime of a model, built as a shared library and called through ctypes.

    `CRuntime(model_dir_or_file)` reuses a cached build keyed by the model bytes and compiler
    flags. `forward(x)` takes a uint8 HWC image or NHWC batch and returns int8 logits, bit-exact
    with `camlytics.model.int8ref.forward`.
    """

    def __init__(self, model, *, build_dir: str | os.PathLike | None = None, cc: str = "cc",
                 cflags: tuple[str, ...] | list[str] = HOST_CFLAGS):
        from camlytics.model.int8ref import as_model

        self.model = as_model(model)
        data = self.model.to_bytes()
        key = hashlib.sha256(data + repr((GENERATOR_VERSION, cc, tuple(cflags))).encode()).hexdigest()[:24]
        final = Path(build_dir) if build_dir else _cache_root() / key
        lib_path = final / LIB_NAME
        if not lib_path.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
            try:
                generate(self.model, tmp)
                build_shared(tmp, cc=cc, cflags=cflags)
                if build_dir:
                    final.mkdir(parents=True, exist_ok=True)
                    for item in tmp.iterdir():
                        os.replace(item, final / item.name)
                else:
                    try:
                        os.replace(tmp, final)  # atomic: another process may have won the race
                    except OSError:
                        pass
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        self.lib_path = lib_path
        self._lib = ctypes.CDLL(str(lib_path))
        self._lib.cml_predict_batch.restype = None
        self._lib.cml_predict_batch.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p]
        self._lock = threading.Lock()  # the C runtime uses static buffers
        self.input_shape = self.model.input_shape
        self.classes = self.model.classes

    def forward(self, x: np.ndarray) -> np.ndarray:
        """int8 logits `[OC]` for one uint8 HWC image, `[N, OC]` for an NHWC batch."""
        x = np.asarray(x)
        single = x.ndim == 3 or (x.ndim == 2 and self.input_shape[2] == 1)
        batch = np.ascontiguousarray(x.reshape((-1,) + self.input_shape) if single else x)
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != self.input_shape:
            raise ValueError(f"input must be uint8 HWC/NHWC of shape {self.input_shape}, got {x.dtype} {x.shape}")
        logits = np.empty((len(batch), len(self.classes)), dtype=np.int8)
        with self._lock:
            # __array_interface__ is several times cheaper than .ctypes per call (tight loops).
            self._lib.cml_predict_batch(batch.__array_interface__["data"][0], len(batch),
                                        logits.__array_interface__["data"][0], None)
        return logits[0] if single else logits

    def predict(self, x: np.ndarray) -> tuple[int, np.ndarray]:
        """`(class index, int8 logits)` for one image."""
        logits = self.forward(x)
        return int(np.argmax(logits)), logits
