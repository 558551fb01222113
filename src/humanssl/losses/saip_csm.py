"""The attention half of SAIP's cross-scale matching (CSM) loss (notes/solider_saip.md §2.3).

CSM has two terms. The representation term is DINO's loss (`losses/dino.py`, unchanged): the
centred, sharpened teacher distribution of each of the 2 global views against the student
distribution of every other view (2 globals, the local crops, and two rescaled views: 18 pairs
officially). For the 2 pairs where teacher and student saw the same view, SAIP instead distils
the last block's attention: KL(teacher || student) of the softmax(q k^T) map plus that of the
softmax(v v^T) map, both offset by eps before the log (as officially), summed over keys,
averaged over images, heads and queries, then over the views.
"""

from __future__ import annotations

import torch
from torch import Tensor


def attention_distillation(student: list[Tensor], teacher: list[Tensor], eps: float = 1e-10) -> Tensor:
    """student, teacher: the [qk, vv] pairs of the same views, each (views * B, heads, N, N).

    All views have the same number of images, so the official mean of per-view means is the mean
    over every (image, head, query); summed over the two maps. Computed in float32: eps = 1e-10
    vanishes in half precision. No gradient reaches the teacher."""
    if len(student) != len(teacher) or any(s.shape != t.shape for s, t in zip(student, teacher)):
        raise ValueError("attention_distillation: student and teacher maps must pair up with equal shapes, got "
                         f"{[tuple(s.shape) for s in student]} and {[tuple(t.shape) for t in teacher]}")
    total = torch.zeros((), device=student[0].device)
    with torch.autocast(device_type=student[0].device.type, enabled=False):
        for s, t in zip(student, teacher):
            t = t.detach().float() + eps
            kl = (t * (t.log() - (s.float() + eps).log())).sum(-1)
            total = total + kl.mean()
    return total
