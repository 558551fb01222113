"""Multi-crop wrapper for backbones with SOLIDER's semantic controller (MultiCropCondWrapper).

Like `MultiCropWrapper`, consecutive crops of one size share a backbone call, but every crop comes
with its own per-image lambda, and the last-stage feature maps are handed back as well: SOLIDER
clusters the teacher's maps into part labels and classifies the student's map token by token.
The backbone must offer `forward_stages(x, semantic_weight)` (the SOLIDER Swin). The attribute
names ``backbone`` / ``head`` match `MultiCropWrapper`'s, so checkpoints of both load into each other.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SemanticMultiCropWrapper(nn.Module):
    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def encode(self, crops: list[Tensor], lambdas: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """crops: (B_i, C, H, W) views; lambdas: one (B_i,) tensor of per-image lambdas per view.

        Returns, per view, the pooled features (B_i, D) and the last-stage map (B_i, D, h, w)."""
        if len(crops) != len(lambdas):
            raise ValueError(f"{len(crops)} crops but {len(lambdas)} lambda tensors")
        pooled, maps = [], []
        start = 0
        while start < len(crops):
            end = start + 1
            while end < len(crops) and crops[end].shape[-2:] == crops[start].shape[-2:]:
                end += 1
            group = crops[start:end]
            # Only the last map is needed; the other stage norms would run for nothing.
            feats, stage_maps = self.backbone.forward_stages(
                torch.cat(group), torch.cat(lambdas[start:end]), _last_only=True)
            sizes = [c.shape[0] for c in group]
            pooled.extend(feats.split(sizes))
            maps.extend(stage_maps[-1].split(sizes))
            start = end
        return pooled, maps

    def forward(self, crops: list[Tensor], lambdas: list[Tensor]) -> Tensor:
        """Head outputs of all views, (sum B_i, out_dim), crop-major."""
        pooled, _ = self.encode(crops, lambdas)
        return self.head(torch.cat(pooled))
