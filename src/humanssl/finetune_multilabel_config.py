"""The multi-label recipe schema: every key `humanssl finetune multilabel` accepts, with its default.

Defaults are SS-PRL's VOC07 linear probe (notes/ssprl_selfgait_svll.md §1.6): frozen ResNet-50,
SGD momentum 0.9, wd 1e-6, cosine to 0, 100 epochs, batch 32, lr 0.03, gradient clipping 10,
RandomResizedCrop 224 + flip / Resize 256 + CentreCrop 224. The engine gives `optim.lr` at an
effective batch of 256 and scales it linearly: the official 0.03 at batch 32 is 0.24 here (COCO:
0.1 at 128 = 0.2). The embedded demo (`humanssl/configs/demo_finetune_multilabel.yaml`) shrinks
everything to the synthetic scenes on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from humanssl.engine.settings import OptimConfig, TrainConfig
from humanssl.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SPLITS = {"voc2007": ("trainval", "test"), "voc2012": ("train", "val"),
                  "coco2014": ("train2014", "val2014"), "synthetic": ("train", "test"), "csv": ("", "")}


@dataclass
class SyntheticScenesConfig:
    """The built-in synthetic scenes (`data.dataset: synthetic`); train and test scenes are disjoint."""

    seed: int | None = None  # default: train.seed
    image_size: tuple[int, int] = (128, 128)  # (H, W) rendered
    train_images: int = 512
    test_images: int = 256


@dataclass
class DataConfig:
    dataset: Literal["voc2007", "voc2012", "coco2014", "csv", "synthetic"] = "synthetic"
    root: str | None = None  # VOC/COCO folder; csv: the training CSV file
    test_root: str | None = None  # csv only: the test CSV file
    train_split: str | None = None  # default: VOC07 trainval, COCO train2014, synthetic train
    test_split: str | None = None  # default: VOC07 test, COCO val2014, synthetic test
    # Semi-supervised: this fraction of the training images keeps its labels (official: 0.01 and
    # 0.1 of COCO); the others are not used. Drawn once with `label_seed`.
    label_fraction: float = 1.0
    label_seed: int = 0
    synthetic: SyntheticScenesConfig = field(default_factory=SyntheticScenesConfig)

    def splits(self) -> tuple[str, str]:
        train, test = DEFAULT_SPLITS[self.dataset]
        return self.train_split or train, self.test_split or test


@dataclass
class ModelConfig:
    backbone: str = "resnet50"
    backbone_options: dict[str, Any] = field(default_factory=dict)
    # Initial trunk weights: a humanssl run or checkpoint folder (a pretraining run's teacher,
    # or its only network, by default), a .pth/.pt state dict or a .safetensors file; null: random.
    init: str | None = None
    init_part: Literal["teacher", "student"] = "teacher"
    mode: Literal["linear", "full"] = "linear"  # linear: frozen trunk (the probe); full: all trains
    trunk_lr_scale: float = 1.0  # mode=full: the trunk's lr / the head's (official semi-sup.: 0.01)


@dataclass
class TransformConfig:
    size: int = 224  # RandomResizedCrop (train) and centre crop (test) side
    resize: int = 256  # test: shorter side resized to this before the centre crop
    scale: tuple[float, float] = (0.08, 1.0)  # RandomResizedCrop's area range (torchvision default)
    flip: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass
class EvalConfig:
    every_epochs: int = 0  # also evaluate every N epochs (then best-epoch mAP is reported too)
    batch_size: int = 128


@dataclass
class MultilabelOptimConfig(OptimConfig):
    name: Literal["adamw", "sgd"] = "sgd"
    lr: float = 0.24  # 0.03 at batch 32 (VOC07), given at 256
    min_lr: float = 0.0
    warmup_epochs: float = 0.0
    weight_decay: float = 1e-6
    weight_decay_end: float = 1e-6
    clip_grad: float = 10.0
    clip_mode: Literal["per_param", "global"] = "global"
    momentum: float = 0.9


@dataclass
class MultilabelTrainConfig(TrainConfig):
    epochs: int = 100
    batch_size: int = 32


@dataclass
class MultilabelFinetuneConfig:
    task: Literal["multilabel"] = "multilabel"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    transforms: TransformConfig = field(default_factory=TransformConfig)
    optim: MultilabelOptimConfig = field(default_factory=MultilabelOptimConfig)
    train: MultilabelTrainConfig = field(default_factory=MultilabelTrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        if not 0 < self.data.label_fraction <= 1:
            raise UserError(f"data.label_fraction={self.data.label_fraction}: expected a fraction in (0, 1]")
        if self.eval.every_epochs < 0:
            raise UserError(f"eval.every_epochs={self.eval.every_epochs}: expected 0 (off) or a number of epochs")
        if self.transforms.resize < self.transforms.size:
            raise UserError(f"transforms.resize={self.transforms.resize} < transforms.size={self.transforms.size}: "
                            "expected the test resize to be at least the crop")
