"""DINO: self-distillation with no labels (Caron et al., ICCV 2021), as SOLIDER pretrains it.

Per step:
  1. the teacher (an EMA of the student, no gradients) encodes the 2 global crops;
  2. the student encodes all crops (2 global + N local), crops of one size in one call;
  3. loss: cross-entropy from the centred, sharpened teacher distribution of each global crop
     to the student distribution of every *other* crop (temperatures 0.04 / 0.1);
  4. after backward: the student's last head layer gets no update during the first epoch(s);
  5. after the optimizer step: teacher <- m * teacher + (1 - m) * student, m cosine 0.996 -> 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from humanssl.engine.schedules import cosine_schedule
from humanssl.losses.dino import DINOLoss, teacher_temperature_schedule
from humanssl.methods.base import Method
from humanssl.models.dino_head import DINOHead
from humanssl.models.multicrop import MultiCropWrapper


@dataclass
class DinoConfig:
    out_dim: int = 65536
    hidden_dim: int = 2048
    bottleneck_dim: int = 256
    head_layers: int = 3
    use_bn_in_head: bool = False
    norm_last_layer: bool = True
    student_temp: float = 0.1
    teacher_temp: float = 0.04
    warmup_teacher_temp: float = 0.04
    warmup_teacher_temp_epochs: float = 0.0
    center_momentum: float = 0.9
    momentum_teacher: float = 0.996  # start of the cosine EMA schedule, which ends at 1
    freeze_last_layer_epochs: float = 1.0
    num_global_crops: int = 2


class DINO(Method):
    def __init__(self, make_backbone: Callable[[float], nn.Module], cfg: DinoConfig, drop_path: float = 0.1,
                 center_groups: int = 1):
        """`make_backbone(drop_path)` builds one backbone; student and teacher each get their own.
        `center_groups`: DINO centres the loss keeps (SOLIDER: one per lambda as an option)."""
        super().__init__()
        self.cfg = cfg
        student_backbone = make_backbone(drop_path)
        teacher_backbone = make_backbone(0.0)
        self.student = MultiCropWrapper(student_backbone, self.make_head(student_backbone.embed_dim))
        self.teacher = MultiCropWrapper(teacher_backbone, self.make_head(teacher_backbone.embed_dim))
        self.teacher.load_state_dict(self.student.state_dict())
        self.teacher.requires_grad_(False)
        self.loss = DINOLoss(cfg.out_dim, cfg.num_global_crops, cfg.student_temp, cfg.center_momentum,
                             center_groups=center_groups)
        self.configure(1, 1)

    def make_head(self, in_dim: int) -> DINOHead:
        c = self.cfg
        return DINOHead(in_dim, c.out_dim, hidden_dim=c.hidden_dim, bottleneck_dim=c.bottleneck_dim,
                        nlayers=c.head_layers, use_bn=c.use_bn_in_head, norm_last_layer=c.norm_last_layer)

    def configure(self, total_steps: int, steps_per_epoch: int) -> None:
        c = self.cfg
        self.momentum = cosine_schedule(c.momentum_teacher, 1.0, total_steps)
        self.teacher_temp = teacher_temperature_schedule(
            c.warmup_teacher_temp, c.teacher_temp, round(c.warmup_teacher_temp_epochs * steps_per_epoch), total_steps)
        self.freeze_last_layer_steps = round(c.freeze_last_layer_epochs * steps_per_epoch)

    def training_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        crops = batch["image"]
        n_global = self.cfg.num_global_crops
        with torch.no_grad():
            teacher_out = self.teacher(crops[:n_global])
        student_out = self.student(crops)
        return {"dino": self.loss(student_out, teacher_out, float(self.teacher_temp[step]))}

    def after_backward(self, step: int) -> None:
        if step < self.freeze_last_layer_steps:
            for p in self.student.head.last_layer.parameters():
                p.grad = None

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        m = float(self.momentum[step])
        teacher = [p for p in self.teacher.parameters()]
        student = [p.detach() for p in self.student.parameters()]
        torch._foreach_mul_(teacher, m)
        torch._foreach_add_(teacher, student, alpha=1.0 - m)

    def downstream_backbone(self) -> nn.Module:
        return self.teacher.backbone
