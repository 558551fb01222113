"""GaitSet's triplet loss, applied to every horizontal part on its own (Chao et al., 2019).

Input features are part-major, (p parts, m samples, d); every part has its own m x m Euclidean
distance matrix d = sqrt(relu(|a|^2 + |b|^2 - 2ab)). Positives of an anchor are the samples
with its label, the anchor itself included (distance 0); negatives all others.

* "full" (batch all, GaitSet's and SelfGait's default): every (anchor, positive, negative)
  gives relu(margin + d_ap - d_an); a part's loss is the sum of these divided by how many of
  them are non-zero (0 when none is).
* "hard" (batch hard): relu(margin + max_pos d_ap - min_neg d_an), averaged over anchors.

The loss is the mean over parts. The official code needs every anchor to have the same number
of positives (it reshapes masked selections); here unequal numbers work too, with the same
result on balanced P x M batches.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PartTripletStats(NamedTuple):
    full_loss_metric_mean: Tensor  # (p,) batch-all loss per part
    hard_loss_metric_mean: Tensor  # (p,) batch-hard loss per part
    mean_dist: Tensor  # (p,) mean pairwise distance per part
    full_loss_num: Tensor  # (p,) number of non-zero batch-all terms per part


def part_distances(feature: Tensor) -> Tensor:
    """(p, m, d) -> (p, m, m) Euclidean distances, computed as the official code does."""
    sq = feature.pow(2).sum(-1)
    d2 = sq.unsqueeze(2) + sq.unsqueeze(1) - 2.0 * feature.matmul(feature.transpose(1, 2))
    return F.relu(d2).sqrt()


def _first_k(mask: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Indices of the first k True entries of each row (padded) and which of them are real."""
    order = torch.argsort((~mask).to(torch.uint8), dim=-1, stable=True)[..., :k]
    valid = torch.arange(k, device=mask.device) < mask.sum(-1, keepdim=True)
    return order, valid


def part_triplet_stats(feature: Tensor, label: Tensor, margin: float = 0.2) -> PartTripletStats:
    """feature (p, m, d); label (m,) or (p, m)."""
    if feature.ndim != 3:
        raise ValueError(f"part triplet loss expects features (parts, samples, dim); got {tuple(feature.shape)}")
    p, m, _ = feature.shape
    label = torch.as_tensor(label, device=feature.device)
    if label.ndim == 1 and label.shape[0] == m:
        label = label.unsqueeze(0).expand(p, m)
    if label.shape != (p, m):
        raise ValueError(f"labels {tuple(label.shape)} do not match features {tuple(feature.shape)}")

    dist = part_distances(feature)
    same = label.unsqueeze(2) == label.unsqueeze(1)  # (p, m, m), diagonal included
    diff = ~same

    pos_max = dist.masked_fill(diff, float("-inf")).amax(-1)
    neg_min = dist.masked_fill(same, float("inf")).amin(-1)
    hard = F.relu(margin + pos_max - neg_min).mean(-1)

    # Batch all without an m^3 tensor: gather each anchor's positives and negatives into
    # (padded) lists, as long as the largest count, and mask the padding.
    n_pos = int(same.sum(-1).max())
    n_neg = int(diff.sum(-1).max())
    pos_idx, pos_ok = _first_k(same, n_pos)
    neg_idx, neg_ok = _first_k(diff, n_neg)
    d_ap = dist.gather(-1, pos_idx).unsqueeze(-1)  # (p, m, P, 1)
    d_an = dist.gather(-1, neg_idx).unsqueeze(-2)  # (p, m, 1, N)
    terms = F.relu(margin + d_ap - d_an) * (pos_ok.unsqueeze(-1) & neg_ok.unsqueeze(-2))
    terms = terms.reshape(p, -1)
    full_sum = terms.sum(1)
    full_num = (terms != 0).sum(1).to(feature.dtype)
    full = torch.where(full_num > 0, full_sum / full_num.clamp(min=1), torch.zeros_like(full_sum))

    return PartTripletStats(full, hard, dist.mean((1, 2)), full_num)


class PartTripletLoss(nn.Module):
    """Mean over parts of GaitSet's per-part triplet loss; `hard_or_full` as the official config."""

    def __init__(self, margin: float = 0.2, hard_or_full: str = "full") -> None:
        super().__init__()
        if hard_or_full not in ("full", "hard"):
            raise ValueError(f"hard_or_full must be 'full' or 'hard'; got {hard_or_full!r}")
        self.margin = margin
        self.hard_or_full = hard_or_full

    def forward(self, feature: Tensor, label: Tensor) -> Tensor:
        """feature (p, m, d) part-major (transpose an (m, p, d) embedding first); label (m,) or (p, m)."""
        stats = part_triplet_stats(feature, label, self.margin)
        per_part = stats.full_loss_metric_mean if self.hard_or_full == "full" else stats.hard_loss_metric_mean
        return per_part.mean()
