"""SAIP's cross-scale search (CSS) loss (notes/solider_saip.md §2.3).

The CSS decoder predicts, for each reference-image patch, a logit that the query person was
pasted there. The target is the pasted area's 0/1 mask at image resolution, nearest-down-sampled
to the patch grid (for 224 px and 16 px patches: pixel 16 i of every 16), as officially; the loss
is binary cross-entropy with logits averaged over patches and images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def css_loss(logits: Tensor, mask: Tensor) -> Tensor:
    """logits (B, h, w); mask (B, H, W) of 0/1 at image size. No gradient reaches the mask."""
    if logits.dim() != 3 or mask.dim() != 3 or logits.shape[0] != mask.shape[0]:
        raise ValueError(f"css_loss: expected logits (B, h, w) and mask (B, H, W), got {tuple(logits.shape)} "
                         f"and {tuple(mask.shape)}")
    target = F.interpolate(mask[:, None].float(), size=logits.shape[-2:], mode="nearest")[:, 0]
    with torch.autocast(device_type=logits.device.type, enabled=False):
        return F.binary_cross_entropy_with_logits(logits.float(), target.detach())
