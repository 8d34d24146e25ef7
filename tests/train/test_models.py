"""The student family: sized to a budget, counted correctly, saved and loaded exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from camlytics.errors import ModelError
from camlytics.model.student import build_from_arch, load_student, save_student, sequential_arch
from camlytics.train.models import StudentSpec, build_student, count_macs, int8_weight_bytes, size_student


def test_mac_counter_counts_convolutions_and_dense_layers() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, 1, 1, groups=4, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2))
    # 8x8 input -> 4x4x4 outputs of 9 MACs (full conv, 1 input channel), 4x4x4 of 9 (depthwise), 4*2 dense
    assert count_macs(model, (1, 8, 8)) == 4 * 4 * 4 * 9 + 4 * 4 * 4 * 9 + 8
    assert int8_weight_bytes(model) == (36 + 4 * 4) + (36 + 4 * 4) + (8 + 4 * 2)


@pytest.mark.parametrize("hw", [(32, 32), (48, 48)])
def test_student_is_sized_to_the_budgets(hw: tuple[int, int]) -> None:
    spec, width = size_student(StudentSpec(input_hw=hw), 500_000, 32 * 1024)
    model = build_student(spec)
    assert count_macs(model, (1, *hw)) <= 500_000 and int8_weight_bytes(model) <= 32 * 1024
    wider = build_student(StudentSpec(input_hw=hw).scaled(width + 1 / 16))
    assert count_macs(wider, (1, *hw)) > 500_000 or int8_weight_bytes(wider) > 32 * 1024


def test_a_budget_nothing_fits_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match=r"budget too small: the narrowest student needs [\d,]+ MACs and [\d,]+ "
                                         r"int8 weight bytes at input 64x64; it may start with 1,000 and 32,768"):
        size_student(StudentSpec(input_hw=(64, 64)), 1000, 32 * 1024)


@pytest.mark.parametrize("blocks", [None, [(16, 2, "conv"), (32, 2, "ds"), (48, 1, "ds")]])
def test_student_uses_only_the_layers_the_int8_exporter_knows(blocks: list | None) -> None:
    model = build_student(StudentSpec(blocks=blocks) if blocks else StudentSpec())
    allowed = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear)
    assert all(isinstance(m, allowed) for m in model)
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert all(m.bias is None for m in convs)  # every conv is followed by a BN
    assert all(m.groups in (1, m.in_channels) for m in convs)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 2)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_student(StudentSpec(input_hw=(24, 24), in_channels=3, num_classes=3)).eval()
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
    save_student(tmp_path / "s.pt", model, {"classes": ["a", "b", "c"]})
    loaded, meta = load_student(tmp_path / "s.pt")
    x = torch.rand(3, 3, 24, 24)
    assert torch.equal(loaded(x), model(x))
    assert meta == {"classes": ["a", "b", "c"]}
    assert sequential_arch(loaded) == sequential_arch(model)


def test_loading_rejects_garbage_and_unknown_layers(tmp_path: Path) -> None:
    (tmp_path / "bad.pt").write_bytes(b"not torch")
    with pytest.raises(ModelError, match="not a readable student model"):
        load_student(tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="no such file"):
        load_student(tmp_path / "missing.pt")
    with pytest.raises(ModelError, match="unknown layer type 'lstm'"):
        build_from_arch([{"type": "lstm"}])
    with pytest.raises(ModelError, match="block kind must be one of"):
        build_student(StudentSpec(blocks=[(8, 2, "transformer")]))


@pytest.mark.parametrize("change, message", [
    ({"epochs_student": 0}, "epochs-student must be a whole number >= 1, got 0"),
    ({"pool_per_image": 0}, "pool-per-image must be a whole number >= 1, got 0"),
    ({"pool": 8}, "pool must be 0 (automatic) or >= 16, got 8"),
    ({"color": "ir"}, "color must be 'gray', 'rgb' or 'auto'"),
    ({"budget_macs": 10}, "budget-macs must be >= 1000"),
    ({"budget_bytes": -100}, "budget-bytes must be >= 100, got -100"),
    ({"seed": -1}, "seed must be a whole number 0-2147483647, got -1"),
])
def test_a_bad_training_setting_is_named(change, message):
    from camlytics.errors import TrainingError
    from camlytics.train.pipeline import TrainConfig

    TrainConfig().validate()
    with pytest.raises(TrainingError, match=re.escape(message)):
        TrainConfig(**change).validate()
