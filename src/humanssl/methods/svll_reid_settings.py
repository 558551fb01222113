"""The numbers of SVLL-ReID's two stages (official person config, notes §3.1-3.2), one
dataclass per stage; the comment after each field names the official yacs key.

Learning rates are absolute (not scaled with the batch), and change once per epoch as the
official schedulers do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from humanssl.data.prompt_augment import METHODS as PROMPT_AUG_METHODS
from humanssl.engine.epoch_schedules import warmup_cosine_by_epoch, warmup_multistep_by_epoch
from humanssl.engine.settings import OptimConfig
from humanssl.errors import UserError
from humanssl.losses.clip_reid import Stage2Weights


def _positive(section: str, **values) -> None:
    for name, value in values.items():
        if not value > 0:
            raise UserError(f"{section}.{name}={value}: expected a value > 0")


@dataclass
class Stage1Settings:
    """Stage 1: only the identity prompts learn, against cached image features (SOLVER.STAGE1)."""

    epochs: int = 120                   # MAX_EPOCHS (vehicles: 60)
    batch_size: int = 256               # IMS_PER_BATCH: cached features per step, all processes together
    optimizer: Literal["adam", "adamw"] = "adam"  # OPTIMIZER_NAME
    lr: float = 3.5e-4                  # BASE_LR
    warmup_epochs: int = 5              # WARMUP_EPOCHS
    warmup_lr: float = 1e-5             # WARMUP_LR_INIT
    min_lr: float = 1e-6                # LR_MIN
    weight_decay: float = 1e-4          # WEIGHT_DECAY
    language_ssl: bool = True           # SVLL's language self-supervision (always on in the official code)
    ssl_loss_weight: float = 0.8        # SSL_LOSS_WEIGHT (VeRi: 2.0)
    prompt_aug_method: str = "mask"     # PROMPT_AUG_METHOD: mask, swap or mix
    prompt_aug_scale: float = 0.5       # PROMPT_AUG_SCALE
    ssl_tau: float = 0.1                # SIMCLRLoss temperature
    # The official stage-1 optimiser holds only the prompt learner, so text_mlp keeps its random
    # init and the SSL gradient reaches the prompts through a fixed random MLP. Default: it trains.
    official_untrained_text_mlp: bool = False

    def __post_init__(self):
        _positive("stage1", epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, ssl_tau=self.ssl_tau)
        if self.prompt_aug_method not in PROMPT_AUG_METHODS:
            raise UserError(f"stage1.prompt_aug_method={self.prompt_aug_method!r}: expected one of "
                            f"{', '.join(PROMPT_AUG_METHODS)}")
        if not 0 <= self.prompt_aug_scale <= 1:
            raise UserError(f"stage1.prompt_aug_scale={self.prompt_aug_scale}: expected a value in [0, 1]")
        if self.ssl_loss_weight < 0 or self.warmup_epochs < 0 or self.weight_decay < 0:
            raise UserError("stage1.ssl_loss_weight, warmup_epochs and weight_decay must be >= 0")

    def optim(self) -> OptimConfig:
        return OptimConfig(name=self.optimizer, lr=self.lr, min_lr=self.min_lr, weight_decay=self.weight_decay,
                           weight_decay_end=self.weight_decay, clip_grad=0.0)

    def lr_schedule(self):
        return warmup_cosine_by_epoch(self.lr, self.epochs, self.warmup_epochs, self.warmup_lr, self.min_lr)


@dataclass
class Stage2Settings:
    """Stage 2: the image encoder learns with the stage-1 text features fixed (SOLVER.STAGE2, MODEL.*)."""

    epochs: int = 60                    # MAX_EPOCHS
    optimizer: Literal["adam", "adamw"] = "adam"  # OPTIMIZER_NAME
    lr: float = 5e-6                    # BASE_LR (VehicleID: 5e-5)
    bias_lr_factor: float = 2.0         # BIAS_LR_FACTOR: every tensor with "bias" in its name
    weight_decay: float = 1e-4          # WEIGHT_DECAY (= WEIGHT_DECAY_BIAS)
    decay_norms_and_biases: bool = True  # official: every tensor decays; false: none on norms, biases, 1-D
    warmup_epochs: int = 10             # WARMUP_ITERS (counted in epochs)
    warmup_factor: float = 0.1          # WARMUP_FACTOR
    milestones: list[int] = field(default_factory=lambda: [30, 50])  # STEPS
    gamma: float = 0.1                  # GAMMA
    id_loss_weight: float = 0.25        # MODEL.ID_LOSS_WEIGHT
    triplet_loss_weight: float = 1.0    # MODEL.TRIPLET_LOSS_WEIGHT
    i2t_loss_weight: float = 1.0        # MODEL.I2T_LOSS_WEIGHT
    margin: float = 0.3                 # SOLVER.MARGIN
    label_smoothing: float = 0.1        # MODEL.IF_LABELSMOOTH 'on'
    visual_ssl: bool = True             # MODEL.USE_SSL (SSL_TYPE 'SIMCLR')
    ssl_loss_weight: float = 0.8        # SSL_LOSS_WEIGHT
    ssl_tau: float = 0.1

    def __post_init__(self):
        _positive("stage2", epochs=self.epochs, lr=self.lr, bias_lr_factor=self.bias_lr_factor,
                  ssl_tau=self.ssl_tau)
        if self.ssl_loss_weight < 0 or self.warmup_epochs < 0 or self.weight_decay < 0:
            raise UserError("stage2.ssl_loss_weight, warmup_epochs and weight_decay must be >= 0")
        self.weights()  # checks the loss weights now, with their message

    def weights(self) -> Stage2Weights:
        return Stage2Weights(self.id_loss_weight, self.triplet_loss_weight, self.i2t_loss_weight, self.margin,
                             self.label_smoothing)

    def optim(self) -> OptimConfig:
        return OptimConfig(name=self.optimizer, lr=self.lr, min_lr=0.0, weight_decay=self.weight_decay,
                           weight_decay_end=self.weight_decay, clip_grad=0.0)

    def lr_schedule(self):
        return warmup_multistep_by_epoch(self.lr, self.milestones, self.gamma, self.warmup_epochs, self.warmup_factor)
