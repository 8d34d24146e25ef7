"""ONNX export of the float student (opset 17, dynamic batch), for onnxruntime and other tools."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from camlytics.errors import ModelError

OPSET = 17
INPUT_NAME = "image"  # float N x C x H x W, pixel / 255
OUTPUT_NAME = "logits"


def export_onnx(model, path: str | os.PathLike, input_chw: tuple[int, int, int], *,
                classes: list[str] | None = None) -> Path:
    """Write `model` (a float torch module, eval mode) to `path` as ONNX; returns the path.

    The batch dimension is dynamic; `classes` are stored as metadata (`classes`, comma-separated).
    The file is written atomically and checked by `onnx.checker`.
    """
    import onnx
    import torch

    c, h, w = (int(v) for v in input_chw)
    if min(c, h, w) < 1:
        raise ModelError(f"input_chw must be three positive sizes, got {input_chw}")
    path = Path(path)
    was_training = model.training
    model.eval()
    fd, tmp = tempfile.mkstemp(prefix=".onnx-", suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated but has no extra deps
            torch.onnx.export(
                model, (torch.zeros(1, c, h, w),), tmp, dynamo=False, opset_version=OPSET,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        proto = onnx.load(tmp)
        onnx.checker.check_model(proto)
        if classes:
            onnx.helper.set_model_props(proto, {"classes": ",".join(classes), "input": "pixel / 255, N x C x H x W"})
            onnx.save(proto, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        model.train(was_training)
    return path


def onnx_session(path: str | os.PathLike, threads: int = 1):
    """An onnxruntime session on the model (single-threaded by default: the camera has one core to spare)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_parity(model, path: str | os.PathLike, images_uint8_nhwc) -> float:
    """Largest |onnxruntime - PyTorch| logit difference on uint8 N x H x W x C images."""
    import numpy as np
    import torch

    x = np.ascontiguousarray(np.asarray(images_uint8_nhwc).transpose(0, 3, 1, 2)).astype(np.float32) / 255
    was_training = model.training
    model.eval()
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    model.train(was_training)
    got = onnx_session(path).run(None, {INPUT_NAME: x})[0]
    return float(np.abs(got - want).max())
