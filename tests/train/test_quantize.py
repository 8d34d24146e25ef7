"""Post-training quantization turns a float student into an int8 model that tracks it closely."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from camlytics.edge.model import load_model
from camlytics.errors import ModelError
from camlytics.export import testmodels
from camlytics.model import int8ref
from camlytics.train import quantize as q

CLASSES = ["closed", "open"]


def door_images(n: int, seed: int, rgb: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Simulated 32x32 crops: a door region that is dark (open) or bright (closed), with clutter and noise."""
    rng = np.random.default_rng(seed)
    c = 3 if rgb else 1
    x = testmodels.random_images((32, 32, c), n, rng).astype(np.float64) * 0.5 + 60
    y = rng.integers(0, 2, size=n)
    x0 = rng.integers(8, 14, size=n)
    for i in range(n):
        x[i, 4:28, x0[i] : x0[i] + 10] = (30 if y[i] else 200) + rng.normal(0, 15, size=(24, 10, c))
    x *= rng.uniform(0.6, 1.3, size=(n, 1, 1, 1))  # lighting changes
    return np.clip(np.rint(x), 0, 255).astype(np.uint8), y


def student(c: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, 2, 1, groups=16, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 24, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 2),
    )


def as_float(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).float() / 255


def trained_student(seed: int = 0, rgb: bool = False, steps: int = 60) -> nn.Sequential:
    torch.manual_seed(seed)
    model = student(3 if rgb else 1)
    x, y = door_images(256, seed=seed + 100, rgb=rgb)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    xt, yt = as_float(x), torch.from_numpy(y)
    for _ in range(steps):
        idx = torch.randint(0, len(xt), (32,))
        loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny convolutions: threads only add overhead on the 2-core CI machine (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def grey_student() -> nn.Sequential:
    return trained_student()


def test_folding_batchnorm_keeps_the_float_outputs(grey_student):
    x, _ = door_images(32, seed=1)
    folded = q.fold_batchnorm(grey_student)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        np.testing.assert_allclose(folded(as_float(x)).numpy(), grey_student(as_float(x)).numpy(), atol=1e-5)


@pytest.mark.parametrize("rgb", [False, True])
def test_int8_model_tracks_the_float_student(grey_student, rgb):
    model = grey_student if not rgb else trained_student(seed=3, rgb=True)
    calib, _ = door_images(200, seed=7, rgb=rgb)
    test, labels = door_images(300, seed=8, rgb=rgb)
    qm = q.quantize(model, calib, classes=CLASSES, preprocess={"color": "rgb" if rgb else "gray"})
    with torch.no_grad():
        ref = model(as_float(test)).numpy()
    assert (ref.argmax(1) == labels).mean() > 0.9  # the float student learnt the task
    out = qm.meta["output"]
    logits = qm.forward(test)
    deq = out["scale"] * (logits.astype(np.float64) - out["zp"])
    span = ref.max() - ref.min()
    assert np.abs(deq - ref).mean() < 0.02 * span and np.abs(deq - ref).max() < 0.1 * span
    assert (deq.argmax(1) == ref.argmax(1)).mean() >= 0.98
    np.testing.assert_allclose(qm.float_forward(test), ref, atol=1e-4)


def test_quantized_parameters_follow_the_scheme(grey_student):
    calib, _ = door_images(64, seed=2)
    qm = q.quantize(grey_student, calib, classes=CLASSES)
    layers = qm.meta["layers"]
    assert [lay["op"] for lay in layers] == ["conv2d"] * 5 + ["gap", "dense"]
    assert layers[1]["groups"] == 8 and layers[0]["pad"] == [1, 1, 1, 1] and layers[0]["stride"] == [2, 2]
    for lay, w in zip(layers, qm.int8.weights):
        if lay["op"] == "gap":
            continue
        peak = np.abs(w.astype(int)).reshape(w.shape[0], -1).max(axis=1)
        assert np.all((peak == 127) | (peak == 0)) and w.min() >= -127  # per-channel symmetric
        big_m = lay["x_scale"] * np.array(lay["w_scale"]) / lay["y_scale"]
        np.testing.assert_allclose(np.array(lay["m"]) / 2.0 ** np.array(lay["s"]), big_m, rtol=2e-3)
    for lay in layers[:-1]:
        assert (lay["y_dtype"], lay["y_zp"]) == ("uint8", 0)  # after ReLU / pooling of ReLU outputs
    assert layers[-1]["y_dtype"] == "int8" and qm.meta["output"]["zp"] == layers[-1]["y_zp"]


def test_model_file_is_read_by_the_edge_reader_and_gives_the_same_logits(grey_student, tmp_path):
    calib, _ = door_images(64, seed=4)
    qm = q.quantize(grey_student, calib, classes=CLASSES, preprocess={"color": "gray", "roi": [1, 2, 300, 200],
                                                                        "source_size": [320, 240]})
    path = qm.save(tmp_path)
    edge = load_model(str(path))
    assert edge.classes == CLASSES and edge.input_shape == (32, 32, 1)
    assert edge.preprocess["roi"] == [1, 2, 300, 200]
    x, _ = door_images(10, seed=5)
    np.testing.assert_array_equal(int8ref.forward(path.read_bytes(), x), qm.forward(x))


def _check_tracks(model: nn.Sequential, classes: list[str], tolerance_steps: float) -> q.QuantizedModel:
    calib = testmodels.random_images((16, 16, 1), 64, np.random.default_rng(0))
    qm = q.quantize(model, calib, classes=classes)
    with torch.no_grad():
        ref = model(as_float(calib)).numpy()
    out = qm.meta["output"]
    deq = out["scale"] * (qm.forward(calib).astype(float) - out["zp"])
    assert np.abs(deq - ref).max() <= tolerance_steps * out["scale"]
    return qm


def test_non_relu_hidden_layers_get_a_zero_point():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.Conv2d(4, 6, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(6, 3))
    qm = _check_tracks(model, ["a", "b", "c"], tolerance_steps=4)
    first = qm.meta["layers"][0]
    assert first["y_dtype"] == "uint8" and 0 < first["y_zp"] < 255 and not first["relu"]


def test_pruned_channels_with_a_bias_still_quantize():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight[1] = 1e-12  # a pruned channel: only its bias is left
        model[0].bias[1] = 0.3
        model[4].weight[:, 1] = 2.0  # ...and the logits depend on it
    qm = _check_tracks(model, CLASSES, tolerance_steps=4)
    assert max(qm.int8.biases[0]) < 2**23


@pytest.mark.parametrize(
    "model, message",
    [
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)),
         "MaxPool2d"),
        (nn.Sequential(nn.Conv2d(1, 4, 3, groups=1, dilation=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                       nn.Linear(4, 2)), "dilation"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4, 2)), "Linear"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)), "3 classes|classes"),
        (nn.Conv2d(1, 4, 3), "nn.Sequential"),
    ],
)
def test_unsupported_students_are_refused_by_name(model, message):
    calib = np.zeros((2, 16, 16, 1), dtype=np.uint8)
    with pytest.raises(ModelError, match=message):
        q.quantize(model, calib, classes=CLASSES)


