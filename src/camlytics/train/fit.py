"""The one training loop every stage uses: shuffled pool batches, one-cycle LR, best-epoch pick."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from camlytics.model.inputs import Arrays
from camlytics.model.student import to_tensor
from camlytics.train.metrics import balanced_accuracy

# loss(student logits, labels, indices of the batch in the training pool) -> scalar
Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class History:
    """Per-epoch training loss and validation figures of one stage."""

    name: str
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_balanced_accuracy: list[float] = field(default_factory=list)
    best_epoch: int = -1

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy."""
        return dict(self.__dict__)


def predict_logits(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Float logits of `model` on unaugmented uint8 images (N, H, W, C)."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(model(to_tensor(x[i:i + batch_size])).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def fit(model: nn.Module, pool: Arrays, val: Arrays | None, loss_fn: Loss, *, epochs: int, lr: float,
        rng: np.random.Generator, name: str, progress: Any = None, batch_size: int = 64,
        weight_decay: float = 1e-4) -> History:
    """Train `model` in place on the (pre-augmented, class-balanced) pool; keep the best validation epoch.

    The best epoch has the highest validation balanced accuracy, ties going to the lower validation
    loss. Without `val` (cross-validated training: nothing may be held out of the fold) the last epoch is
    kept; the one-cycle schedule ends at a small learning rate, so it is a settled one.
    `loss_fn(logits, labels, pool_indices)` lets distillation look up cached teacher outputs.
    """
    history = History(name)
    num_classes = int(max(pool.y.max(), val.y.max() if val is not None and len(val) else 0)) + 1
    steps = epochs * math.ceil(len(pool) / batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
    task = progress.add_task(name, total=steps, status="") if progress is not None else None
    best: tuple[float, float] = (-1.0, math.inf)
    best_state = copy.deepcopy(model.state_dict())
    for epoch in range(epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(len(pool)))
        losses = []
        for i in range(0, len(pool), batch_size):
            idx = order[i:i + batch_size]
            x = to_tensor(pool.x[idx.numpy()])
            y = torch.from_numpy(pool.y[idx.numpy()].astype(np.int64))
            loss = loss_fn(model(x), y, idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            if task is not None:
                progress.advance(task)
        history.train_loss.append(float(np.mean(losses)))
        if val is None or not len(val):
            history.best_epoch = epoch
            if task is not None:
                progress.update(task, status=f"epoch {epoch + 1}/{epochs} loss {history.train_loss[-1]:.3f}")
            continue
        logits = predict_logits(model, val.x)
        vloss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(val.y.astype(np.int64))))
        vacc = balanced_accuracy(val.y, logits.argmax(1), num_classes)
        history.val_loss.append(vloss)
        history.val_balanced_accuracy.append(vacc)
        if (vacc, -vloss) > (best[0], -best[1]):
            best = (vacc, vloss)
            best_state = copy.deepcopy(model.state_dict())
            history.best_epoch = epoch
        if task is not None:
            progress.update(task, status=f"epoch {epoch + 1}/{epochs} loss {history.train_loss[-1]:.3f} "
                                         f"val {100 * vacc:.1f}%")
    if val is not None and len(val):
        model.load_state_dict(best_state)
    model.eval()
    return history
