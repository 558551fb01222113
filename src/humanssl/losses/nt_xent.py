"""NT-Xent (SimCLR) loss between two views, as SVLL-ReID's SIMCLRLoss computes it (tau 0.1).

With z1, z2 (B, D) L2-normalised and s(x, y) = x y^T / tau:
    loss_1 = CE([s(z1, z2) ; s(z1, z1) - 1e9 I], target = row index)
    loss_2 = CE([s(z2, z1) ; s(z2, z2) - 1e9 I], target = row index)
    loss   = (loss_1 + loss_2) / 2
i.e. each embedding's positive is the other view of the same sample; the negatives are the
other samples of both views. Single process: no gathering across ranks (world size 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from humanssl.errors import UserError


def nt_xent_loss(z1: Tensor, z2: Tensor, tau: float = 0.1) -> Tensor:
    if z1.dim() != 2 or z1.shape != z2.shape:
        raise UserError(f"nt-xent loss: expected two (B, D) views of one shape, got {tuple(z1.shape)} "
                        f"and {tuple(z2.shape)}")
    if tau <= 0:
        raise UserError(f"nt-xent loss: tau must be > 0, got {tau}")
    z1, z2 = F.normalize(z1.float(), dim=-1), F.normalize(z2.float(), dim=-1)
    n = len(z1)
    self_mask = torch.eye(n, device=z1.device, dtype=z1.dtype) * 1e9
    target = torch.arange(n, device=z1.device)
    logits_1 = torch.cat([z1 @ z2.T / tau, z1 @ z1.T / tau - self_mask], dim=1)
    logits_2 = torch.cat([z2 @ z1.T / tau, z2 @ z2.T / tau - self_mask], dim=1)
    return (F.cross_entropy(logits_1, target) + F.cross_entropy(logits_2, target)) / 2
