"""Structured channel pruning of a student toward a MAC and weight budget.

A channel made by a full or pointwise conv flows through its BN and ReLU, maybe through a depthwise
conv (+BN+ReLU) that keeps channels apart, and ends at the input of the next full conv or of the
dense layer after the pool. Removing it removes a slice of every one of those tensors. Channels are
ranked by the product of the |BN scale|s along that path (network slimming, Liu et al. 2017).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from camlytics.errors import ModelError
from camlytics.train.models import MIN_CHANNELS, count_macs, int8_weight_bytes


@dataclass
class ChannelGroup:
    """Layer indices one prunable set of channels touches."""

    producer: int          # full or pointwise conv that makes the channels (output dim)
    bns: list[int]         # BNs along the path (output dim)
    depthwise: list[int]   # depthwise convs along the path (output dim, one filter per channel)
    consumer: int          # conv or linear that reads them (input dim)


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels == m.out_channels


def channel_groups(model: nn.Sequential) -> list[ChannelGroup]:
    """Every prunable channel set of a student (see the module docstring)."""
    layers = list(model)
    groups = []
    for i, m in enumerate(layers):
        if not isinstance(m, nn.Conv2d) or _is_depthwise(m):
            continue
        bns, dws, j = [], [], i + 1
        while j < len(layers):
            n = layers[j]
            if isinstance(n, nn.BatchNorm2d):
                bns.append(j)
            elif _is_depthwise(n):
                dws.append(j)
            elif isinstance(n, (nn.Conv2d, nn.Linear)):
                break
            j += 1
        if j == len(layers) or not bns:
            continue  # not followed by a BN or by a consumer: leave it alone
        if isinstance(layers[j], nn.Linear) and not any(isinstance(layers[k], nn.AdaptiveAvgPool2d) for k in range(i, j)):
            continue  # a Linear after a plain flatten reads H*W values per channel
        groups.append(ChannelGroup(i, bns, dws, j))
    return groups


def channel_importance(model: nn.Sequential, group: ChannelGroup) -> torch.Tensor:
    """Per-channel score: product of |gamma| of the BNs along the channel's path."""
    score = torch.ones(model[group.producer].out_channels)
    for b in group.bns:
        score = score * model[b].weight.detach().abs()
    return score


def _slice_conv(conv: nn.Conv2d, out_idx: torch.Tensor | None, in_idx: torch.Tensor | None) -> nn.Conv2d:
    w = conv.weight.detach()
    depthwise = _is_depthwise(conv)
    if out_idx is not None:
        w = w[out_idx]
    if in_idx is not None and not depthwise:
        w = w[:, in_idx]
    oc = w.shape[0]
    ic = oc if depthwise else w.shape[1] * conv.groups
    new = nn.Conv2d(ic, oc, conv.kernel_size, conv.stride, conv.padding, groups=oc if depthwise else conv.groups,
                    bias=conv.bias is not None)
    new.weight.data.copy_(w)
    if conv.bias is not None:
        new.bias.data.copy_(conv.bias.detach()[out_idx] if out_idx is not None else conv.bias.detach())
    return new


def _slice_bn(bn: nn.BatchNorm2d, idx: torch.Tensor) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(len(idx), eps=bn.eps, momentum=bn.momentum)
    for name in ("weight", "bias"):
        getattr(new, name).data.copy_(getattr(bn, name).detach()[idx])
    for name in ("running_mean", "running_var"):
        getattr(new, name).copy_(getattr(bn, name)[idx])
    return new


def prune_channels(model: nn.Sequential, keep: dict[int, torch.Tensor]) -> nn.Sequential:
    """A copy of `model` keeping, for each group producer index, only the given channel indices."""
    layers = list(model)
    out_keep: dict[int, torch.Tensor] = {}
    in_keep: dict[int, torch.Tensor] = {}
    for g in channel_groups(model):
        if g.producer not in keep:
            continue
        idx = torch.sort(keep[g.producer]).values
        for k in [g.producer, *g.bns, *g.depthwise]:
            out_keep[k] = idx
        in_keep[g.consumer] = idx
    new: list[nn.Module] = []
    for i, m in enumerate(layers):
        o, n = out_keep.get(i), in_keep.get(i)
        if isinstance(m, nn.Conv2d) and (o is not None or n is not None):
            new.append(_slice_conv(m, o, n))
        elif isinstance(m, nn.BatchNorm2d) and o is not None:
            new.append(_slice_bn(m, o))
        elif isinstance(m, nn.Linear) and n is not None:
            lin = nn.Linear(len(n), m.out_features)
            lin.weight.data.copy_(m.weight.detach()[:, n])
            lin.bias.data.copy_(m.bias.detach())
            new.append(lin)
        else:
            new.append(copy.deepcopy(m))
    return nn.Sequential(*new)


def prune_uniform(model: nn.Sequential, ratio: float) -> nn.Sequential:
    """Keep the top `ratio` of the channels (at least MIN_CHANNELS) of every group."""
    keep = {}
    for g in channel_groups(model):
        c = model[g.producer].out_channels
        k = min(c, max(MIN_CHANNELS, math.ceil(ratio * c)))
        keep[g.producer] = torch.topk(channel_importance(model, g), k).indices
    return prune_channels(model, keep)


def prune_to_budget(model: nn.Sequential, input_chw: tuple[int, int, int], budget_macs: int,
                    budget_bytes: int) -> tuple[nn.Sequential, float]:
    """The least pruned copy (uniform keep ratio, steps of 1/64) that fits both budgets."""
    def fits(step: int) -> nn.Sequential | None:
        pruned = prune_uniform(model, step / 64)
        ok = count_macs(pruned, input_chw) <= budget_macs and int8_weight_bytes(pruned) <= budget_bytes
        return pruned if ok else None

    if fits(1) is None:
        raise ModelError(f"cannot prune the student below {budget_macs} MACs and {budget_bytes} weight bytes")
    lo, hi = 1, 64  # cost grows with the ratio: binary search for the largest step that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid) is not None:
            lo = mid
        else:
            hi = mid - 1
    return fits(lo), lo / 64  # type: ignore[return-value]
