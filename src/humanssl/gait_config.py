"""The gait recipe schemas: every key `humanssl pretrain` (method: selfgait) and `humanssl finetune
gait` accept, with its default.

Defaults are SelfGait's official numbers (notes/ssprl_selfgait_svll.md §2.3-2.4): P x M = 8 x 16
sequences, windows of 30 frames, SGD lr 0.03 (at the batch of 128, i.e. 0.06 at the engine's
reference batch of 256), momentum 0.9, weight decay 4e-4, constant lr, no clipping, EMA 0.996,
batch-all triplet with margin 0.2 per strip, 80k iterations. The embedded demos
(`humanssl/configs/demo_*gait*.yaml`) shrink sizes so a run fits a laptop CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from humanssl.data.gait.casiab import TYPES, VIEWS
from humanssl.engine.settings import OptimConfig, TrainConfig
from humanssl.errors import UserError
from humanssl.methods.selfgait import SelfGaitConfig


@dataclass
class SyntheticGaitConfig:
    """The built-in synthetic walkers, written once as a CASIA-B tree into the run folder:
    training subjects from 001, test subjects from 075 (the standard test split's first id)."""

    seed: int | None = None  # default: train.seed
    train_ids: int = 24
    test_ids: int = 10
    types: list[str] = field(default_factory=lambda: list(TYPES))
    views: list[str] = field(default_factory=lambda: list(VIEWS))
    frames: tuple[int, int] = (40, 56)  # frames per walk, drawn in this range


@dataclass
class GaitDataConfig:
    source: Literal["casiab", "oumvlp", "synthetic"] = "casiab"
    root: str | None = None  # the dataset folder (pretreated PNGs or OpenGait pickles)
    # a split name of humanssl.data.gait.splits.SPLITS (casiab, casiab-gaitset, oumvlp, ...);
    # default: casiab-gaitset (001-074 minus 005 / 075-124) for CASIA-B, oumvlp for OU-MVLP
    split: str | None = None
    frame_mode: Literal["window", "choices"] = "window"  # SelfGait: a window of consecutive frames
    frames: int = 30  # frames per training sample (official frame_num)
    synthetic: SyntheticGaitConfig = field(default_factory=SyntheticGaitConfig)
    max_bad_fraction: float = 0.01


@dataclass
class GaitSamplerConfig:
    p: int = 8  # identities per batch, per process
    m: int = 16  # sequences per identity (drawn with replacement, as the official TripletSampler)


@dataclass
class GaitPretrainSamplerConfig(GaitSamplerConfig):
    # "identity" (official): P ids x M sequences; the ids only group the batch, the BYOL loss
    # never sees them. "view" (not official; needs no labels): each batch holds P x M sequences
    # of one camera view, so the heads' BatchNorm statistics, and with them the target, leave
    # out what all clips of that view share (benchmarks/README.md, "SelfGait against scratch").
    group_by: Literal["identity", "view"] = "identity"


@dataclass
class GaitEvalConfig:
    enabled: bool = True  # evaluate on the test split at the end (and before, see baselines)
    baselines: bool = True  # also score the model as initialised, before training
    distance: Literal["part_mean", "euclidean"] = "part_mean"  # SelfGait's mean per-strip distance
    batch_size: int = 4  # whole sequences per forward pass


@dataclass
class GaitOptimConfig(OptimConfig):
    """SelfGait's SGD. `lr` is at an effective batch of 256 (the engine scales it linearly): the
    official 0.03 at P x M = 128 sequences is 0.06 here. Constant lr: min_lr is ignored when
    `constant_lr` is true (the official code has no schedule)."""

    name: Literal["adamw", "sgd"] = "sgd"
    lr: float = 0.06
    min_lr: float = 0.0
    constant_lr: bool = True
    warmup_epochs: float = 0.0
    weight_decay: float = 4e-4
    weight_decay_end: float = 4e-4
    clip_grad: float = 0.0
    momentum: float = 0.9


@dataclass
class GaitTrainConfig(TrainConfig):
    epochs: int = 1
    max_steps: int | None = 80000  # official total_iter
    batch_size: int = 128  # derived: sampler.p * sampler.m
    checkpoint_every: int = 5000  # official checkpoint_interval
    log_every: int = 50


def check_sampler(sampler: GaitSamplerConfig, train: TrainConfig) -> None:
    if sampler.p < 1 or sampler.m < 1:
        raise UserError(f"sampler.p={sampler.p}, sampler.m={sampler.m}: expected integers >= 1")
    # one batch is P x M sequences; train.batch_size is derived so the two never disagree
    train.batch_size = sampler.p * sampler.m


@dataclass
class GaitPretrainConfig:
    method: Literal["selfgait"] = "selfgait"
    data: GaitDataConfig = field(default_factory=GaitDataConfig)
    selfgait: SelfGaitConfig = field(default_factory=SelfGaitConfig)
    sampler: GaitPretrainSamplerConfig = field(default_factory=GaitPretrainSamplerConfig)
    optim: GaitOptimConfig = field(default_factory=GaitOptimConfig)
    train: GaitTrainConfig = field(default_factory=GaitTrainConfig)
    eval: GaitEvalConfig = field(default_factory=GaitEvalConfig)

    def __post_init__(self):
        check_sampler(self.sampler, self.train)


@dataclass
class GaitModelConfig:
    # a SelfGait pretraining run / checkpoint folder / model.safetensors, or an official SelfGait
    # model_<iter>.pth: its online chain (SetNet, micro-motion module, TP_1) starts fine-tuning;
    # null trains from scratch
    init: str | None = None
    # with init: start the per-strip FCs (TP_1) afresh and keep only SetNet and the micro-motion
    # module. On the synthetic walkers a short BYOL run contracts its features mostly in these
    # FCs (benchmarks/README.md, "SelfGait BYOL": 50.0 rank-1 after fine-tuning with them fresh,
    # 33.4 with BYOL's).
    fresh_part_fcs: bool = False
    hidden_dim: int = 128
    div: int = 4  # channel reduction inside the micro-motion module


@dataclass
class GaitLossConfig:
    margin: float = 0.2
    mode: Literal["full", "hard"] = "full"  # batch-all (official) or batch-hard, per strip


@dataclass
class GaitFinetuneConfig:
    task: Literal["gait"] = "gait"
    data: GaitDataConfig = field(default_factory=GaitDataConfig)
    # fraction of the training SUBJECTS whose labels fine-tuning may use (all their sequences);
    # 1.0: fully supervised. Drawn with train.seed (humanssl.data.gait.labelled_subset).
    label_rate: float = 1.0
    model: GaitModelConfig = field(default_factory=GaitModelConfig)
    loss: GaitLossConfig = field(default_factory=GaitLossConfig)
    sampler: GaitSamplerConfig = field(default_factory=GaitSamplerConfig)
    optim: GaitOptimConfig = field(default_factory=GaitOptimConfig)
    train: GaitTrainConfig = field(default_factory=GaitTrainConfig)
    eval: GaitEvalConfig = field(default_factory=GaitEvalConfig)

    def __post_init__(self):
        check_sampler(self.sampler, self.train)
        if not 0.0 < self.label_rate <= 1.0:
            raise UserError(f"label_rate={self.label_rate}: expected a fraction in (0, 1]")