def test_calibration_images_are_validated(grey_student):
    with pytest.raises(ModelError, match="float32"):
        q.quantize(grey_student, np.zeros((2, 32, 32, 1), dtype=np.float32), classes=CLASSES)


def test_quantization_aware_fine_tuning_round_trip(grey_student):
    calib, _ = door_images(128, seed=9)
    qat = q.prepare_qat(grey_student, calib)
    x, y = door_images(128, seed=10)
    xt, yt = as_float(x), torch.from_numpy(y)
    qat.eval()
    with torch.no_grad():
        fake = qat(xt).numpy()
    qm = q.quantize(qat.to_sequential(), calib, classes=CLASSES)
    out = qm.meta["output"]
    deq = out["scale"] * (qm.forward(x).astype(float) - out["zp"])
    assert (fake.argmax(1) == deq.argmax(1)).mean() >= 0.98  # fake quant predicts the int8 network
    qat.train()
    opt = torch.optim.SGD(qat.parameters(), lr=0.01)
    before = nn.functional.cross_entropy(qat(xt), yt).item()
    for _ in range(5):
        loss = nn.functional.cross_entropy(qat(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() <= before * 1.05  # gradients flow through the fake quantizers
    assert all(p.grad is not None for p in qat.parameters())
    tuned = q.quantize(qat.to_sequential(), calib, classes=CLASSES)
    assert tuned.forward(x).shape == (128, 2)
