"""SelfGait: BYOL pre-training of a gait backbone on unlabelled silhouette sequences
(Liu et al., ICASSP 2021), as the official `trainer.py` `update()` runs it.

Per step, for a batch of clips (n, s, 64, 44) with values 0/1:
  1. two views of every clip: the same frames, each frame flipped horizontally with p = 0.5,
     independently per frame and per view (or the views come ready in the batch);
  2. online chain on both views: predictor(projection_1(TP_1(conv_trans(online_network(view)))))
     -> (n, 31, 128);
  3. target chain on both views, no gradient: projection_2(TP_2(target_network(view)))
     (an EMA copy of SetNet, TP and projection; it has no micro-motion module, no predictor);
  4. loss: each view's prediction regresses the other view's target, 1 - cosine taken along
     the 31-strip axis per (sample, channel) (`cosine_over="parts"`, the official choice;
     "channels" takes BYOL's per-strip cosine over the 128 features instead);
  5. after the optimizer step: target <- m * target + (1 - m) * online for SetNet, TP and
     projection; m = 0.996 constant (official) or cosine 0.996 -> 1 (`momentum_schedule`).

Not official: `stretch=(lo, hi)` also stretches each view's width by its own random factor, the
same for all frames of the clip. Silhouettes from neighbouring cameras differ mostly in how wide
the stride and body appear, so a pair then spans some of that change.

The heads' BatchNorm pools its statistics over strips and samples (`head_norm="pooled"`,
official). Then every strip's share of the body profile stays in the target, and any two
clips' targets are nearly parallel at initialisation. `"per_strip"` keeps statistics per strip,
which takes that shared profile out, so the target differs from clip to clip.

Every module is kept under its official name, so the official checkpoint's `<name>_state_dict`
entries load into `<name>` here after stripping `module.`. Downstream retrieval uses the ONLINE
chain TP_1(conv_trans(online_network(x))), as the official `transform()` does: the target has
no micro-motion module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from humanssl.engine.optim import decay_groups
from humanssl.engine.schedules import cosine_schedule
from humanssl.errors import UserError
from humanssl.losses.byol import symmetric_byol_loss
from humanssl.methods.base import Method
from humanssl.models.micro_motion import MicroMotionModule
from humanssl.models.selfgait import NUM_PARTS, MLPHead, SelfGaitEncoder, SelfGaitSetNet, TemporalPartFC


@dataclass
class SelfGaitConfig:
    hidden_dim: int = 128  # width of each strip's feature after TP
    mlp_hidden_size: int = 256
    projection_size: int = 128
    div: int = 4  # channel reduction inside the micro-motion module
    momentum: float = 0.996
    momentum_schedule: str = "constant"  # official; "cosine" anneals momentum -> 1 as in BYOL
    cosine_over: str = "parts"  # official: cosine along the 31 strips; "channels": BYOL's per-strip cosine
    # BatchNorm in the projection / prediction heads. "pooled" (official): statistics over all
    # strips and samples, which leaves every strip's body-position profile in the target, so at
    # initialisation a clip's two views' targets are hardly closer than two clips' targets.
    # "per_strip": statistics per strip, over the samples only, so the target tells clips apart.
    head_norm: Literal["pooled", "per_strip"] = "pooled"
    flip_prob: float = 0.5  # per-frame horizontal flip when the method makes the two views
    # Not official (None): each view's width is scaled by a factor drawn from [lo, hi], one per
    # clip and view, about the centre column (benchmarks/README.md, "SelfGait against scratch").
    stretch: tuple[float, float] | None = None
    # The official SGD applies weight decay to every parameter, norms and biases included.
    decay_norms_and_biases: bool = True


def flip_frames(clips: Tensor, prob: float) -> Tensor:
    """Flip each frame of (n, s, h, w) left-right on its own with probability `prob`."""
    flip = torch.rand(clips.shape[:2], device=clips.device) < prob
    return torch.where(flip[:, :, None, None], clips.flip(-1), clips)


def stretch_width(clips: Tensor, low: float, high: float) -> Tensor:
    """Scale each clip of (n, s, h, w) 0/1 silhouettes horizontally about its centre column by a
    factor drawn from [low, high] per clip; the result is 0/1 again."""
    n = clips.shape[0]
    factor = torch.empty(n, device=clips.device).uniform_(low, high)
    theta = torch.zeros(n, 2, 3, device=clips.device, dtype=clips.dtype)
    theta[:, 0, 0] = 1.0 / factor  # output column x samples input column x / factor
    theta[:, 1, 1] = 1.0
    grid = F.affine_grid(theta, list(clips.shape), align_corners=False)
    return (F.grid_sample(clips, grid, align_corners=False) > 0.5).to(clips.dtype)


class SelfGait(Method):
    def __init__(self, cfg: SelfGaitConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or SelfGaitConfig()
        if cfg.cosine_over not in ("parts", "channels"):
            raise UserError(f"selfgait.cosine_over must be 'parts' or 'channels'; got {cfg.cosine_over!r}")
        if cfg.momentum_schedule not in ("constant", "cosine"):
            raise UserError(f"selfgait.momentum_schedule must be 'constant' or 'cosine'; got {cfg.momentum_schedule!r}")
        if cfg.stretch is not None and not 0 < cfg.stretch[0] <= cfg.stretch[1]:
            raise UserError(f"selfgait.stretch must be [low, high] with 0 < low <= high; got {list(cfg.stretch)}")
        # Online branch (trained).
        self.online_network = SelfGaitSetNet(cfg.hidden_dim)
        self.conv_trans = MicroMotionModule(128, 128, NUM_PARTS, cfg.div)
        self.TP_1 = TemporalPartFC(cfg.hidden_dim)
        self.projection_1 = MLPHead(cfg.hidden_dim, cfg.mlp_hidden_size, cfg.projection_size, cfg.head_norm)
        self.predictor = MLPHead(cfg.projection_size, cfg.mlp_hidden_size, cfg.projection_size, cfg.head_norm)
        # Target branch (EMA of the online SetNet, TP and projection).
        self.target_network = SelfGaitSetNet(cfg.hidden_dim)
        self.TP_2 = TemporalPartFC(cfg.hidden_dim)
        self.projection_2 = MLPHead(cfg.hidden_dim, cfg.mlp_hidden_size, cfg.projection_size, cfg.head_norm)
        self.initialize_target()
        self.configure(1, 1)

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.online_network, self.target_network), (self.TP_1, self.TP_2),
                (self.projection_1, self.projection_2)]

    @torch.no_grad()
    def initialize_target(self) -> None:
        """Copy online -> target (parameters and buffers) and freeze the target."""
        for online, target in self.ema_pairs():
            target.load_state_dict(online.state_dict())
            target.requires_grad_(False)

    def configure(self, total_steps: int, steps_per_epoch: int) -> None:
        m = self.cfg.momentum
        if self.cfg.momentum_schedule == "cosine":
            self.momentum = cosine_schedule(m, 1.0, total_steps)
        else:
            self.momentum = np.full(max(total_steps, 1), m)

    def views(self, batch: dict) -> tuple[Tensor, Tensor]:
        if "view1" in batch and "view2" in batch:
            return batch["view1"].float(), batch["view2"].float()
        if "silhouettes" not in batch:
            raise UserError("a SelfGait batch needs 'silhouettes' (n, frames, h, w) or both 'view1' and 'view2'")
        clips = batch["silhouettes"].float()
        view_1 = view_2 = clips
        if self.cfg.stretch is not None:  # a factor of its own for each view
            view_1, view_2 = stretch_width(clips, *self.cfg.stretch), stretch_width(clips, *self.cfg.stretch)
        return flip_frames(view_1, self.cfg.flip_prob), flip_frames(view_2, self.cfg.flip_prob)

    def online(self, view: Tensor) -> Tensor:
        return self.predictor(self.projection_1(self.TP_1(self.conv_trans(self.online_network(view)))))

    @torch.no_grad()
    def target(self, view: Tensor) -> Tensor:
        return self.projection_2(self.TP_2(self.target_network(view)))

    def training_step(self, batch: dict, step: int) -> dict[str, Tensor]:
        view_1, view_2 = self.views(batch)
        pred_1, pred_2 = self.online(view_1), self.online(view_2)
        target_1, target_2 = self.target(view_1), self.target(view_2)
        dim = 1 if self.cfg.cosine_over == "parts" else -1
        return {"byol": symmetric_byol_loss(pred_1, pred_2, target_1, target_2, dim=dim)}

    def param_groups(self) -> list[dict]:
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        if self.cfg.decay_norms_and_biases:
            return [{"name": "all", "params": [p for _, p in named], "apply_weight_decay": True}]
        return decay_groups(named)

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        m = float(self.momentum[min(step, len(self.momentum) - 1)])
        # Parameters only: the target's BatchNorm statistics come from its own forward passes,
        # as in the official update.
        target = [p for _, t in self.ema_pairs() for p in t.parameters()]
        online = [p.detach() for o, _ in self.ema_pairs() for p in o.parameters()]
        torch._foreach_mul_(target, m)
        torch._foreach_add_(target, online, alpha=1.0 - m)

    def downstream_backbone(self) -> nn.Module:
        return SelfGaitEncoder(self.online_network, self.conv_trans, self.TP_1)
