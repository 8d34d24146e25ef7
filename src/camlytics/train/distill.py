"""Knowledge distillation: the student matches the teacher's softened outputs and the hard labels."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from camlytics.train.fit import Loss, predict_logits


def hard_loss(label_smoothing: float = 0.05) -> Loss:
    """Cross-entropy on the labels only (the student trained alone, the teacher)."""
    def loss(logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    return loss


def teacher_logits(teacher: nn.Module, pool_x: np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """The teacher's logits for every pooled (already augmented) training image, computed once."""
    return torch.from_numpy(predict_logits(teacher, pool_x, batch_size))


def distillation_loss(cached: torch.Tensor, temperature: float = 4.0, alpha: float = 0.7) -> Loss:
    """`alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(labels)` (Hinton et al. 2015).

    `cached` holds the teacher's logits for each pool image: the teacher saw exactly the augmented
    image the student is asked about. The softened targets are computed once, not per batch.
    """
    soft_all = F.softmax(cached / temperature, dim=1)

    def loss(logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        soft = soft_all[idx]
        kd = F.kl_div(F.log_softmax(logits / temperature, dim=1), soft, reduction="batchmean")
        return alpha * temperature**2 * kd + (1 - alpha) * F.cross_entropy(logits, y)
    return loss
