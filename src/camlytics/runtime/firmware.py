"""Runtime "firmware:ARCH": the edge package inside the camlytics firmware built for ARCH (x86_64
natively, armv7hf / aarch64 under qemu-user), so a PC computes what the camera will.

    camlytics evaluate MODEL_DIR SOURCE --runtime firmware:aarch64
    camlytics run MODEL_DIR --camera URL --runtime firmware:armv7hf

The firmware is built on first use (or taken from the cache; docs/firmware.md) from the MicroPython
source named by $CAMLYTICS_MICROPYTHON_SRC, and runs only the edge package frozen into it.
"""

from __future__ import annotations

from pathlib import Path

from camlytics.errors import CamlyticsError
from camlytics.firmware.build import ARCHES, ensure_firmware, firmware_argv
from camlytics.model.predictor import register_runtime
from camlytics.runtime.micropython import HEAPSIZE, Interpreter
from camlytics.runtime.predictors import MicroPythonPredictor

PREFIX = "firmware:"


def firmware_interpreter(arch: str) -> Interpreter:
    """The firmware for `arch` as an Interpreter running its frozen edge package (built if not cached)."""
    if arch not in ARCHES:
        raise CamlyticsError(f"runtime firmware:{arch or '?'}: the architecture must be one of "
                             f"{', '.join(ARCHES)} (e.g. firmware:armv7hf)")
    binary = ensure_firmware(arch)
    return Interpreter(tuple(firmware_argv(arch, binary)), path=(".frozen",), heapsize=HEAPSIZE)


def firmware_predictor(model_dir: Path, arch: str) -> MicroPythonPredictor:
    """Runtime "firmware:ARCH" for `load_predictor` / `camlytics evaluate` (see MicroPythonPredictor)."""
    return MicroPythonPredictor(model_dir, firmware_interpreter(arch), runtime=f"{PREFIX}{arch}")


register_runtime("firmware", firmware_predictor, option=True)
