"""Supervised re-id fine-tuning of a (pretrained) backbone: the BNNeck baseline as SOLIDER-REID
runs it (Luo et al., "Bag of Tricks and a Strong Baseline for Deep Person Re-ID", 2019).

Per step, on a P x K batch of labelled images:
  1. f = backbone(images): the pooled feature (the test feature, "before" the neck);
  2. BNNeck: g = BatchNorm1d(f), its bias frozen at 0, so g is only re-scaled and centred;
  3. logits = W g with a bias-free linear classifier (one row per training identity);
  4. loss = w_ce * CE(logits, labels)  (label smoothing 0.1 when switched on; off in SOLIDER-REID)
          + w_tri * batch-hard triplet(f, labels)  (soft margin, or a hard margin m).
The triplet works on f and the cross-entropy on g: the BN between them lets the two losses
shape the same feature in their own geometry (Euclidean vs. angular).
Optimiser groups: weight decay on weights only, biases at twice the base lr (the re-id habit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from humanssl.engine.optim import decay_groups
from humanssl.errors import UserError
from humanssl.losses.triplet import batch_hard_triplet
from humanssl.methods.base import Method


@dataclass
class ReidLossConfig:
    ce_weight: float = 1.0
    label_smoothing: bool = False  # CLIP-ReID's switch; SOLIDER-REID trains without
    smoothing_epsilon: float = 0.1
    triplet_weight: float = 1.0
    triplet_margin: float | None = None  # None: soft margin (SOLIDER-REID); a number: hard margin (e.g. 0.3)

    def __post_init__(self):
        if self.ce_weight < 0 or self.triplet_weight < 0 or self.ce_weight + self.triplet_weight == 0:
            raise UserError(f"loss.ce_weight={self.ce_weight}, loss.triplet_weight={self.triplet_weight}: "
                            "expected weights >= 0, at least one of them > 0")
        if not 0 <= self.smoothing_epsilon < 1:
            raise UserError(f"loss.smoothing_epsilon={self.smoothing_epsilon}: expected a value in [0, 1)")
        if self.triplet_margin is not None and self.triplet_margin < 0:
            raise UserError(f"loss.triplet_margin={self.triplet_margin}: expected a margin >= 0, or null for soft margin")


def pooled(out) -> torch.Tensor:
    """Backbones that also return feature maps give (pooled, ...): keep the pooled part."""
    return out[0] if isinstance(out, (tuple, list)) else out


class BNNeck(nn.Module):
    """BatchNorm1d whose shift is fixed at zero (the bias never trains)."""

    def __init__(self, dim: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)


class ReidFinetune(Method):
    def __init__(self, backbone: nn.Module, num_classes: int, loss: ReidLossConfig, *,
                 neck: Literal["bnneck", "none"] = "bnneck", pid_of_label: list[int] | None = None,
                 freeze: list[str] = (), bias_lr_scale: float = 2.0, decay_norms_and_biases: bool = False):
        super().__init__()
        if num_classes < 2:
            raise UserError(f"re-id fine-tuning needs at least 2 training identities, got {num_classes}")
        if neck not in ("bnneck", "none"):
            raise UserError(f"model.neck={neck!r}: expected 'bnneck' or 'none'")
        self.backbone = backbone
        dim = backbone.embed_dim
        self.neck = BNNeck(dim) if neck == "bnneck" else nn.Identity()
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)
        # Classifier row i belongs to dataset identity pid_of_label[i]; saved with every checkpoint.
        ids = list(range(num_classes)) if pid_of_label is None else [int(p) for p in pid_of_label]
        if len(ids) != num_classes:
            raise UserError(f"pid_of_label has {len(ids)} entries for {num_classes} classes")
        self.register_buffer("pid_of_label", torch.tensor(ids, dtype=torch.int64))
        self.loss_cfg = loss
        self.bias_lr_scale = bias_lr_scale
        self.decay_norms_and_biases = decay_norms_and_biases
        self.freeze(freeze)

    def freeze(self, prefixes) -> None:
        """Stop training backbone parameters whose names start with one of `prefixes`
        (SOLIDER-REID freezes the Swin's `semantic_embed` layers: the semantic weight is fixed)."""
        for prefix in prefixes:
            hit = [p for name, p in self.backbone.named_parameters() if name.startswith(prefix)]
            if not hit:
                names = sorted({n.split(".")[0] for n, _ in self.backbone.named_parameters()})
                raise UserError(f"model.freeze: no backbone parameter starts with {prefix!r}; "
                                f"top-level parts are: {', '.join(names)}")
            for p in hit:
                p.requires_grad_(False)

    def training_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        images, labels = batch["image"], batch["pid"]
        feat = pooled(self.backbone(images))
        logits = self.classifier(self.neck(feat))
        c = self.loss_cfg
        losses = {}
        if c.ce_weight > 0:
            eps = c.smoothing_epsilon if c.label_smoothing else 0.0
            losses["ce"] = c.ce_weight * F.cross_entropy(logits.float(), labels, label_smoothing=eps)
        if c.triplet_weight > 0:
            losses["triplet"] = c.triplet_weight * batch_hard_triplet(feat.float(), labels, c.triplet_margin)
        return losses

    def param_groups(self) -> list[dict]:
        groups = decay_groups(self.named_parameters(), bias_lr_scale=self.bias_lr_scale)
        if self.decay_norms_and_biases:  # SOLIDER-REID's optimiser decays every tensor
            for g in groups:
                g["apply_weight_decay"] = True
        return groups

    def downstream_backbone(self) -> nn.Module:
        return self.backbone
