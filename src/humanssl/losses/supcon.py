"""Supervised contrastive loss between two modalities, as CLIP-ReID's stage 1 uses it.

For features a (B, D) with labels y_a and b (N, D) with labels y_b:
    logits = a b^T / temperature          (CLIP-ReID: temperature 1, NO L2 normalisation)
    loss   = - mean_i [ mean_{j: y_b[j] = y_a[i]} log softmax_j(logits_i) ]
i2t = supcon(image, text), t2i = supcon(text, image). Rows without any positive column are
left out of the mean (in a CLIP-ReID batch every row has one: text and image share labels).
"""

from __future__ import annotations

import torch
from torch import Tensor

from humanssl.errors import UserError


def supcon_loss(a: Tensor, b: Tensor, labels_a: Tensor, labels_b: Tensor | None = None,
                temperature: float = 1.0) -> Tensor:
    labels_b = labels_a if labels_b is None else labels_b
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1] or len(a) != len(labels_a) \
            or len(b) != len(labels_b):
        raise UserError(f"supcon loss: expected a (B, D), b (N, D) and their labels, got {tuple(a.shape)}, "
                        f"{tuple(b.shape)}, {tuple(labels_a.shape)}, {tuple(labels_b.shape)}")
    if temperature <= 0:
        raise UserError(f"supcon loss: temperature must be > 0, got {temperature}")
    log_prob = torch.log_softmax(a.float() @ b.float().T / temperature, dim=1)
    positive = (labels_a[:, None] == labels_b[None, :]).float()
    count = positive.sum(1)
    valid = count > 0
    per_row = (positive * log_prob).sum(1)[valid] / count[valid]
    return -per_row.mean()
