"""Knowledge distillation: the student matches the teacher's softened outputs and the hard labels."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def hard_loss(label_smoothing: float = 0.05) -> Loss:
    """Cross-entropy on the labels only (the student trained alone)."""
    def loss(logits: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    return loss


def distillation_loss(teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.7) -> Loss:
    """`alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(labels)` (Hinton et al. 2015).

    The teacher sees the same augmented batch as the student, so its soft targets describe exactly
    the image the student is asked about.
    """
    teacher.eval()

    def loss(logits: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            soft = F.softmax(teacher(x) / temperature, dim=1)
        kd = F.kl_div(F.log_softmax(logits / temperature, dim=1), soft, reduction="batchmean")
        return alpha * temperature**2 * kd + (1 - alpha) * F.cross_entropy(logits, y)
    return loss
