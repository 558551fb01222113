"""The re-id fine-tuning recipe schema: every key `humanssl finetune reid` accepts, with its default.

Defaults are SOLIDER-REID's numbers for Market-1501 (notes/solider_saip.md §1.3) except where a
comment says otherwise; the embedded demo (`humanssl/configs/demo_finetune_reid.yaml`) shrinks
sizes so the whole run fits a laptop CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from humanssl.data.reid_transforms import ReidTransformConfig
from humanssl.engine.settings import OptimConfig, TrainConfig
from humanssl.errors import UserError
from humanssl.methods.reid_finetune import ReidLossConfig


@dataclass
class SyntheticMarketConfig:
    """The built-in synthetic people written as a Market-1501 folder (`data.dataset: synthetic`)."""

    seed: int | None = None  # default: train.seed
    cameras: int = 6
    image_size: tuple[int, int] = (128, 64)  # (H, W) of the written images
    train_ids: int = 100
    test_ids: int = 100
    images_per_camera: int = 2
    cameras_per_identity: int = 3
    distractors: int = 20
    junk: int = 10


@dataclass
class DataConfig:
    dataset: str = "synthetic"  # a re-id dataset name (market1501, msmt17, ...) or "synthetic"
    root: str | None = None  # the dataset's folder (csv: the CSV file); not used by "synthetic"
    options: dict[str, Any] = field(default_factory=dict)  # passed to the dataset loader, e.g. {test_size: 1600}
    synthetic: SyntheticMarketConfig = field(default_factory=SyntheticMarketConfig)


@dataclass
class ModelConfig:
    backbone: str = "swin_tiny"
    backbone_options: dict[str, Any] = field(default_factory=dict)  # e.g. {semantic_weight: 0.2, drop_path_rate: 0.1}
    # Initial backbone weights: a humanssl run or checkpoint folder (its teacher's backbone by
    # default), a state-dict file (.pth/.pt) or a .safetensors file; null trains from scratch.
    init: str | None = None
    init_part: Literal["teacher", "student"] = "teacher"  # which network of a pretraining run
    neck: Literal["bnneck", "none"] = "bnneck"
    freeze: list[str] = field(default_factory=list)  # backbone parameter-name prefixes kept fixed
    bias_lr_scale: float = 2.0
    decay_norms_and_biases: bool = False  # true: SOLIDER-REID's optimiser (weight decay on every tensor)


@dataclass
class SamplerConfig:
    p: int = 16  # identities per batch, per process
    k: int = 4  # images per identity


@dataclass
class EvalConfig:
    every_epochs: int = 0  # also evaluate every N epochs during training (0: only at the end)
    flip: bool = False  # average the features of the image and its mirror image
    rerank: bool = False  # also report k-reciprocal re-ranking (k1 20, k2 6, lambda 0.3)
    baselines: bool = True  # before training: raw pixels and the not-yet-fine-tuned model
    batch_size: int = 128


@dataclass
class ReidOptimConfig(OptimConfig):
    """SOLIDER-REID's optimiser. `lr` is given at an effective batch of 256 and scaled linearly by
    the engine: the recipe's 0.0008 at batch 64 (Swin-T) is 0.0032 here. The engine warms up from 0
    (the recipe from 0.01 x lr); min_lr = 0.002 x 0.0008. No gradient clipping."""

    name: Literal["adamw", "sgd"] = "sgd"
    lr: float = 0.0032
    min_lr: float = 1.6e-6
    warmup_epochs: float = 20.0
    weight_decay: float = 1e-4
    weight_decay_end: float = 1e-4
    clip_grad: float = 0.0
    momentum: float = 0.9


@dataclass
class ReidTrainConfig(TrainConfig):
    epochs: int = 120
    batch_size: int = 64  # derived: sampler.p * sampler.k
    log_every: int = 20


@dataclass
class FinetuneConfig:
    task: Literal["reid"] = "reid"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: ReidLossConfig = field(default_factory=ReidLossConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    transforms: ReidTransformConfig = field(default_factory=ReidTransformConfig)
    optim: ReidOptimConfig = field(default_factory=ReidOptimConfig)
    train: ReidTrainConfig = field(default_factory=ReidTrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        if self.sampler.p < 1 or self.sampler.k < 1:
            raise UserError(f"sampler.p={self.sampler.p}, sampler.k={self.sampler.k}: expected integers >= 1")
        if self.eval.every_epochs < 0:
            raise UserError(f"eval.every_epochs={self.eval.every_epochs}: expected 0 (off) or a number of epochs")
        # one batch is P x K images; train.batch_size is derived so the two can never disagree
        self.train.batch_size = self.sampler.p * self.sampler.k
