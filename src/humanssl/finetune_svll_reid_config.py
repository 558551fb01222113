"""The SVLL-ReID recipe schema: every key `humanssl finetune svll-reid` accepts, with its default.

Defaults are the official person config (configs/person/vit_svllreid.yml, notes §3); the
comment after a field names its official yacs key. The embedded demo
(`humanssl/configs/demo_finetune_svll_reid.yaml`) shrinks the CLIP towers and the data so
both stages run on a laptop CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from humanssl.data.reid_transforms import ReidTransformConfig
from humanssl.engine.settings import TrainConfig
from humanssl.errors import UserError
from humanssl.finetune_config import DataConfig, SamplerConfig
from humanssl.methods.svll_reid_settings import Stage1Settings, Stage2Settings


@dataclass
class ClipConfig:
    name: str = "ViT-B-16"              # MODEL.NAME: ViT-B-16 or RN50 (stride 16, no SIE)
    weights: str | None = None          # OpenAI's ViT-B-16.pt / RN50.pt, a local file: never downloaded
    random_init: bool = False           # random towers, no weights (demo and tests only)
    overrides: dict[str, Any] = field(default_factory=dict)  # open_clip model-config changes (tiny towers)


@dataclass
class SvllModelConfig:
    stride: int = 12                    # MODEL.STRIDE_SIZE: 12 overlapping patches, 16 none
    sie_camera: bool = True             # MODEL.SIE_CAMERA
    sie_view: bool = False              # MODEL.SIE_VIEW (VeRi, VehicleID: true)
    sie_coe: float = 1.0                # MODEL.SIE_COE (CLIP-ReID's default: 3.0)
    ssl_hidden_dim: int = 4096          # image_mlp / text_mlp widths
    ssl_dim: int = 256


@dataclass
class SvllTransformConfig(ReidTransformConfig):
    """INPUT.*: SIZE_TRAIN/TEST, PROB (flip), PADDING, PIXEL_MEAN/STD, RE_PROB (random erasing
    of the image and, fixed at a third of its area, of the two SSL views)."""

    size: tuple[int, int] = (256, 128)


@dataclass
class SvllEvalConfig:
    baselines: bool = True              # before training: raw pixels and the frozen CLIP image encoder
    rerank: bool = False                # TEST.RE_RANKING (ignored by the official code); k1 20, k2 6, lambda 0.3 here
    batch_size: int = 64                # TEST.IMS_PER_BATCH; also the stage-1 feature caching


@dataclass
class SvllTrainConfig(TrainConfig):
    epochs: int = 0                     # not used: stage1.epochs and stage2.epochs
    batch_size: int = 64                # derived: sampler.p * sampler.k (SOLVER.STAGE2.IMS_PER_BATCH)
    seed: int = 1234                    # SOLVER.SEED
    log_every: int = 20

    def __post_init__(self):
        if self.epochs:
            raise UserError(f"train.epochs={self.epochs}: SVLL-ReID has two stages; set stage1.epochs and "
                            "stage2.epochs instead")


@dataclass
class SvllReidConfig:
    task: Literal["svll-reid"] = "svll-reid"
    data: DataConfig = field(default_factory=lambda: DataConfig(dataset="market1501"))
    clip: ClipConfig = field(default_factory=ClipConfig)
    model: SvllModelConfig = field(default_factory=SvllModelConfig)
    stage1: Stage1Settings = field(default_factory=Stage1Settings)
    stage2: Stage2Settings = field(default_factory=Stage2Settings)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)  # p x k = 16 x 4; DATALOADER.NUM_INSTANCE = k
    transforms: SvllTransformConfig = field(default_factory=SvllTransformConfig)
    train: SvllTrainConfig = field(default_factory=SvllTrainConfig)
    eval: SvllEvalConfig = field(default_factory=SvllEvalConfig)

    def __post_init__(self):
        if self.sampler.p < 1 or self.sampler.k < 1:
            raise UserError(f"sampler.p={self.sampler.p}, sampler.k={self.sampler.k}: expected integers >= 1")
        if self.eval.batch_size < 1:
            raise UserError(f"eval.batch_size={self.eval.batch_size}: expected an integer >= 1")
        self.train.batch_size = self.sampler.p * self.sampler.k  # one stage-2 batch is P x K images
