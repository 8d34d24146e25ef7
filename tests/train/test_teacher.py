"""The teacher: MobileNetV2 laid out exactly like torchvision's, loading its ImageNet state dict."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from camlytics.errors import TrainingError
from camlytics.train.teacher import MobileNetV2, build_teacher, load_imagenet_weights

# Keys and shapes of torchvision's mobilenet_v2-b0353104.pth (checked against the real file).
TORCHVISION_KEYS = {
    "features.0.0.weight": (32, 3, 3, 3),
    "features.0.1.running_var": (32,),
    "features.1.conv.0.0.weight": (32, 1, 3, 3),
    "features.1.conv.1.weight": (16, 32, 1, 1),
    "features.2.conv.0.0.weight": (96, 16, 1, 1),
    "features.2.conv.1.0.weight": (96, 1, 3, 3),
    "features.2.conv.2.weight": (24, 96, 1, 1),
    "features.2.conv.3.bias": (24,),
    "features.17.conv.2.weight": (320, 960, 1, 1),
    "features.18.0.weight": (1280, 320, 1, 1),
    "classifier.1.weight": (1000, 1280),
}


def test_state_dict_layout_matches_torchvision() -> None:
    state = MobileNetV2(1000).state_dict()
    assert len(state) == 314
    for key, shape in TORCHVISION_KEYS.items():
        assert tuple(state[key].shape) == shape, key


def test_loads_imagenet_features_and_keeps_a_new_classifier(tmp_path: Path) -> None:
    torch.manual_seed(0)
    imagenet = MobileNetV2(1000).state_dict()
    torch.save(imagenet, tmp_path / "w.pth")
    teacher = build_teacher(1, 2, tmp_path / "w.pth")
    assert torch.equal(teacher.state_dict()["features.5.conv.1.0.weight"], imagenet["features.5.conv.1.0.weight"])
    assert teacher.classifier[1].out_features == 2
    teacher.eval()
    assert teacher(torch.rand(2, 1, 16, 16)).shape == (2, 2)  # grey input, any size


def test_missing_keys_are_named(tmp_path: Path) -> None:
    state = MobileNetV2(1000).state_dict()
    del state["features.3.conv.2.weight"]
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(TrainingError, match="missing features.3.conv.2.weight"):
        load_imagenet_weights(MobileNetV2(2), tmp_path / "w.pth")


def test_imagenet_teacher_trains_only_its_top_blocks(tmp_path: Path) -> None:
    torch.manual_seed(0)
    torch.save(MobileNetV2(1000).state_dict(), tmp_path / "w.pth")
    teacher = build_teacher(1, 2, tmp_path / "w.pth")
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in teacher.parameters() if p.requires_grad], lr=1e-2)
    teacher.train()
    loss = torch.nn.functional.cross_entropy(teacher(torch.rand(4, 1, 32, 32)), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    optimizer.step()
    after = teacher.state_dict()
    frozen = [k for k in before if k.startswith("features.") and int(k.split(".")[1]) < teacher.frozen]
    trained = [k for k in before if k.startswith(("features.17.", "classifier."))]
    assert frozen and trained
    assert all(torch.equal(before[k], after[k]) for k in frozen)  # weights and batch-norm statistics
    assert any(not torch.equal(before[k], after[k]) for k in trained)
