"""Training: data, augmentation, teacher and student networks, distillation, pruning, int8, evaluation."""
