"""Learning-rate schedules that change once per epoch, as the re-id recipes step them.

CLIP-ReID (and SVLL-ReID) step their schedulers at the start of every epoch with the 1-based
epoch number, so the lr is constant within an epoch. These functions return the lr of every
optimizer step (for `Stage.lr`): the value of epoch `step // steps_per_epoch + 1`.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from humanssl.errors import UserError


def per_step(lr_of_epoch, total_steps: int, steps_per_epoch: int) -> np.ndarray:
    if steps_per_epoch < 1:
        raise UserError(f"lr schedule: steps_per_epoch must be >= 1, got {steps_per_epoch}")
    return np.array([lr_of_epoch(step // steps_per_epoch + 1) for step in range(int(total_steps))], dtype=np.float64)


def warmup_cosine_by_epoch(base_lr: float, epochs: int, warmup_epochs: int, warmup_lr: float, min_lr: float):
    """timm's CosineLRScheduler as stage 1 uses it (one cycle of `epochs`, warm-up counted inside
    it): epochs 1..warmup-1 rise linearly from `warmup_lr`, then a half cosine in the epoch number
    e reaches `min_lr` at e = epochs (e.g. 120 epochs, 5 warm-up, 3.5e-4 -> 1e-6)."""

    def lr(e: int) -> float:
        if e < warmup_epochs:
            return warmup_lr + e * (base_lr - warmup_lr) / warmup_epochs
        if e >= epochs:
            return min_lr
        return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * e / epochs))

    return lambda total, steps_per_epoch: per_step(lr, total, steps_per_epoch)


def warmup_multistep_by_epoch(base_lr: float, milestones: list[int], gamma: float = 0.1,
                              warmup_epochs: int = 10, warmup_factor: float = 0.1):
    """The re-id "WarmupMultiStepLR" of stage 2: linear warm-up of the factor from
    `warmup_factor` (epoch 0) to 1 (epoch `warmup_epochs`), times gamma at every milestone passed
    (epoch >= milestone); epoch 1 of 60 with the defaults runs at 0.19 x base_lr."""
    if list(milestones) != sorted(milestones):
        raise UserError(f"lr milestones {list(milestones)} must be increasing epochs")

    def lr(e: int) -> float:
        factor = 1.0
        if e < warmup_epochs:
            alpha = e / warmup_epochs
            factor = warmup_factor * (1 - alpha) + alpha
        return base_lr * factor * gamma ** bisect.bisect_right(list(milestones), e)

    return lambda total, steps_per_epoch: per_step(lr, total, steps_per_epoch)
