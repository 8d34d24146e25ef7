"""The edge app under CPython with the generated C runtime (ctypes) as its inference engine.

`python -m camlytics.runtime.c_app CONFIG.json` is what `camlytics run --runtime c` starts: the same
loop as `camlytics.edge.app` (fetch, edge JPEG decoder, tracker, outputs), only `net.predict` runs
the model compiled to C, as a C-runtime build on the camera would.
"""

from __future__ import annotations

import sys

import numpy as np


class CNetwork:
    """`camlytics.edge.infer.Network`-compatible: `predict(input_bytes) -> (class index, scores)`."""

    backend = "c"

    def __init__(self, model_file: str) -> None:
        from camlytics.export.c_codegen import CRuntime

        self.runtime = CRuntime(model_file)
        out = self.runtime.model.meta["output"]
        self._scale, self._zp = float(out["scale"]), int(out["zp"])

    def run(self, x) -> np.ndarray:
        """int8 logits of a uint8 [H][W][C] input (bytes-like)."""
        return self.runtime.forward(np.frombuffer(bytes(x), np.uint8).reshape(self.runtime.input_shape))

    def predict(self, x) -> tuple[int, list[float]]:
        """`(class index, scores)` exactly as the edge Network computes them from the same logits."""
        from camlytics.edge.infer import argmax, softmax

        logits = [int(v) for v in self.run(x)]
        return argmax(logits), softmax(logits, self._scale, self._zp)


def main(argv: list[str] | None = None) -> int:
    """Entry point: `c_app CONFIG.json`."""
    from camlytics.edge import app

    return app.main(argv if argv is not None else sys.argv, network=lambda model, cfg: CNetwork(cfg["model"]))


if __name__ == "__main__":
    sys.exit(main())
