"""Multi-label classification on a (pretrained) trunk: the linear probe, full fine-tuning and
semi-supervised fine-tuning of SS-PRL's downstream protocol (notes/ssprl_selfgait_svll.md §1.6).

Per step, on a batch of images with 0/1 labels over C classes:
  1. f = trunk(images): the globally pooled feature (2048-d for a ResNet-50);
  2. logits = W f + b, one BN-free linear layer (W ~ N(0, 0.01), b = 0.1, as the official probe);
  3. loss = BCE-with-logits summed over classes, averaged over the batch (the official reduction);
     VOC's "difficult" pairs (neither positive nor negative) are left out of the sum.
Modes:
  * linear: the trunk is frozen, in eval mode (its BN statistics never move) and run without
    gradients; only W, b train (the linear-probe protocol).
  * full: trunk and head train; the trunk at `trunk_lr_scale` x the lr (the official
    semi-supervised recipe: 0.001 trunk / 0.1 head, i.e. 0.01). The official semi-supervised code
    runs the trunk under torch.no_grad() by accident, so it never fine-tunes it; here it trains.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from humanssl.engine.optim import decay_groups
from humanssl.errors import UserError
from humanssl.methods.base import Method

MODES = ("linear", "full")


def pooled(out) -> torch.Tensor:
    """Backbones that also return feature maps give (pooled, ...): keep the pooled part."""
    return out[0] if isinstance(out, (tuple, list)) else out


def multilabel_bce(logits: torch.Tensor, labels: torch.Tensor, ignore: torch.Tensor | None = None) -> torch.Tensor:
    """BCE with logits, summed over classes and averaged over images; `ignore` (bool, like labels)
    drops those pairs from the sum."""
    loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
    if ignore is not None:
        loss = loss.masked_fill(ignore.bool(), 0.0)
    return loss.sum() / logits.shape[0]


class MultilabelFinetune(Method):
    def __init__(self, backbone: nn.Module, num_classes: int, *, mode: Literal["linear", "full"] = "linear",
                 trunk_lr_scale: float = 1.0):
        super().__init__()
        if mode not in MODES:
            raise UserError(f"model.mode={mode!r}: expected one of {', '.join(MODES)}")
        if num_classes < 1:
            raise UserError(f"multi-label fine-tuning needs at least one class, got {num_classes}")
        if trunk_lr_scale <= 0:
            raise UserError(f"model.trunk_lr_scale={trunk_lr_scale}: expected a factor > 0")
        self.backbone = backbone
        self.head = nn.Linear(backbone.embed_dim, num_classes)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.constant_(self.head.bias, 0.1)
        self.mode, self.trunk_lr_scale = mode, trunk_lr_scale
        if mode == "linear":
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.mode == "linear":  # a probe reads a fixed trunk: BN statistics stay as loaded
            self.backbone.eval()
        return self

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if self.mode == "linear":
            with torch.no_grad():
                return pooled(self.backbone(images)).float()
        return pooled(self.backbone(images))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))

    def training_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        logits = self.logits(batch["image"])
        return {"bce": multilabel_bce(logits, batch["labels"], batch.get("difficult"))}

    def param_groups(self) -> list[dict]:
        groups = decay_groups(self.head.named_parameters())
        if self.mode == "full":
            trunk = decay_groups(self.backbone.named_parameters())
            for g in trunk:
                g["name"], g["lr_scale"] = "trunk_" + g["name"], self.trunk_lr_scale
            groups += trunk
        return groups

    def downstream_backbone(self) -> nn.Module:
        return self.backbone
