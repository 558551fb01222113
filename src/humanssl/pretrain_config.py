"""The pretraining recipe schema: every key `humanssl pretrain` accepts, with its default.

Defaults are the official DINO / SOLIDER numbers; the embedded demos (`humanssl/configs/
demo_pretrain_solider.yaml`, the default, and `demo_pretrain_dino.yaml` for method=dino) shrink
sizes so the whole run fits a laptop CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from humanssl.data.saip_views import SaipViewsConfig
from humanssl.data.synthetic_effects import CameraEffects
from humanssl.data.ssprl_views import SSPRLViewsConfig
from humanssl.data.transforms import MultiCropConfig
from humanssl.engine.settings import OptimConfig, TrainConfig
from humanssl.methods.dino import DinoConfig
from humanssl.methods.saip import SaipConfig
from humanssl.methods.solider import SoliderConfig
from humanssl.methods.ssprl import SSPRLConfig


@dataclass
class DataConfig:
    source: Literal["synthetic", "folder", "list", "lmdb"] = "synthetic"
    # folder of images (source=folder), a text file of paths (source=list), or an LMDB of encoded
    # images (source=lmdb: LUPerson's <name>/lmdb + keys.pkl folder, or the LMDB folder itself)
    root: str | None = None
    list_root: str | None = None  # base folder for relative paths in a list; default: the list's folder
    synthetic_images: int = 4000
    synthetic_identities: int = 400
    synthetic_cameras: int = 300  # scenes of the unlabelled stream: many, like LUPerson's videos
    synthetic_seed: int | None = None  # default: train.seed
    # how strongly cameras mark their images, in the training stream and the kNN sets alike;
    # the defaults are the world as designed (humanssl/data/synthetic_effects.py)
    synthetic_effects: CameraEffects = field(default_factory=CameraEffects)
    max_bad_fraction: float = 0.01  # stop when more than this fraction of image reads fail


@dataclass
class ModelConfig:
    backbone: str = "vit_small"
    drop_path: float = 0.1  # student only; the teacher never drops
    weights: str | None = None  # local file of initial backbone weights
    # a humanssl pretraining run (or checkpoint folder) whose student and teacher start this run,
    # e.g. SOLIDER's second route: DINO for 100 epochs, then SOLIDER from that run's networks
    init: str | None = None
    # Swin backbones only: the controller's lambda for every call that passes none (plain DINO
    # training, kNN, extraction); default: the backbone's own (0.2, SOLIDER's re-id value). The
    # official DINO stage of SOLIDER (main_dino.py) trains at 0.
    semantic_weight: float | None = None
    # Swin backbones only: the patch stride then one merging stride per later stage; default the
    # backbone's (4, 2, 2, 2). (4, 2, 2, 1) keeps a 4x2 last-stage map at 64x32 crops, enough
    # tokens for SOLIDER's part clustering.
    strides: list[int] | None = None
    # Swin backbones only: start from PyTorch's default init, as SOLIDER's main_solider.py does
    # (it never calls the Swin's init_weights, notes 1.1). Default false: the Swin's own from-
    # scratch init (truncated-normal 0.02 Linear weights, zero biases, LayerNorm 1/0).
    torch_default_init: bool = False


@dataclass
class FirstStageConfig:
    """Another pretraining run that goes first, inside this run's folder (`first_stage/`), and
    whose student and teacher start this run, as model.init would. SOLIDER's faster official
    route is one: DINO for 100 epochs (run_dino.sh, lambda 0), then SOLIDER for 10 epochs from
    its networks at a tenth of the lr (resume_solider.sh)."""

    # none: no first stage. DINO and SOLIDER share the backbone and DINO head that are handed over.
    method: Literal["dino", "solider"] | None = None
    # key=value changes to this run's resolved config for the first stage (its method, data
    # world and seed are this run's unless changed here), e.g. ["train.epochs=100"]. Its folder,
    # fresh start (no model.init) and silent kNN are fixed; overriding them is refused.
    overrides: list[str] = field(default_factory=list)


@dataclass
class KnnConfig:
    enabled: bool = True
    identities: int = 100  # synthetic test ids, disjoint from the pretraining ids
    cameras: int = 6  # a Market-1501-like camera network
    cameras_per_identity: int = 3
    images_per_camera: int = 2
    image_size: tuple[int, int] | None = None  # default: crops.global_size
    batch_size: int = 128


@dataclass
class PretrainConfig:
    method: Literal["dino", "solider", "ssprl", "saip"] = "dino"
    data: DataConfig = field(default_factory=DataConfig)
    crops: MultiCropConfig = field(default_factory=MultiCropConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    dino: DinoConfig = field(default_factory=DinoConfig)  # also SOLIDER's DINO part
    solider: SoliderConfig = field(default_factory=SoliderConfig)  # read when method=solider
    # method=ssprl: SwAV multi-crop + pyramid patches of scene images (data.source=synthetic:
    # synthetic multi-object scenes); crop counts and grids are ssprl's, sizes ssprl_views'
    ssprl: SSPRLConfig = field(default_factory=SSPRLConfig)
    ssprl_views: SSPRLViewsConfig = field(default_factory=SSPRLViewsConfig)
    # method=saip (model.backbone saip_vit_tiny / saip_vit_mini): person views from `crops`
    # (local_number 7 officially), the multi-person reference image from saip_views
    saip: SaipConfig = field(default_factory=SaipConfig)
    saip_views: SaipViewsConfig = field(default_factory=SaipViewsConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    knn: KnnConfig = field(default_factory=KnnConfig)
    first_stage: FirstStageConfig = field(default_factory=FirstStageConfig)
