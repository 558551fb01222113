"""The two CLIP-ReID stage losses, as named terms (SVLL-ReID adds its NT-Xent terms beside them).

Stage 1 (prompts only), on image features v and text features t of one batch of labels y:
    i2t = SupCon(v, t),  t2i = SupCon(t, v)      temperature 1, no L2 normalisation
Stage 2 (image encoder), on the model's training outputs and the frozen text features T of
every training identity:
    id      = w_id  * [CE_ls(score) + CE_ls(score_proj)]               label smoothing eps
    triplet = w_tri * sum over (CLS block L-1, CLS, CLS proj) of batch-hard triplet (margin m)
    i2t     = w_i2t * CE_ls(f_proj T^T)                                 no temperature, no norm
CE_ls is cross-entropy against (1 - eps) one-hot + eps / num_classes, PyTorch's label smoothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from humanssl.errors import UserError
from humanssl.losses.supcon import supcon_loss
from humanssl.losses.triplet import batch_hard_triplet


def stage1_losses(image_features: Tensor, text_features: Tensor, labels: Tensor) -> dict[str, Tensor]:
    return {"i2t": supcon_loss(image_features, text_features, labels),
            "t2i": supcon_loss(text_features, image_features, labels)}


@dataclass
class Stage2Weights:
    """MODEL.ID_LOSS_WEIGHT, TRIPLET_LOSS_WEIGHT, I2T_LOSS_WEIGHT, SOLVER.MARGIN, and the label
    smoothing of MODEL.IF_LABELSMOOTH 'on'."""

    id: float = 0.25
    triplet: float = 1.0
    i2t: float = 1.0
    margin: float = 0.3
    label_smoothing: float = 0.1

    def __post_init__(self):
        if min(self.id, self.triplet, self.i2t) < 0 or self.id + self.triplet + self.i2t == 0:
            raise UserError(f"stage-2 loss weights id={self.id}, triplet={self.triplet}, i2t={self.i2t}: "
                            "expected weights >= 0, at least one of them > 0")
        if self.margin < 0:
            raise UserError(f"triplet margin {self.margin}: expected a margin >= 0")
        if not 0 <= self.label_smoothing < 1:
            raise UserError(f"label smoothing {self.label_smoothing}: expected a value in [0, 1)")


def stage2_losses(cls_scores: list[Tensor], features: list[Tensor], image_feature_proj: Tensor,
                  text_features: Tensor, labels: Tensor, w: Stage2Weights) -> dict[str, Tensor]:
    """Weighted terms; terms with weight 0 are left out. `text_features`: (num_ids, D), frozen."""
    eps = w.label_smoothing
    losses = {}
    if w.id > 0:
        losses["id"] = w.id * sum(F.cross_entropy(s.float(), labels, label_smoothing=eps) for s in cls_scores)
    if w.triplet > 0:
        losses["triplet"] = w.triplet * sum(batch_hard_triplet(f.float(), labels, w.margin) for f in features)
    if w.i2t > 0:
        logits = image_feature_proj.float() @ text_features.float().T
        losses["i2t"] = w.i2t * F.cross_entropy(logits, labels, label_smoothing=eps)
    return losses
