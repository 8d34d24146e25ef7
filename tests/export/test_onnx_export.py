"""The ONNX export of the float student gives PyTorch's outputs in onnxruntime, for any batch size."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from camlytics.errors import ModelError
from camlytics.model.onnx_export import INPUT_NAME, OPSET, export_onnx, onnx_session
from camlytics.train.quantize import fold_batchnorm


def student(c: int) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(c, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, 2, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2),
    )
    for mod in model.modules():  # non-trivial BN statistics, as after training
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.3, 0.3)
            mod.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("c, hw", [(1, (32, 32)), (3, (24, 40))])
def test_onnxruntime_matches_pytorch(tmp_path, c, hw):
    model = student(c)
    path = export_onnx(model, tmp_path / "model.onnx", (c, *hw))
    proto = onnx.load(str(path))
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) == OPSET >= 13
    session = onnx_session(path)
    for batch in (1, 5):  # dynamic batch dimension
        x = torch.rand(batch, c, *hw)
        got = session.run(None, {INPUT_NAME: x.numpy()})[0]
        with torch.no_grad():
            want = model(x).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary files left


def test_folded_student_exports_to_the_same_function(tmp_path):
    model = student(1)
    path = export_onnx(fold_batchnorm(model), tmp_path / "folded.onnx", (1, 32, 32))
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(onnx_session(path).run(None, {INPUT_NAME: x.numpy()})[0], want, rtol=1e-4, atol=1e-5)


def test_bad_input_shape_is_refused(tmp_path):
    with pytest.raises(ModelError, match="input_chw"):
        export_onnx(student(1), tmp_path / "m.onnx", (1, 0, 32))


def test_cli_exports_the_student_of_a_model_directory(tmp_path, capsys):
    from camlytics.cli import main as cli_main
    from camlytics.model.student import save_student

    model = student(1)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    meta = {"classes": ["closed", "open"],
            "input": {"width": 40, "height": 24, "color": "gray", "roi": [0, 0, 640, 360], "source_size": [640, 360]}}
    save_student(model_dir / "student.pt", model, meta)
    assert cli_main(["export", str(model_dir), "--target", "onnx", "--out", str(tmp_path / "out")]) == 0
    path = tmp_path / "out" / "model.onnx"
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["classes"] == "closed,open"
    x = torch.rand(2, 1, 24, 40)
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(onnx_session(path).run(None, {INPUT_NAME: x.numpy()})[0], want, rtol=1e-4, atol=1e-5)
    assert cli_main(["export", str(tmp_path / "nothing"), "--target", "onnx", "--out", str(tmp_path / "o2")]) == 2
    assert "nothing" in capsys.readouterr().err
