"""BYOL's regression loss (Grill et al., NeurIPS 2020) and SelfGait's variant of it.

BYOL: the online prediction of one view regresses the target projection of the other view,
    loss = (2 - 2 cos(p_1, z_2)) + (2 - 2 cos(p_2, z_1)),  cosine over the feature vector.

SelfGait (official `trainer.py`) predicts and projects (n, 31 strips, 128 channels) tensors and
takes the cosine ALONG THE STRIP AXIS: one cosine per (sample, channel) between the 31-vectors
of strip values, then 1 - cos, averaged over samples and channels, summed over both directions.
`dim` selects the axis the cosine runs over: 1 for SelfGait's strips, -1 for the per-strip
feature cosine of reference BYOL. The constant and the factor 2 only rescale the loss.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def regression_loss(prediction: Tensor, target: Tensor, dim: int = -1, eps: float = 1e-6) -> Tensor:
    """1 - cos(prediction, target) along `dim`, unreduced; the target takes no gradient."""
    return 1.0 - F.cosine_similarity(prediction, target.detach(), dim=dim, eps=eps)


def symmetric_byol_loss(pred_1: Tensor, pred_2: Tensor, target_1: Tensor, target_2: Tensor,
                        dim: int = -1, eps: float = 1e-6) -> Tensor:
    """pred_v / target_v come from view v; each prediction regresses the other view's target.

    Returns mean(1 - cos(pred_1, target_2)) + mean(1 - cos(pred_2, target_1)).
    """
    if pred_1.shape != target_2.shape or pred_2.shape != target_1.shape:
        raise ValueError(f"BYOL loss: predictions {tuple(pred_1.shape)}/{tuple(pred_2.shape)} and targets "
                         f"{tuple(target_2.shape)}/{tuple(target_1.shape)} must have the same shapes")
    return (regression_loss(pred_1, target_2, dim, eps).mean()
            + regression_loss(pred_2, target_1, dim, eps).mean())
