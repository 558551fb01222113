"""SAIP: scale-aware image pre-training of a lightweight ViT (Wang et al., arXiv 2503.08201),
as the public code trains it (notes/solider_saip.md §2). Per step, with the views of
`data/saip_views.py`:

  1. teacher (EMA of the student, no gradients): intermediate tokens of the multi-person
     reference image; final class tokens and last-block attention of the 2 global views;
  2. CSM, cross-scale matching: student class tokens of the 2 global views, the first N-1 local
     crops, and the last local crop and the region image each rescaled by a factor drawn from
     {0.75, 0.875, 1.125, 1.25}; DINO loss against the teacher's global views (`csm_rep`), and
     for the two same-view pairs attention distillation (`csm_att`);
  3. CSR, cross-scale reconstruction: global view 2 up-scaled x1.25, 75 % masked on the anchor
     grid, encoded to block 6; the decoder sees its tokens plus the class token of the unmasked
     global view 1 and predicts the removed patches' normalised pixels (`csr`);
  4. CSS, cross-scale search: from the student tokens of global view 1 (pasted at half size)
     and of the rescaled last local crop, the CSS decoder finds where each was pasted in the
     teacher's reference map (`css_inst`, `css_roi`);
  5. total = the five terms, each times its weight (all 1 officially); the engine's AdamW with
     the recipe's betas (0.9, 0.95), constant weight decay 0.05 (none on biases and 1-D tensors:
     the default `param_groups`), lr = blr x batch / 256, warm-up then cosine to 0
     (`configs/saip_vit_tiny.yaml`); after each optimizer step the teacher follows the student
     (m cosine 0.996 -> 1).

Official quirks behind switches (default: corrected):
  * `momentum_index: epoch_step` indexes the momentum schedule by the step within the epoch, so
    m never leaves ~0.996 (official); `global` runs the cosine over the whole run.
  * `ema_every_micro_batch: true` moves the teacher after every micro-batch, also while
    gradients accumulate (official); false moves it once per optimizer step.
  * kept by default, as the official token-count quirk: the CSR loss covers the patches the
    up-sampled anchor mask removes (about 146 of 200 at 320x160), while the encoder saw only 50, so ~4
    patches are neither seen nor scored (`losses/saip_csr.py`); `csr_loss_mask: unseen` scores them.
Departure: the teacher holds only its backbone and CSM head (see `models/saip_network.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from humanssl.engine.schedules import cosine_schedule
from humanssl.errors import UserError
from humanssl.losses.dino import DINOLoss, teacher_temperature_schedule
from humanssl.losses.saip_csm import attention_distillation
from humanssl.losses.saip_csr import csr_loss
from humanssl.losses.saip_css import css_loss
from humanssl.methods.base import Method
from humanssl.models.saip_decoders import CSMDecoder, CSRDecoder, CSSDecoder, token_map
from humanssl.models.saip_network import SAIPNetwork, saip_backbone

LOSSES = ("csm_rep", "csm_att", "csr", "css_inst", "css_roi")


@dataclass
class SaipConfig:
    """Official csl_vit_tiny_patch16 / main_pretrain.py values."""

    # CSM head (a DINO head) and loss
    out_dim: int = 65536  # --csm_out_dim
    hidden_dim: int = 2048
    bottleneck_dim: int = 256
    head_layers: int = 3
    student_temp: float = 0.1
    teacher_temp: float = 0.04
    warmup_teacher_temp: float = 0.07  # unused officially: the warm-up lasts 0 epochs
    warmup_teacher_temp_epochs: float = 0.0
    center_momentum: float = 0.9
    rescale_factors: list[float] = field(default_factory=lambda: [0.75, 0.875, 1.125, 1.25])
    attention_eps: float = 1e-10
    # CSR
    mask_ratio: float = 0.75
    csr_scale: float = 1.25
    norm_pix_loss: bool = True  # the README command passes --norm_pix_loss
    csr_loss_mask: Literal["anchor", "unseen"] = "anchor"  # anchor: official (see the module docstring)
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    # CSS
    css_hidden_dim: int = 512
    css_num_heads: int = 16  # officially the same argument as decoder_num_heads
    css_self_attention_depth: int = 2
    css_mask_head_depth: int = 4
    # total = sum of weight x term
    csm_rep_weight: float = 1.0
    csm_att_weight: float = 1.0
    csr_weight: float = 1.0
    css_inst_weight: float = 1.0
    css_roi_weight: float = 1.0
    # teacher
    momentum_teacher: float = 0.996  # start of the cosine EMA schedule, which ends at 1
    momentum_index: Literal["global", "epoch_step"] = "global"  # epoch_step: official quirk
    ema_every_micro_batch: bool = False  # true: official (EMA also between accumulated micro-batches)
    pos_resample: Literal["sequence", "grid"] = "sequence"  # sequence: the official 1-D resampling
    # the ViT's init: "official" (Xavier-uniform Linear weights, the position table left at its
    # U[0, 1) draw) or "dino" (DINO's ViT: truncated normal 0.02), with which the mini ViT learns
    # on the CPU (benchmarks/README.md, "SAIP vs DINO under query rescaling")
    vit_init: Literal["official", "dino"] = "official"

    def __post_init__(self):
        def fail(name, expected):
            raise UserError(f"saip.{name}={getattr(self, name)!r}: expected {expected}")

        if not 0 < self.mask_ratio < 1:
            fail("mask_ratio", "a fraction in (0, 1)")
        if self.csr_scale <= 0:
            fail("csr_scale", "a positive factor")
        if not self.rescale_factors or min(self.rescale_factors) <= 0:
            fail("rescale_factors", "a non-empty list of positive factors")
        for f in fields(self):
            if f.name.endswith("_weight") and getattr(self, f.name) < 0:
                fail(f.name, "a weight >= 0")
        if not 0 <= self.momentum_teacher <= 1:
            fail("momentum_teacher", "a momentum in [0, 1]")
        for name in ("out_dim", "hidden_dim", "bottleneck_dim", "head_layers", "decoder_embed_dim",
                     "decoder_num_heads", "css_hidden_dim", "css_num_heads", "css_mask_head_depth"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                fail(name, "an integer >= 1")
        for dim, heads in (("decoder_embed_dim", "decoder_num_heads"), ("css_hidden_dim", "css_num_heads")):
            if getattr(self, dim) % getattr(self, heads):
                fail(dim, f"a multiple of saip.{heads}={getattr(self, heads)}")


class SAIP(Method):
    def __init__(self, cfg: SaipConfig, backbone: str = "saip_vit_tiny", img_size=(256, 128),
                 drop_path: float = 0.0, weights: str | None = None, accumulation: int = 1,
                 local_size=None):
        """`img_size`: the global-view size, which fixes the anchor grid; `accumulation`: the
        engine's micro-batches per optimizer step (indexes the per-micro-batch EMA);
        `local_size`, when given, is checked to stay at least one patch when shrunk."""
        super().__init__()
        self.cfg = c = cfg
        self.accumulation = int(accumulation)
        student_backbone = saip_backbone(backbone, img_size, drop_path, c.pos_resample, weights, c.vit_init)
        teacher_backbone = saip_backbone(backbone, img_size, 0.0, c.pos_resample, init=c.vit_init)
        d, patch = student_backbone.embed_dim, student_backbone.patch_size
        self.patch_size = patch
        if local_size is not None and any(int(s * min(c.rescale_factors)) < p for s, p in zip(local_size, patch)):
            raise UserError(f"crops.local_size={list(local_size)} shrunk by {min(c.rescale_factors)} "
                            f"(saip.rescale_factors) is smaller than one {patch[0]}x{patch[1]} patch")

        def csm_decoder():
            return CSMDecoder(d, c.out_dim, c.hidden_dim, c.bottleneck_dim, c.head_layers)

        self.student = SAIPNetwork(
            student_backbone, csm_decoder(),
            csr_decoder=CSRDecoder(d, student_backbone.anchor_patches, patch, 3, c.decoder_embed_dim,
                                   c.decoder_depth, c.decoder_num_heads),
            css_decoder=CSSDecoder(d, c.css_hidden_dim, c.css_num_heads, c.css_self_attention_depth,
                                   c.css_mask_head_depth))
        self.teacher = SAIPNetwork(teacher_backbone, csm_decoder())
        self.teacher.backbone.load_state_dict(self.student.backbone.state_dict())
        self.teacher.csm_decoder.load_state_dict(self.student.csm_decoder.state_dict())
        self.teacher.requires_grad_(False)
        self.csm_loss = DINOLoss(c.out_dim, 2, c.student_temp, c.center_momentum)
        self._micro: tuple[int, int] | None = None  # (step, micro-batch) of the last training_step
        self.configure(1, 1)

    def ema_source(self) -> list[Tensor]:
        """The student parameters the teacher mirrors, in the teacher's order."""
        return [*self.student.backbone.parameters(), *self.student.csm_decoder.parameters()]

    def configure(self, total_steps: int, steps_per_epoch: int) -> None:
        c = self.cfg
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.ema_per_step = self.accumulation if c.ema_every_micro_batch else 1
        self.momentum = cosine_schedule(c.momentum_teacher, 1.0, total_steps * self.ema_per_step)
        self.teacher_temp = teacher_temperature_schedule(
            c.warmup_teacher_temp, c.teacher_temp, round(c.warmup_teacher_temp_epochs * steps_per_epoch), total_steps)

    # ------------------------------------------------------------------ the step
    def training_step(self, batch: dict, step: int) -> dict[str, Tensor]:
        self.ema_between_micro_batches(step)
        c = self.cfg
        crops, reference = batch["image"], batch["reference"]
        g1, g2, locals_ = crops[0], crops[1], crops[2:]
        if not locals_:
            raise UserError("SAIP needs at least one local crop per image (crops.local_number >= 1)")
        b = g1.shape[0]
        globals_ = torch.cat([g1, g2])
        scale_last, scale_region = (c.rescale_factors[i] for i in torch.randint(len(c.rescale_factors), (2,)).tolist())

        # 1. teacher
        with torch.no_grad():
            teacher = self.teacher.backbone.forward_features
            ref_tokens = teacher(reference, get_intermediate_only=True, with_attention=False).outs[0]
            t = teacher(globals_)
            teacher_out = self.teacher.csm_decoder(t.outs[-1][:, 0])

        # 2. CSM: 2 globals + N-1 locals + the last local and the region image, rescaled
        encode = self.student.backbone.forward_features
        s = encode(globals_)
        cls = [s.outs[-1][:, 0]]
        if len(locals_) > 1:
            cls.append(encode(torch.cat(locals_[:-1]), with_attention=False).outs[-1][:, 0])
        last = encode(rescale(locals_[-1], scale_last), with_attention=False)
        region = encode(rescale(batch["region"], scale_region), with_attention=False)
        cls += [last.outs[-1][:, 0], region.outs[-1][:, 0]]
        student_out = self.student.csm_decoder(torch.cat(cls))
        losses = {"csm_rep": self.csm_loss(student_out, teacher_out, float(self.teacher_temp[step])),
                  "csm_att": attention_distillation(s.attn, t.attn, c.attention_eps)}

        # 3. CSR: reconstruct global view 2 at x1.25 from a quarter of it and view 1's class token
        csr_view = rescale(g2, c.csr_scale)
        masked = encode(csr_view, c.mask_ratio, with_anchor_mask=True, get_intermediate_only=True,
                        with_attention=False)
        pred = self.student.csr_decoder(masked.outs[0], s.outs[0][:b, :1], masked.ids_restore)
        losses["csr"] = csr_loss(pred, csr_view, self.csr_scored(masked), self.patch_size, c.norm_pix_loss)

        # 4. CSS: find global view 1 and the rescaled last local crop in the teacher's reference map
        grid = (reference.shape[2] // self.patch_size[0], reference.shape[3] // self.patch_size[1])
        ref_map = token_map(ref_tokens, grid)
        losses["css_inst"] = css_loss(self.student.css_decoder(s.outs[0][:b], ref_map), batch["inst_mask"])
        losses["css_roi"] = css_loss(self.student.css_decoder(last.outs[0], ref_map), batch["roi_mask"])
        return {k: getattr(c, f"{k}_weight") * v for k, v in losses.items()}

    def csr_scored(self, masked) -> Tensor:
        """(B, L) 1 where the CSR loss scores a patch: removed by the up-sampled anchor mask
        (official), or every patch the encoder did not see (`csr_loss_mask: unseen`)."""
        if self.cfg.csr_loss_mask == "anchor":
            return masked.mask[1]
        kept = masked.outs[0].shape[1] - 1
        return (masked.ids_restore >= kept).float()

    # ------------------------------------------------------------------ the teacher
    def momentum_at(self, step: int, micro: int = 0) -> float:
        if self.cfg.momentum_index == "epoch_step":
            step = step % self.steps_per_epoch
        i = step * self.ema_per_step + min(micro, self.ema_per_step - 1)
        return float(self.momentum[min(i, len(self.momentum) - 1)])

    @torch.no_grad()
    def update_teacher(self, m: float) -> None:
        teacher = list(self.teacher.parameters())
        student = [p.detach() for p in self.ema_source()]
        torch._foreach_mul_(teacher, m)
        torch._foreach_add_(teacher, student, alpha=1.0 - m)

    def ema_between_micro_batches(self, step: int) -> None:
        """Official mode: the EMA of micro-batch k - 1 happens when micro-batch k starts (the
        student has not changed in between, as no optimizer step separates them)."""
        if not self.cfg.ema_every_micro_batch:
            return
        if self._micro is not None and self._micro[0] == step:
            self.update_teacher(self.momentum_at(step, self._micro[1]))
            self._micro = (step, self._micro[1] + 1)
        else:
            self._micro = (step, 0)

    def after_step(self, step: int) -> None:
        micro = self._micro[1] if (self._micro is not None and self._micro[0] == step) else 0
        self.update_teacher(self.momentum_at(step, micro if self.cfg.ema_every_micro_batch else 0))
        self._micro = None

    def downstream_backbone(self) -> nn.Module:
        return self.teacher.backbone


def rescale(x: Tensor, factor: float) -> Tensor:
    """Nearest-neighbour rescaling by a factor, the official call (sizes floor(H f) x floor(W f))."""
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")
