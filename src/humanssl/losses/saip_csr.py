"""SAIP's cross-scale reconstruction (CSR) loss: MAE's pixel loss at another scale (notes §2.3).

The target is the rescaled view itself, cut into patches (row, column, channel order inside a
patch) and, with `norm_pix` (the official `--norm_pix_loss`), normalised per patch by its mean
and unbiased variance (eps 1e-6). The loss is the per-patch mean squared error averaged over the
patches `loss_mask` marks (1 = scored).

Official quirk, kept: `loss_mask` is the anchor-grid mask up-sampled to the view's patch grid,
which usually marks a few more patches as visible than the encoder was given (about 54 of 200
against the 50 encoded at 320x160, see `SAIPViT.random_masking_with_ref_anchor`). Those few
patches are neither seen by the encoder nor scored.
"""

from __future__ import annotations

import torch
from torch import Tensor


def patchify(imgs: Tensor, patch_size: tuple[int, int]) -> Tensor:
    """(B, C, H, W) -> (B, h w, ph pw C). Borders narrower than a patch are dropped, as the
    encoder's strided conv drops them (the official code asserts they do not exist)."""
    ph, pw = patch_size
    b, c, height, width = imgs.shape
    h, w = height // ph, width // pw
    x = imgs[:, :, :h * ph, :w * pw].reshape(b, c, h, ph, w, pw)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(b, h * w, ph * pw * c)


def csr_loss(pred: Tensor, imgs: Tensor, loss_mask: Tensor, patch_size: tuple[int, int],
             norm_pix: bool = True, eps: float = 1e-6) -> Tensor:
    """pred (B, L, ph pw C) from the decoder, imgs (B, C, H, W) the view that was masked,
    loss_mask (B, L) 1 where a patch is scored. No gradient reaches the target."""
    target = patchify(imgs, patch_size).detach().float()
    if pred.shape != target.shape or loss_mask.shape != target.shape[:2]:
        raise ValueError(f"csr_loss: prediction {tuple(pred.shape)}, target {tuple(target.shape)} and mask "
                         f"{tuple(loss_mask.shape)} do not match")
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + eps).sqrt()
    per_patch = ((pred.float() - target) ** 2).mean(dim=-1)
    mask = loss_mask.float()
    # clamp: a (degenerate) mask with nothing to score gives 0, not NaN
    return (per_patch * mask).sum() / mask.sum().clamp(min=1.0)
