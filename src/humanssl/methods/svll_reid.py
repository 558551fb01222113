"""SVLL-ReID (Wang et al., 2025): CLIP-ReID's two stages plus language and visual self-supervision.

Stage 1 — the prompts learn; the CLIP towers stay fixed.
  prepare: v_n = CLS @ proj of every training image (test transform, no side information),
           computed once with the frozen image encoder.
  step:    a random batch of cached (v, y) (a fresh permutation every epoch);
           t = text(prompt(y)): "A photo of a [ctx_y] person." through the frozen text encoder;
           loss = SupCon(v, t) + SupCon(t, v)                           (temperature 1, no norm)
                + w1 * NT-Xent(text_mlp(text(aug1(P))), text_mlp(text(aug2(P))))   tau 0.1
           where P are the full prompts of the batch's distinct identities and aug is the
           PROMPT_AUG_METHOD (mask / swap / mix) at PROMPT_AUG_SCALE.
  trains:  prompt_learner.cls_ctx, and text_mlp (unless official_untrained_text_mlp).
Stage 2 — the image encoder learns; prompts and text encoder fixed.
  prepare: T = text(prompt(i)) for every identity i, computed once.
  step:    a P x K batch of images x (side information from camera / view), and per image two
           extra views x1, x2 (random erasing of a third of the image);
           loss = 0.25 * [CE_ls(cls(BN(f))) + CE_ls(cls_proj(BN(f_p)))]
                + triplet(f_{L-1}) + triplet(f) + triplet(f_p)              (margin 0.3)
                + CE_ls(f_p T^T)
                + w2 * NT-Xent(image_mlp(CLS(x1)), image_mlp(CLS(x2)))      (no side information)
  trains:  image encoder, side-information table, BNNecks, classifiers, image_mlp.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor, nn

from humanssl.data.prompt_augment import augment_prompts
from humanssl.engine import distributed
from humanssl.engine.optim import decay_groups
from humanssl.errors import UserError
from humanssl.losses.clip_reid import stage1_losses, stage2_losses
from humanssl.losses.nt_xent import nt_xent_loss
from humanssl.methods.base import Method, Stage
from humanssl.methods.svll_reid_settings import Stage1Settings, Stage2Settings
from humanssl.models.clip_reid import ClipReid
from humanssl.models.clip_reid_features import ClipReidFeatures

STAGE1, STAGE2 = "stage1", "stage2"
FROZEN_IN_STAGE2 = ("text_encoder.", "prompt_learner.", "text_mlp.")


class SvllReid(Method):
    def __init__(self, model: ClipReid, stage1: Stage1Settings, stage2: Stage2Settings, training_images: Iterable,
                 *, pid_of_label: list[int] | None = None, seed: int = 0):
        """`training_images`: batches {"image", "pid"} of every training image with the test
        transform (a DataLoader), read once per run by stage 1 to cache the image features."""
        super().__init__()
        if (stage1.language_ssl or stage2.visual_ssl) and not hasattr(model, "image_mlp"):
            raise UserError("svll-reid: self-supervision needs the model built with its SSL MLPs (ssl=True)")
        self.model = model
        self.s1, self.s2 = stage1, stage2
        self.training_images = training_images
        self.num_images = len(training_images.dataset)
        self.seed = seed
        ids = list(range(model.num_classes)) if pid_of_label is None else [int(p) for p in pid_of_label]
        if len(ids) != model.num_classes:
            raise UserError(f"pid_of_label has {len(ids)} entries for {model.num_classes} identities")
        # Prompt and classifier row i belong to dataset identity pid_of_label[i]; the SIE table's
        # (cameras, views) split its rows. Both travel with every checkpoint.
        self.register_buffer("pid_of_label", torch.tensor(ids, dtype=torch.int64))
        self.register_buffer("sie_sizes", torch.tensor([model.camera_num, model.view_num], dtype=torch.int64))
        self.trainable = {n for n, p in model.named_parameters() if p.requires_grad}  # BNNeck shifts never train
        self.stage = STAGE1
        self.image_bank = self.label_bank = self.text_bank = None

    # ------------------------------------------------------------------ stages
    def stages(self) -> list[Stage]:
        s1, s2 = self.s1, self.s2
        return [Stage(STAGE1, s1.epochs, self.cache_image_features, s1.optim(), s1.lr_schedule(),
                      steps_per_epoch=self.stage1_steps_per_epoch),
                Stage(STAGE2, s2.epochs, self.cache_text_features, s2.optim(), s2.lr_schedule())]

    @property
    def stage1_steps_per_epoch(self) -> int:
        return math.ceil(self.num_images / self.s1.batch_size)

    def begin_stage(self, name: str) -> None:
        self.stage = name
        for n, p in self.model.named_parameters():
            p.requires_grad_(n in self.trainable and self.trains(n))

    def trains(self, name: str) -> bool:
        if self.stage == STAGE1:
            text_mlp = self.s1.language_ssl and not self.s1.official_untrained_text_mlp
            return name.startswith("prompt_learner.") or (text_mlp and name.startswith("text_mlp."))
        if name.startswith("image_mlp."):
            return self.s2.visual_ssl
        return not name.startswith(FROZEN_IN_STAGE2)

    @torch.no_grad()
    def cache_image_features(self, loader=None) -> None:
        device = self.model.classifier.weight.device
        was_training = self.model.training
        self.model.eval()
        feats, labels = [], []
        for batch in self.training_images:
            feats.append(self.model.image_features_proj(batch["image"].to(device)).float())
            labels.append(batch["pid"].to(device))
        self.model.train(was_training)
        self.image_bank, self.label_bank = torch.cat(feats), torch.cat(labels)

    @torch.no_grad()
    def cache_text_features(self, loader=None, chunk: int = 64) -> None:
        device = self.model.classifier.weight.device
        ids = torch.arange(self.model.num_classes, device=device)
        self.text_bank = torch.cat([self.model.text_features(ids[i:i + chunk]).float()
                                    for i in range(0, len(ids), chunk)])

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: dict, step: int) -> dict[str, Tensor]:
        return self.stage1_step(step) if self.stage == STAGE1 else self.stage2_step(batch)

    def stage1_indices(self, step: int) -> Tensor:
        """This process's share of the step's batch: a slice of the epoch's permutation, drawn
        from (seed, epoch) alone so a resumed run sees the same batches."""
        epoch, i = divmod(step, self.stage1_steps_per_epoch)
        order = torch.randperm(self.num_images, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        chosen = order[i * self.s1.batch_size:(i + 1) * self.s1.batch_size]
        rank, world = distributed.rank(), distributed.world_size()
        return chosen[rank::world] if len(chosen) >= world else chosen

    def stage1_step(self, step: int) -> dict[str, Tensor]:
        if self.image_bank is None:
            raise RuntimeError("stage 1 ran before its image features were cached (Stage.prepare)")
        idx = self.stage1_indices(step).to(self.image_bank.device)
        images, labels = self.image_bank[idx], self.label_bank[idx]
        ids, inverse = labels.unique(return_inverse=True)  # one text pass per identity, not per image
        prompts = self.model.prompt_learner(ids)
        use_ssl = self.s1.language_ssl and len(ids) > 1  # BatchNorm in text_mlp needs two samples
        views = augment_prompts(prompts, self.s1.prompt_aug_method, self.s1.prompt_aug_scale) if use_ssl else ()
        text = self.model.encode_prompts(torch.cat([prompts, *views]))  # the text tower mixes no samples
        n = len(ids)
        losses = stage1_losses(images, text[:n][inverse], labels)
        if self.s1.language_ssl:
            ssl = nt_xent_loss(self.model.text_mlp(text[n:2 * n]), self.model.text_mlp(text[2 * n:]),
                               self.s1.ssl_tau) if use_ssl else self.unused_text_mlp_zero(text)
            losses["language_ssl"] = self.s1.ssl_loss_weight * ssl
        return losses

    def unused_text_mlp_zero(self, text: Tensor) -> Tensor:
        """A zero that still touches every text-MLP parameter: under DDP a process whose batch
        holds one identity (no NT-Xent pair) must still take part in those gradients' all-reduce."""
        return sum(p.sum() for p in self.model.text_mlp.parameters()) * 0.0 + text.sum() * 0.0

    def stage2_step(self, batch: dict) -> dict[str, Tensor]:
        if self.text_bank is None:
            raise RuntimeError("stage 2 ran before its text features were computed (Stage.prepare)")
        m, labels = self.model, batch["pid"]
        out = m(batch["image"], cam_label=batch["camid"] if m.sie_camera else None,
                view_label=batch["viewid"] if m.sie_view else None)
        losses = stage2_losses(out.cls_scores, out.features, out.image_feature_proj, self.text_bank, labels,
                               self.s2.weights())
        if self.s2.visual_ssl:
            if "views" not in batch:
                raise UserError("svll-reid: stage2.visual_ssl needs two extra views per image (ReidImagesWithViews)")
            v1, v2 = batch["views"]
            ssl = nt_xent_loss(m.ssl_image_embedding(v1), m.ssl_image_embedding(v2), self.s2.ssl_tau)
            losses["visual_ssl"] = self.s2.ssl_loss_weight * ssl
        return losses

    # ------------------------------------------------------------------ optimiser and outputs
    def param_groups(self) -> list[dict]:
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if self.stage == STAGE1:
            return decay_groups(named)
        return stage2_groups(named, self.s2.bias_lr_factor, self.s2.decay_norms_and_biases)

    def downstream_backbone(self) -> nn.Module:
        return ClipReidFeatures(self.model)


def stage2_groups(named: list[tuple[str, nn.Parameter]], bias_lr_factor: float, decay_all: bool) -> list[dict]:
    """The official stage-2 groups: every tensor with "bias" in its name (attn.in_proj_bias
    included) at bias_lr_factor x lr; weight decay on every tensor (`decay_all`) or, otherwise,
    only on >= 2-D weights."""
    groups = {"decay": [], "no_decay": [], "bias": []}
    for name, p in named:
        if "bias" in name.rsplit(".", 1)[-1]:
            groups["bias"].append(p)
        elif p.ndim <= 1 and not decay_all:
            groups["no_decay"].append(p)
        else:
            groups["decay"].append(p)
    out = [{"name": "decay", "params": groups["decay"], "apply_weight_decay": True},
           {"name": "no_decay", "params": groups["no_decay"], "apply_weight_decay": False},
           {"name": "bias", "params": groups["bias"], "apply_weight_decay": decay_all, "lr_scale": bias_lr_factor}]
    return [g for g in out if g["params"]]
