"""Batch-hard triplet loss (Hermans, Beyer, Leibe, "In Defense of the Triplet Loss", 2017).

For every anchor in the batch: the farthest sample of its own identity (hardest positive) and
the closest sample of another identity (hardest negative), by Euclidean distance. With
d_ap, d_an those two distances:

    soft margin (default, SOLIDER-REID):  log(1 + exp(d_ap - d_an))
    hard margin m (CLIP-ReID's option):   max(0, d_ap - d_an + m)

averaged over anchors. Anchors without a positive or without a negative in the batch (a PK
batch always has both) contribute nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from humanssl.errors import UserError


def euclidean_distances(x: Tensor) -> Tensor:
    """(B, B) Euclidean distances, clamped before the square root so the gradient stays finite."""
    sq = x.pow(2).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    return d2.clamp(min=1e-12).sqrt()


def hardest_pairs(dist: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(d_ap, d_an, valid) per anchor: its largest same-label and smallest other-label distance."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    neg = ~same
    inf = torch.finfo(dist.dtype).max
    d_ap = torch.where(pos, dist, torch.full_like(dist, -inf)).max(1).values
    d_an = torch.where(neg, dist, torch.full_like(dist, inf)).min(1).values
    return d_ap, d_an, pos.any(1) & neg.any(1)


def batch_hard_triplet(features: Tensor, labels: Tensor, margin: float | None = None) -> Tensor:
    """Mean batch-hard triplet loss; `margin=None` is the soft margin."""
    if features.dim() != 2 or labels.dim() != 1 or len(features) != len(labels):
        raise UserError(f"triplet loss: expected features (B, D) and labels (B,), got "
                        f"{tuple(features.shape)} and {tuple(labels.shape)}")
    if margin is not None and margin < 0:
        raise UserError(f"triplet loss: margin must be >= 0 or None (soft margin), got {margin}")
    d_ap, d_an, valid = hardest_pairs(euclidean_distances(features.float()), labels)
    if not bool(valid.any()):
        return features.sum() * 0.0  # keeps the graph connected; nothing to learn from this batch
    gap = (d_ap - d_an)[valid]
    if margin is None:
        return F.softplus(gap).mean()
    return F.relu(gap + margin).mean()


class TripletLoss(nn.Module):
    def __init__(self, margin: float | None = None):
        super().__init__()
        self.margin = margin

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        return batch_hard_triplet(features, labels, self.margin)

    def extra_repr(self) -> str:
        return "soft margin" if self.margin is None else f"margin={self.margin}"
