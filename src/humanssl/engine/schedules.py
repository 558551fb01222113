"""Per-step schedules as plain arrays: index by the optimizer step, never by a micro-batch."""

from __future__ import annotations

import math

import numpy as np


def cosine_schedule(start: float, end: float, total_steps: int, warmup_steps: int = 0,
                    warmup_start: float = 0.0) -> np.ndarray:
    """Linear warm-up from `warmup_start` to `start`, then a half cosine from `start` to `end`."""
    total_steps = max(int(total_steps), 0)
    warmup_steps = min(max(int(warmup_steps), 0), total_steps)
    warmup = np.linspace(warmup_start, start, warmup_steps, endpoint=False) if warmup_steps else np.zeros(0)
    rest = total_steps - warmup_steps
    t = np.arange(rest)
    decay = end + 0.5 * (start - end) * (1 + np.cos(math.pi * t / max(rest, 1)))
    return np.concatenate([warmup, decay]).astype(np.float64)


def scaled_lr(base_lr: float, effective_batch: int, reference_batch: int = 256) -> float:
    """The linear scaling rule: lr grows with the batch seen by one optimizer step."""
    return base_lr * effective_batch / reference_batch
