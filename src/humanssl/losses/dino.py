"""DINO's self-distillation loss with a centred, sharpened teacher (Caron et al., 2021).

The teacher's softmax is centred (an EMA of its mean output, shared by all processes) and
sharpened by a low temperature; the student matches it by cross-entropy on every
(teacher view, student view) pair that are not the same view.

`center_groups > 1` keeps one centre per group of images named at each call (SOLIDER's
lambda = 0 and lambda = 1 images, `solider.center_per_lambda`); the official code has one.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from humanssl.engine.distributed import all_reduce_sum


class DINOLoss(nn.Module):
    def __init__(
        self,
        out_dim: int,
        num_global_crops: int = 2,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
        center_groups: int = 1,
    ) -> None:
        super().__init__()
        self.num_global_crops = num_global_crops
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        # Persistent: the centre is training state and must survive a resume.
        self.register_buffer("center", torch.zeros(center_groups, out_dim))

    def forward(self, student_out: Tensor, teacher_out: Tensor, teacher_temp: float,
                groups: Tensor | None = None) -> Tensor:
        """student_out (num_crops*B, D), teacher_out (num_global_crops*B, D), both crop-major;
        `groups` (B,) the centre of each image (needed when the loss has several)."""
        ng = self.num_global_crops
        if teacher_out.shape[0] % ng or student_out.shape[0] % (teacher_out.shape[0] // ng):
            raise ValueError(
                f"DINOLoss: teacher rows {teacher_out.shape[0]} must be {ng} x batch and student "
                f"rows {student_out.shape[0]} a multiple of that batch"
            )
        batch = teacher_out.shape[0] // ng
        got = None if groups is None else tuple(groups.shape)
        if (groups is None) != (self.center.shape[0] == 1) or (got is not None and got != (batch,)):
            raise ValueError(f"DINOLoss with {self.center.shape[0]} centre(s): pass groups (one per image, "
                             f"{batch}) exactly when there are several; got {got}")
        rows = None if groups is None else groups.to(teacher_out.device).long().repeat(ng)
        n_crops = student_out.shape[0] // batch
        # Pairs (i, j) with i != j; teacher crop i is student crop i, so drop those.
        n_pairs = ng * n_crops - min(ng, n_crops)
        if n_pairs == 0:
            raise ValueError("DINOLoss needs at least one pair of different views")

        # Under fp16/bf16 autocast the logits over 65k prototypes lose too much precision, and the
        # einsum below would be autocast too; so the whole loss is computed in float32.
        with torch.autocast(device_type=student_out.device.type, enabled=False):
            center = self.center.to(device=teacher_out.device, dtype=torch.float32)
            center = center if rows is None else center[rows]
            q = F.softmax((teacher_out.detach().float() - center) / teacher_temp, dim=-1)
            log_p = F.log_softmax(student_out.float() / self.student_temp, dim=-1)
            q = q.reshape(ng, batch, -1)
            log_p = log_p.reshape(n_crops, batch, -1)
            # ce[i, j] = mean over images of the cross-entropy between teacher view i and
            # student view j: one contraction instead of a Python loop over pairs.
            ce = -torch.einsum("ibd,jbd->ij", q, log_p) / batch
            same_view = torch.eye(ng, n_crops, dtype=torch.bool, device=ce.device)
            loss = ce.masked_fill(same_view, 0.0).sum() / n_pairs

        self.update_center(teacher_out, rows)
        return loss

    @torch.no_grad()
    def update_center(self, teacher_out: Tensor, rows: Tensor | None = None) -> None:
        """EMA of the teacher's mean output over the global batch (all processes), per group
        (`rows`: each row's group; none: all in group 0); a group with no image in the global
        batch keeps its centre."""
        out, m = teacher_out.detach().float(), self.center_momentum
        if rows is None:
            rows = torch.zeros(len(out), dtype=torch.long, device=out.device)
        g = self.center.shape[0]
        sums = torch.zeros(g, out.shape[1], device=out.device).index_add_(0, rows, out)
        counts = torch.zeros(g, 1, device=out.device).index_add_(0, rows, torch.ones(len(rows), 1, device=out.device))
        all_reduce_sum(sums)
        all_reduce_sum(counts)
        moved = self.center.float() * m + (sums / counts.clamp(min=1)).to(self.center.device) * (1.0 - m)
        self.center.copy_(torch.where((counts > 0).to(self.center.device), moved, self.center.float()))


def teacher_temperature_schedule(
    warmup_temp: float, final_temp: float, warmup_steps: int, total_steps: int
) -> np.ndarray:
    """Teacher temperature per step (or epoch): linear warm-up, then constant.

    As in DINO, the ramp is ``linspace(warmup_temp, final_temp, warmup_steps)``, so it already
    reaches final_temp at index warmup_steps - 1. A warm-up longer than the run is cut at
    total_steps (the ramp keeps its slope) rather than rejected, so shortened runs still work.
    """
    ramp = np.linspace(warmup_temp, final_temp, max(warmup_steps, 0))
    flat = np.full(max(total_steps - len(ramp), 0), final_temp, dtype=np.float64)
    return np.concatenate([ramp, flat])[:total_steps]
