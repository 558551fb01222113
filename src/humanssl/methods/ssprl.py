"""SS-PRL: self-supervised pyramid representation learning (Hsieh et al., arXiv 2208.14439).

SwAV's swapped prediction at several scales. Per optimizer step:
  1. L2-normalise every prototype row (global `ptypes`, `local_ptypes{i}`, `l2g_ptypes{i}`).
  2. One shared trunk (ResNet-50) pools every view: one call per run of equal-size global crops,
     one call per pyramid level (all its patches of all views, so BatchNorm sees them together).
  3. Global loss (SwAV): for each assigned global crop a, q_a = Sinkhorn(scores of crop a, after
     the rows of its queue if that queue is in use; keep this batch's rows); the loss is the
     mean over the other crops v of CE(q_a, softmax(scores_v / T)), averaged over a.
  4. Local loss of level i: for each assigned view u, q = Sinkhorn(level-i scores of every
     patch of view u, after its queue); CE to softmax(scores / T) of the same cells in each
     other view; mean over the other views, then over u.
  5. Cross-scale loss of level i: for every view, each image's level-i patch scores (z.c, before
     any softmax) are averaged over its g^2 patches, L2-normalised and mapped by the correlation
     learner `l2g_ptypes{i}` to the global prototypes; CE to every global code q_a; mean over
     views x global codes.
  6. Loss = global + sum_i lambda1_i * local_i + sum_i lambda2_i * cross_scale_i
     (`train_SSPRL.sh`: lambda1 = lambda2 = [0.25, 0.25]).
  7. After backward: gradients of every prototype layer (global, local AND correlation
     learners) are dropped during the first `freeze_prototypes_niters` steps.
  8. After the optimizer step: each queue in use gets this step's detached projections of its
     crop / view at the front (the Sinkhorn of this step used the rows stored before it).
SGD (momentum 0.9, weight decay on every tensor, as the official single group) inside LARC
(trust 0.001, no clipping).

Batch format (what `training_step` reads; rows of every tensor are the B images):
    batch["image"]      list of sum(nmb_crops) tensors (B, 3, H, W): the global crops, the
                        `nmb_crops[0]` large ones first (COCO recipe: 2 x 224, then 6 x 96).
    batch["patches{i}"] for each pyramid level i (g = grid_perside[i]): a list of
                        nmb_loc_views[i] * g^2 tensors (B, 3, p, p): view 0's patches in cell
                        order, then view 1's patches in the SAME cell order, and so on (COCO
                        recipe: level 0 = 2 x 4 patches of 112 px, level 1 = 2 x 9 of 96 px).
This is the official 34-crop list of `JigsawDataset` split by level, and it batches with
`humanssl.data.collate.collate_samples`. Rows of the projections and scores below are crop-major
(row = crop * B + image); a level's rows are ordered [view, patch, image].

Queues: the global queue is (len(crops_for_assign), queue_length / W, feat_dim) and level i's is
(len(loc_view_for_assign), local_queue_length[i] / W, feat_dim), lengths first cut to a multiple
of B * W (W processes), as officially; they start empty at epoch `epoch_queue_starts`. A queue
takes part in Sinkhorn once it is full. Official quirk (`share_queue_flag=True`): one flag for
all queues, set by the first full queue of an epoch, so queues that are still filling take part
with their zero rows; the default uses each queue only when full. With gradient accumulation,
every micro-batch of a step sees the queues as they were at the start of the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from humanssl.engine.distributed import world_size
from humanssl.engine.larc import LARC
from humanssl.errors import UserError
from humanssl.losses.swav import FeatureQueue, distributed_sinkhorn, swapped_prediction
from humanssl.methods.base import Method
from humanssl.models.backbones import resnet50
from humanssl.models.ssprl_heads import SSPRLHeads


@dataclass
class SSPRLConfig:
    # official argument names; defaults are the COCO recipe of train_SSPRL.sh
    nmb_crops: list[int] = field(default_factory=lambda: [2, 6])
    crops_for_assign: list[int] = field(default_factory=lambda: [0, 1])
    grid_perside: list[int] = field(default_factory=lambda: [2, 3])
    nmb_loc_views: list[int] = field(default_factory=lambda: [2, 2])
    loc_view_for_assign: list[int] = field(default_factory=lambda: [0, 1])
    temperature: float = 0.1
    epsilon: float = 0.05
    sinkhorn_iterations: int = 3
    feat_dim: int = 128
    hidden_mlp: int = 2048
    nmb_ptypes: int = 300
    nmb_local_ptypes: list[int] = field(default_factory=lambda: [150, 150])
    queue_length: int = 1920  # 0: no global queue
    local_queue_length: list[int] = field(default_factory=lambda: [5000, 5000])  # 0: none
    epoch_queue_starts: int = 80
    lambda1: list[float] = field(default_factory=lambda: [0.25, 0.25])  # local losses
    lambda2: list[float] = field(default_factory=lambda: [0.25, 0.25])  # cross-scale losses
    freeze_prototypes_niters: int = 648
    momentum: float = 0.9  # SGD inside LARC
    trust_coefficient: float = 0.001
    larc_clip: bool = False
    share_queue_flag: bool = False  # True: the official shared `use_the_queue` (see docstring)

    def check(self) -> None:
        levels = len(self.grid_perside)
        for name in ("nmb_loc_views", "nmb_local_ptypes", "local_queue_length", "lambda1", "lambda2"):
            if len(getattr(self, name)) != levels:
                raise UserError(f"ssprl.{name} has {len(getattr(self, name))} entries; expected one per "
                                f"pyramid level ({levels}, the length of ssprl.grid_perside)")
        n_crops = sum(self.nmb_crops)
        if n_crops < 2:
            raise UserError(f"ssprl.nmb_crops {self.nmb_crops}: swapped prediction needs at least 2 global crops")
        if not self.crops_for_assign or any(not 0 <= a < n_crops for a in self.crops_for_assign):
            raise UserError(f"ssprl.crops_for_assign {self.crops_for_assign} must name crops 0..{n_crops - 1}")
        for views in self.nmb_loc_views:
            if views < 2 or any(not 0 <= u < views for u in self.loc_view_for_assign):
                raise UserError(f"ssprl.loc_view_for_assign {self.loc_view_for_assign} must name views of "
                                f"every level (nmb_loc_views {self.nmb_loc_views}, at least 2 each)")


@dataclass
class SSPRLStep:
    """Everything one step computed: unweighted loss terms and the tensors behind them."""

    global_loss: Tensor
    local_losses: list[Tensor]
    cross_scale_losses: list[Tensor]
    global_z: Tensor  # (n_crops * B, feat_dim)
    global_scores: Tensor  # (n_crops * B, K_0)
    local_z: list[Tensor]  # per level (views * g^2 * B, feat_dim)
    local_scores: list[Tensor]  # per level (views * g^2 * B, K_i)
    global_codes: list[Tensor]  # per assigned crop (B, K_0)
    local_codes: list[list[Tensor]]  # per level, per assigned view (g^2 * B, K_i)


class SSPRL(Method):
    def __init__(self, cfg: SSPRLConfig, backbone: nn.Module | None = None):
        """`backbone` returns pooled features and has `embed_dim`; default: ResNet-50 (torchvision
        layout, the official trunk's names)."""
        super().__init__()
        cfg.check()
        self.cfg = cfg
        self.backbone = resnet50() if backbone is None else backbone
        self.heads = SSPRLHeads(self.backbone.embed_dim, cfg.hidden_mlp, cfg.feat_dim, cfg.nmb_ptypes,
                                cfg.nmb_local_ptypes)
        self.queue = FeatureQueue()
        self.local_queues = nn.ModuleList(FeatureQueue() for _ in cfg.grid_perside)
        self.pending: list[tuple[FeatureQueue, int, Tensor]] = []  # pushes waiting for after_step
        self.begun_step: int | None = None
        self.use_the_queue = False
        self.configure(1, 1)

    def configure(self, total_steps: int, steps_per_epoch: int) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.queue_start_step = self.cfg.epoch_queue_starts * steps_per_epoch

    # ---------------------------------------------------------------- the step
    def training_step(self, batch: dict, step: int) -> dict[str, Tensor]:
        out = self.run_step(batch, step)
        c, zero = self.cfg, out.global_loss.new_zeros(())
        return {
            "global": out.global_loss,
            "local": sum((w * loss for w, loss in zip(c.lambda1, out.local_losses)), zero),
            "cross_scale": sum((w * loss for w, loss in zip(c.lambda2, out.cross_scale_losses)), zero),
        }

    def run_step(self, batch: dict, step: int) -> SSPRLStep:
        global_feats, level_feats, bs = self.encode(batch)
        self.begin_step(step, bs, global_feats)
        return self.losses_from_features(global_feats, level_feats, bs)

    def begin_step(self, step: int, bs: int, like: Tensor) -> None:
        """Once per optimizer step (not per micro-batch): prototype normalisation, queue start."""
        if step == self.begun_step:
            return
        self.begun_step = step
        self.pending = []  # pushes of a step that never reached after_step (no optimizer step)
        self.heads.ptypes_normalize()
        if step % self.steps_per_epoch == 0:
            self.use_the_queue = False  # the official flag lives for one epoch
        if step >= self.queue_start_step:
            self.start_queues(bs, like)

    def start_queues(self, bs: int, like: Tensor) -> None:
        c, w = self.cfg, world_size()
        wanted = [(self.queue, c.queue_length, len(c.crops_for_assign), bs)]
        wanted += [(q, n, len(c.loc_view_for_assign), bs * g * g)
                   for q, n, g in zip(self.local_queues, c.local_queue_length, c.grid_perside)]
        for queue, length, views, rows_per_step in wanted:
            length -= length % (bs * w)
            if queue.started or length <= 0:
                continue
            if length // w < rows_per_step:
                raise UserError(f"ssprl: a queue of {length // w} rows per process cannot take the "
                                f"{rows_per_step} new rows of every step; raise the queue length")
            queue.start(views, length // w, c.feat_dim, like)

    def encode(self, batch: dict) -> tuple[Tensor, list[Tensor], int]:
        """Pooled trunk features: global crops (n_crops * B, D), per level (views * g^2 * B, D)."""
        c = self.cfg
        crops = batch.get("image")
        if not isinstance(crops, (list, tuple)) or len(crops) != sum(c.nmb_crops):
            raise UserError(f"ssprl: batch['image'] must be a list of {sum(c.nmb_crops)} global crops "
                            f"(nmb_crops {c.nmb_crops}), got {_describe(crops)}")
        bs = crops[0].shape[0]
        global_feats = self.trunk_by_size(crops)
        level_feats = []
        for i, (g, views) in enumerate(zip(c.grid_perside, c.nmb_loc_views)):
            patches = batch.get(f"patches{i}")
            if not isinstance(patches, (list, tuple)) or len(patches) != views * g * g:
                raise UserError(f"ssprl: batch['patches{i}'] must be a list of {views} views x {g * g} "
                                f"patches = {views * g * g} tensors, got {_describe(patches)}")
            if len({tuple(p.shape) for p in patches}) > 1:
                raise UserError(f"ssprl: the patches of batch['patches{i}'] must all have one size")
            level_feats.append(self.backbone(torch.cat(list(patches))))
        return global_feats, level_feats, bs

    def trunk_by_size(self, crops) -> Tensor:
        """One trunk call per run of consecutive equal-size crops; rows stay crop-major."""
        feats, start = [], 0
        while start < len(crops):
            end = start + 1
            while end < len(crops) and crops[end].shape[-2:] == crops[start].shape[-2:]:
                end += 1
            feats.append(self.backbone(torch.cat(list(crops[start:end]))))
            start = end
        return torch.cat(feats)

    def losses_from_features(self, global_feats: Tensor, level_feats: list[Tensor], bs: int) -> SSPRLStep:
        c, heads = self.cfg, self.heads
        n_crops = sum(c.nmb_crops)
        glb_z, glb_scores = heads.forward_global(global_feats)

        # global swapped prediction, queue-extended codes of the assigned crops
        global_codes, glb_loss = [], 0.0
        for slot, a in enumerate(c.crops_for_assign):
            rows = slice(a * bs, (a + 1) * bs)
            q = self.codes(glb_scores[rows], glb_z[rows], self.queue, slot, heads.ptypes.weight)
            global_codes.append(q)
            others = [swapped_prediction(q, glb_scores[v * bs:(v + 1) * bs], c.temperature)
                      for v in range(n_crops) if v != a]
            glb_loss = glb_loss + sum(others) / (n_crops - 1)
        glb_loss = glb_loss / len(c.crops_for_assign)

        local_losses, cross_losses, local_z, local_scores, local_codes = [], [], [], [], []
        for i, (feats, g, views) in enumerate(zip(level_feats, c.grid_perside, c.nmb_loc_views)):
            z, scores = heads.forward_local(feats, i)
            local_z.append(z)
            local_scores.append(scores)
            per_view = scores.unflatten(0, (views, -1))  # (views, g^2 * B, K_i), cells aligned
            z_view = z.unflatten(0, (views, -1))
            loc_loss, level_codes = 0.0, []
            for slot, u in enumerate(c.loc_view_for_assign):
                q = self.codes(per_view[u], z_view[u], self.local_queues[i], slot,
                               heads.level("local_ptypes", i).weight)
                level_codes.append(q)
                others = [swapped_prediction(q, per_view[v], c.temperature) for v in range(views) if v != u]
                loc_loss = loc_loss + sum(others) / (views - 1)
            local_losses.append(loc_loss / len(c.loc_view_for_assign))
            local_codes.append(level_codes)

            cross = 0.0
            for v in range(views):
                # the g^2 patches of one image are rows p * B + b of the view
                mean_scores = per_view[v].unflatten(0, (g * g, bs)).mean(dim=0)
                l2g_scores = heads.forward_l2g(mean_scores, i)
                for q in global_codes:
                    cross = cross + swapped_prediction(q, l2g_scores, c.temperature)
            cross_losses.append(cross / (views * len(global_codes)))

        return SSPRLStep(glb_loss, local_losses, cross_losses, glb_z, glb_scores, local_z, local_scores,
                         global_codes, local_codes)

    @torch.no_grad()
    def codes(self, scores: Tensor, z: Tensor, queue: FeatureQueue, slot: int, prototypes: Tensor) -> Tensor:
        """Sinkhorn codes of this batch's rows, computed together with the queue's rows when in use;
        the batch's projections are scheduled for the queue."""
        out = scores.detach()
        if queue.started:
            if queue.full and self.cfg.share_queue_flag:
                self.use_the_queue = True
            if queue.full or (self.cfg.share_queue_flag and self.use_the_queue):
                out = torch.cat((queue.rows(slot, out) @ prototypes.t(), out))
            self.pending.append((queue, slot, z.detach()))
        return distributed_sinkhorn(out, self.cfg.epsilon, self.cfg.sinkhorn_iterations)[-scores.shape[0]:]

    # ---------------------------------------------------------------- engine hooks
    def after_backward(self, step: int) -> None:
        if step < self.cfg.freeze_prototypes_niters:
            for layer in self.heads.prototype_layers():
                layer.weight.grad = None

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        pushed: dict[int, tuple[FeatureQueue, int]] = {}
        for queue, slot, rows in self.pending:
            queue.push(slot, rows)
            if slot == 0:  # every slot gets the same number of rows
                prev = pushed.get(id(queue), (queue, 0))[1]
                pushed[id(queue)] = (queue, prev + rows.shape[0])
        for queue, n in pushed.values():
            queue.advance(n)
        self.pending = []

    def param_groups(self) -> list[dict]:
        # The official optimizer is one SGD group over model.parameters(): weight decay on
        # every tensor, norms and biases included; LARC adapts every tensor's rate.
        params = [p for p in self.parameters() if p.requires_grad]
        return [{"name": "all", "params": params, "apply_weight_decay": True}]

    def make_optimizer(self, groups: list[dict]) -> LARC:
        sgd = torch.optim.SGD(groups, lr=0.0, momentum=self.cfg.momentum, weight_decay=0.0)
        return LARC(sgd, trust_coefficient=self.cfg.trust_coefficient, clip=self.cfg.larc_clip)

    def downstream_backbone(self) -> nn.Module:
        return self.backbone


def _describe(value) -> str:
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    return "nothing" if value is None else type(value).__name__
