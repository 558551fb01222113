"""SOLIDER: semantic controllable self-supervised learning (Chen et al., CVPR 2023).

DINO on a Swin with a "semantic controller" (lambda in {0, 1} per image), plus a part task for
the lambda = 1 images. Per step (notes/solider_saip.md §1.2, `main_solider.py`):
  1. teacher pass A on the global crops with lambda = 1 -> last-stage token maps;
  2. teacher pass B on the global crops with a random lambda in {0, 1} per image -> DINO targets;
  3. part labels: cluster pass A's tokens (foreground by token norm, images kept only with a
     foreground majority, `partnum` parts numbered top to bottom, background 0);
  4. one part id drawn for the batch; its pixels are zeroed in the (normalised) kept global crops;
  5. student pass on [masked kept crops] + all crops, every view of an image with that image's lambda;
  6. semantic loss: a part classifier on every token of the student's last-stage map, for the masked
     and the unmasked copy of each kept crop, target the label map for both (the hidden part keeps
     its label), per-token cross-entropy x the image's lambda, averaged over all those tokens;
  7. DINO loss on the unmasked views (centring, teacher temperature, EMA teacher, frozen last layer
     in epoch 0: all inherited from `DINO`); total = DINO + semantic_loss_weight x semantic.

Departures from the official code, each documented where it happens:
  * the part classifier is trained with the student (the official one is never given to the
    optimizer and stays at its random init); `part_head_trainable: false` restores that;
  * a batch in which no image passes the foreground test gives a zero semantic loss (the official
    code indexes with an empty float array there and would crash);
  * teacher pass B reuses pass A's features for the lambda = 1 images (the teacher has no drop
    path or dropout, so running them again would give the same numbers); only lambda = 0 images
    are encoded twice;
  * the student's head is not run on the masked crops (the official code computes those outputs and
    discards them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from humanssl.errors import UserError
from humanssl.methods.dino import DINO, DinoConfig
from humanssl.methods.part_labels import part_labels
from humanssl.models.dino_head import DINOHead
from humanssl.models.multicrop_semantic import SemanticMultiCropWrapper
from humanssl.models.swin import freeze_unreached_by_pooled


@dataclass
class SoliderConfig:
    partnum: int = 3  # official --partnum: body parts besides the background
    part_head_layers: int = 3  # official --parthead_nlayers
    part_head_hidden_dim: int = 2048  # the official part head uses DINOHead's defaults
    part_head_bottleneck_dim: int = 256
    semantic_loss_weight: float = 1.0  # official --semantic_loss
    # The official part classifier is never optimised (it is not in the optimizer): false
    # reproduces that; true (the default here) trains it with the student.
    part_head_trainable: bool = True
    kmeans_iters: int = 20  # Lloyd iterations of the part clustering (fixed: no data-dependent stop)
    kmeans_restarts: int = 3  # k-means++ seedings per image; the lowest inertia wins
    # One DINO centre per lambda (0 and 1) instead of the official single centre. Teacher and
    # student see the same per-image lambda, so targets that differ by lambda are predictable
    # from lambda alone; centring each group removes that offset (benchmarks/README.md, "SOLIDER's
    # lambda shortcut"). false (default) is the official loss.
    center_per_lambda: bool = False

    def __post_init__(self):
        if int(self.partnum) != self.partnum or self.partnum < 1:
            raise UserError(f"solider.partnum={self.partnum!r}: expected an integer >= 1")
        if self.part_head_layers < 1:
            raise UserError(f"solider.part_head_layers={self.part_head_layers!r}: expected >= 1")
        if self.semantic_loss_weight < 0:
            raise UserError(f"solider.semantic_loss_weight={self.semantic_loss_weight!r}: expected >= 0")
        if self.kmeans_iters < 1 or self.kmeans_restarts < 1:
            raise UserError("solider.kmeans_iters and solider.kmeans_restarts must be >= 1")


class SOLIDER(DINO):
    def __init__(self, make_backbone: Callable[[float], nn.Module], cfg: DinoConfig,
                 solider: SoliderConfig | None = None, drop_path: float = 0.1):
        solider = solider if solider is not None else SoliderConfig()
        super().__init__(make_backbone, cfg, drop_path, center_groups=2 if solider.center_per_lambda else 1)
        self.solider = solider
        self.kept_share: Tensor | None = None  # of the last training step's global crops, for monitors()
        backbone = self.student.backbone
        if not getattr(backbone, "has_controller", False) or not hasattr(backbone, "forward_stages"):
            raise UserError(
                f"SOLIDER needs a backbone with the semantic controller (swin_mini, swin_tiny, swin_small, "
                f"swin_base with semantic_weight >= 0); got {type(backbone).__name__}")
        # The same modules as DINO built, wrapped to take per-image lambdas and return the maps.
        self.student = SemanticMultiCropWrapper(self.student.backbone, self.student.head)
        self.teacher = SemanticMultiCropWrapper(self.teacher.backbone, self.teacher.head)
        freeze_unreached_by_pooled(self.student.backbone)
        self.part_head = DINOHead(backbone.embed_dim, solider.partnum + 1, hidden_dim=solider.part_head_hidden_dim,
                                  bottleneck_dim=solider.part_head_bottleneck_dim, nlayers=solider.part_head_layers,
                                  norm_last_layer=True)  # cosine logits in [-1, 1], no temperature
        if not solider.part_head_trainable:
            self.part_head.requires_grad_(False)

    def training_step(self, batch: dict, step: int) -> dict[str, Tensor]:
        crops = batch["image"]
        n_global = self.cfg.num_global_crops
        views = crops[:n_global]
        b, device = views[0].shape[0], views[0].device
        # Random draws on the CPU generator (seeded per step by the engine): same on every device.
        lam_cpu = torch.randint(0, 2, (b,)).float()
        part = int(torch.randint(1, self.solider.partnum + 1, ()))
        lam = lam_cpu.to(device)

        with torch.no_grad():
            teacher_out, teacher_map = self.teacher_pass(views, lam_cpu)
            s = self.solider
            labels, keep = part_labels(teacher_map, s.partnum, s.kmeans_iters, s.kmeans_restarts)

        # logged: a share near 0 means the foreground test drops the crops and the part task is off
        self.kept_share = keep.float().mean()
        kept = keep.nonzero().squeeze(1)  # indices into the crop-major global crops
        globals_ = torch.cat(views)
        lam_global = lam.repeat(n_global)
        kept_labels = labels[kept]
        visible = F.interpolate((kept_labels != part).unsqueeze(1).to(globals_.dtype),
                                size=globals_.shape[-2:], mode="nearest")
        masked = globals_[kept] * visible  # zero = the mean colour in the normalised image

        pooled, maps = self.student.encode([masked, *crops], [lam_global[kept], *([lam] * len(crops))])
        student_out = self.student.head(torch.cat(pooled[1:]))
        groups = lam_cpu.long() if self.solider.center_per_lambda else None
        losses = {"dino": self.loss(student_out, teacher_out, float(self.teacher_temp[step]), groups)}

        unmasked = torch.cat(maps[1:1 + n_global])[kept]
        feats = torch.cat([maps[0], unmasked])  # (2 * kept, D, h, w)
        tokens = feats.flatten(2).transpose(1, 2).reshape(-1, feats.shape[1])
        targets = kept_labels.flatten().repeat(2)
        weights = lam_global[kept].repeat(2).repeat_interleave(feats.shape[2] * feats.shape[3])
        ce = F.cross_entropy(self.part_head(tokens).float(), targets, reduction="none")
        # sum / count rather than mean: with no kept image this is 0 and still part of the graph,
        # so every process of a DDP run gets (zero) gradients for the part head.
        semantic = (weights * ce).sum() / max(ce.numel(), 1)
        losses["semantic"] = self.solider.semantic_loss_weight * semantic
        return losses

    def monitors(self) -> dict[str, Tensor]:
        return {} if self.kept_share is None else {"part_kept": self.kept_share}

    @torch.no_grad()
    def teacher_pass(self, views: list[Tensor], lam: Tensor) -> tuple[Tensor, Tensor]:
        """DINO targets at the per-image lambda, and the lambda = 1 last-stage maps (crop-major).

        `lam` may stay on the CPU: choosing the lambda = 0 images then needs no device sync."""
        device = views[0].device
        pooled, maps = self.teacher.encode(views, [torch.ones(len(lam), device=device)] * len(views))
        zero = (lam == 0).nonzero().squeeze(1).to(device)
        if zero.numel():
            lam_zero = torch.zeros(zero.numel(), device=device)
            pooled_zero, _ = self.teacher.encode([v[zero] for v in views], [lam_zero] * len(views))
            pooled = [p.index_copy(0, zero, pz.to(p.dtype)) for p, pz in zip(pooled, pooled_zero)]
        return self.teacher.head(torch.cat(pooled)), torch.cat(maps)
