"""One run of the CNN recipe on one training set: the same code trains every cross-validation fold and the
shipped model, so cross-validation scores exactly what ships.

Stages (each seeds its own random numbers from the run's seed): the augmented pool; the student (sized
`prune_headroom` over budget) trained alone; with `distill`, a teacher and the student distilled from it;
each of them pruned to the budget and fine-tuned; each pruned model quantized to int8 after training (PTQ)
and after quantization-aware fine-tuning (QAT). Every (source, quantization) pair is a candidate for
cross-validation (train/crossval.py): "cnn", "cnn+qat", "cnn-distilled", "cnn-distilled+qat".
No frame is held out inside a run: training keeps the last epoch (train/fit.py).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from camlytics.model.inputs import Arrays


def stage_seed(seed: int, stage: str) -> np.random.Generator:
    """Seed torch for `stage` of a run with `seed`, and return that stage's numpy generator."""
    import torch

    offset = {"pool": 0, "teacher": 1, "student": 2, "distilled": 3, "pruned": 4, "qat": 5,
              "pruned-distilled": 6, "qat-distilled": 7}[stage]
    torch.manual_seed(seed * 101 + offset)
    return np.random.default_rng([seed, offset])


def pool_size(cfg: Any, n_train: int) -> int:
    """Augmented images every stage trains on: `cfg.pool`, else `pool_per_image` per image within 1024..8192."""
    # Many augmented copies per image: on held-out simulated days 30 per image (~6000) and 25 student
    # epochs beat 8 per image and 15 epochs by about a point, and made unlucky seeds rarer (bench/train.py).
    return cfg.pool or max(1024, min(8192, cfg.pool_per_image * n_train))


def run_cnn(cfg: Any, train: Arrays, classes: list[str], preprocess: dict[str, Any], progress: Any,
            teacher_weights: Any = None) -> dict[str, Any]:
    """Train the CNN recipe on `train`; returns {"models": {candidate: (float model, QuantizedModel)},
    "stage_models": {stage: float model}, "histories": [...], "timings": {...}, "spec": StudentSpec,
    "width": float, "keep_ratio": {...}}."""
    from camlytics.train.augment import AugmentConfig, augmented_pool
    from camlytics.train.distill import distillation_loss, hard_loss, teacher_logits
    from camlytics.train.fit import fit
    from camlytics.train.models import StudentSpec, build_student, size_student
    from camlytics.train.prune import prune_to_budget
    from camlytics.train.quantize import prepare_qat, quantize

    k = len(classes)
    _, h, w, c = train.x.shape
    chw = (c, h, w)
    out: dict[str, Any] = {"models": {}, "stage_models": {}, "histories": [], "timings": {}, "keep_ratio": {}}

    def timed(name: str, t0: float) -> None:
        out["timings"][name] = out["timings"].get(name, 0.0) + time.monotonic() - t0

    def train_stage(model: Any, loss: Any, epochs: int, lr: float, stage: str, name: str) -> None:
        out["histories"].append(fit(model, pool, None, loss, epochs=epochs, lr=lr, rng=stage_seed(cfg.seed, stage),
                                    name=name, progress=progress))

    t0 = time.monotonic()
    pool = Arrays(*augmented_pool(train.x, train.y, pool_size(cfg, len(train)), stage_seed(cfg.seed, "pool"),
                                  AugmentConfig()))
    timed("augment", t0)

    base = StudentSpec(input_hw=(h, w), in_channels=c, num_classes=k)
    if cfg.student_blocks:
        base.blocks = [tuple(b) for b in cfg.student_blocks]  # type: ignore[misc]
    spec, width = size_student(base, int(cfg.budget_macs * cfg.prune_headroom),
                               int(cfg.budget_bytes * cfg.prune_headroom))
    out["spec"], out["width"] = spec, width
    t0 = time.monotonic()
    stage_seed(cfg.seed, "student")
    student = build_student(spec)
    init_state = {key: v.clone() for key, v in student.state_dict().items()}
    train_stage(student, hard_loss(), cfg.epochs_student, 5e-3, "student", "student")
    out["stage_models"]["student"] = student
    timed("student", t0)
    sources = [("cnn", student, hard_loss(), "pruned", "qat")]
    if cfg.distill:
        from camlytics.train.teacher import build_teacher

        t0 = time.monotonic()
        stage_seed(cfg.seed, "teacher")
        teacher = build_teacher(c, k, teacher_weights)
        train_stage(teacher, hard_loss(), cfg.epochs_teacher, 1e-3 if teacher_weights else 3e-3, "teacher", "teacher")
        out["stage_models"]["teacher"] = teacher
        timed("teacher", t0)
        t0 = time.monotonic()
        kd = distillation_loss(teacher_logits(teacher, pool.x))
        stage_seed(cfg.seed, "distilled")
        distilled = build_student(spec)
        distilled.load_state_dict(init_state)
        train_stage(distilled, kd, cfg.epochs_student, 5e-3, "distilled", "distilled")
        out["stage_models"]["distilled"] = distilled
        timed("distilled", t0)
        sources.append(("cnn-distilled", distilled, kd, "pruned-distilled", "qat-distilled"))
    for name, source, loss, prune_stage, qat_stage in sources:
        t0 = time.monotonic()
        stage_seed(cfg.seed, prune_stage)
        pruned, keep = prune_to_budget(source, chw, cfg.budget_macs, cfg.budget_bytes)
        train_stage(pruned, loss, cfg.epochs_finetune, 2e-3, prune_stage, f"pruned ({name})")
        out["keep_ratio"][name] = keep
        out["stage_models"]["pruned" if name == "cnn" else "pruned-distilled"] = pruned
        timed("pruned", t0)
        t0 = time.monotonic()
        out["models"][name] = (pruned, quantize(pruned, train.x, classes=classes, preprocess=preprocess,
                                                 name=cfg.name))
        stage_seed(cfg.seed, qat_stage)
        qat = prepare_qat(pruned, train.x)
        train_stage(qat, loss, cfg.epochs_qat, 5e-4, qat_stage, f"qat ({name})")
        qat_model = qat.to_sequential().eval()
        out["models"][name + "+qat"] = (qat_model, quantize(qat_model, train.x, classes=classes,
                                                             preprocess=preprocess, name=cfg.name))
        timed("int8", t0)
    return out


def int8_probs(qmodel: Any, x: np.ndarray) -> np.ndarray:
    """Class probabilities of an int8 model (softmax of its dequantized logits: what the camera reports)."""
    from camlytics.model import int8ref

    return int8ref.scores(qmodel, int8ref.forward(qmodel, x)) if len(x) else np.zeros((0, len(qmodel.classes)))


def float_probs(model: Any, x: np.ndarray) -> np.ndarray:
    """Softmax of a float model's logits."""
    from camlytics.train.fit import predict_logits

    if not len(x):
        return np.zeros((0, 0))
    z = predict_logits(model, x).astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)
