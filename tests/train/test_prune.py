"""Structured channel pruning: exact when nothing or only dead channels go, and meets the budget."""

from __future__ import annotations

import torch
from torch import nn

from camlytics.train.models import StudentSpec, build_student, count_macs, int8_weight_bytes
from camlytics.train.prune import channel_groups, prune_channels, prune_to_budget, prune_uniform


def _trained_looking_student() -> nn.Sequential:
    torch.manual_seed(1)
    model = build_student(StudentSpec(input_hw=(16, 16)))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
                m.running_mean.uniform_(-0.1, 0.1)
    return model.eval()


def test_keeping_every_channel_changes_nothing() -> None:
    model = _trained_looking_student()
    x = torch.rand(4, 1, 16, 16)
    assert torch.allclose(prune_uniform(model, 1.0).eval()(x), model(x))


def test_removing_dead_channels_changes_nothing() -> None:
    model = _trained_looking_student()
    keep = {}
    with torch.no_grad():
        for g in channel_groups(model):
            c = model[g.producer].out_channels
            dead = torch.arange(0, c, 3)
            for b in g.bns:  # gamma = beta = 0 along the whole path: the channel is exactly zero
                model[b].weight[dead] = 0
                model[b].bias[dead] = 0
                model[b].running_mean[dead] = 0
            keep[g.producer] = torch.tensor([i for i in range(c) if i % 3])
    pruned = prune_channels(model, keep).eval()
    x = torch.rand(4, 1, 16, 16)
    assert torch.allclose(pruned(x), model(x), atol=1e-6)
    assert count_macs(pruned, (1, 16, 16)) < count_macs(model, (1, 16, 16))


def test_prune_to_budget_fits_and_keeps_the_strongest_channels() -> None:
    model = _trained_looking_student()
    budget = count_macs(model, (1, 16, 16)) // 2
    pruned, ratio = prune_to_budget(model, (1, 16, 16), budget, 32 * 1024)
    assert count_macs(pruned, (1, 16, 16)) <= budget and int8_weight_bytes(pruned) <= 32 * 1024
    assert 0 < ratio < 1
    stem = channel_groups(model)[0]
    assert stem.producer == 0
    score = torch.ones(model[0].out_channels)
    for b in stem.bns:
        score = score * model[b].weight.abs()
    kept = pruned[0].out_channels
    strongest = torch.topk(score, kept).indices.sort().values
    assert torch.equal(pruned[0].weight, model[0].weight[strongest])
    assert pruned(torch.rand(2, 1, 16, 16)).shape == (2, 2)
