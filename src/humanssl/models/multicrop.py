"""Run a backbone + head over a list of multi-crop views (DINO's MultiCropWrapper).

Consecutive crops of the same size are concatenated into one backbone call (global crops in
one call, local crops in another), which is what makes multi-crop affordable; the head then
runs once over all features. Attribute names ``backbone`` / ``head`` match the official
checkpoints' ``backbone.`` / ``head.`` prefixes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MultiCropWrapper(nn.Module):
    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(
        self, crops: list[Tensor] | Tensor, return_backbone_feats: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """crops: list of (B, C, H, W) views. Returns (num_crops*B, out_dim), crop-major,
        and with ``return_backbone_feats`` also the (num_crops*B, embed_dim) backbone features."""
        if isinstance(crops, Tensor):
            crops = [crops]
        feats = []
        start = 0
        while start < len(crops):
            end = start + 1
            # Only consecutive runs are grouped, so the output keeps the input's crop order.
            while end < len(crops) and crops[end].shape[-2:] == crops[start].shape[-2:]:
                end += 1
            out = self.backbone(torch.cat(crops[start:end]))
            # Backbones that also return feature maps give (pooled, ...): keep the pooled part.
            feats.append(out[0] if isinstance(out, (tuple, list)) else out)
            start = end
        feats = torch.cat(feats)
        head_out = self.head(feats)
        return (head_out, feats) if return_backbone_feats else head_out
