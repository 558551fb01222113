"""DINO's self-distillation loss with a centred, sharpened teacher (Caron et al., 2021).

The teacher's softmax is centred (an EMA of its mean output, shared by all processes) and
sharpened by a low temperature; the student matches it by cross-entropy on every
(teacher view, student view) pair that are not the same view.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from humanssl.engine.distributed import all_reduce_sum, world_size


class DINOLoss(nn.Module):
    def __init__(
        self,
        out_dim: int,
        num_global_crops: int = 2,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
    ) -> None:
        super().__init__()
        self.num_global_crops = num_global_crops
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        # Persistent: the centre is training state and must survive a resume.
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(self, student_out: Tensor, teacher_out: Tensor, teacher_temp: float) -> Tensor:
        """student_out (num_crops*B, D), teacher_out (num_global_crops*B, D), both crop-major."""
        ng = self.num_global_crops
        if teacher_out.shape[0] % ng or student_out.shape[0] % (teacher_out.shape[0] // ng):
            raise ValueError(
                f"DINOLoss: teacher rows {teacher_out.shape[0]} must be {ng} x batch and student "
                f"rows {student_out.shape[0]} a multiple of that batch"
            )
        batch = teacher_out.shape[0] // ng
        n_crops = student_out.shape[0] // batch
        # Pairs (i, j) with i != j; teacher crop i is student crop i, so drop those.
        n_pairs = ng * n_crops - min(ng, n_crops)
        if n_pairs == 0:
            raise ValueError("DINOLoss needs at least one pair of different views")

        # Under fp16/bf16 autocast the logits over 65k prototypes lose too much precision, and the
        # einsum below would be autocast too; so the whole loss is computed in float32.
        with torch.autocast(device_type=student_out.device.type, enabled=False):
            center = self.center.to(device=teacher_out.device, dtype=torch.float32)
            q = F.softmax((teacher_out.detach().float() - center) / teacher_temp, dim=-1)
            log_p = F.log_softmax(student_out.float() / self.student_temp, dim=-1)
            q = q.reshape(ng, batch, -1)
            log_p = log_p.reshape(n_crops, batch, -1)
            # ce[i, j] = mean over images of the cross-entropy between teacher view i and
            # student view j: one contraction instead of a Python loop over pairs.
            ce = -torch.einsum("ibd,jbd->ij", q, log_p) / batch
            same_view = torch.eye(ng, n_crops, dtype=torch.bool, device=ce.device)
            loss = ce.masked_fill(same_view, 0.0).sum() / n_pairs

        self.update_center(teacher_out)
        return loss

    @torch.no_grad()
    def update_center(self, teacher_out: Tensor) -> None:
        """EMA of the teacher's mean output over the global batch (all processes)."""
        batch_sum = teacher_out.detach().float().sum(dim=0, keepdim=True)
        all_reduce_sum(batch_sum)
        batch_mean = batch_sum / (teacher_out.shape[0] * world_size())
        m = self.center_momentum
        new = self.center.float() * m + batch_mean.to(self.center.device) * (1.0 - m)
        self.center.copy_(new)


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
