"""CLIP-ReID (Li, Sun, Li, AAAI 2023) and SVLL-ReID (Wang et al., 2025) re-id model.

    image x ─► CLIP image encoder (+ side information on CLS) ─► CLS after block L-1   (768)
                                                               ─► CLS after block L     (768) = f
                                                               ─► f @ proj              (512) = f_p
    f ─► BNNeck ─► classifier (no bias);  f_p ─► BNNeck ─► classifier_proj (no bias)
    test feature: concat(f, f_p), L2-normalised (the official "before" neck feature)
    identity y ─► prompt learner ("A photo of a X X X X person.") ─► CLIP text encoder ─► t (512)

RN50 tower (clip.name RN50): f = average-pooled layer 4 (2048), f_p = attention pool (1024), the
third triplet feature = average-pooled layer 3 (1024); no side information (clip_resnet.py).

SVLL-ReID adds two projection MLPs (768/512 -> 4096 -> 4096 -> 256, BN + ReLU) for its visual
and language self-supervision. Attribute names, shapes and registration order follow the
official checkpoints (`cv_embed`, `bottleneck`, `image_encoder.*` ...), so they load directly;
the SIE table's official name is `cv_embed`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from humanssl.errors import UserError
from humanssl.models.clip_towers import build_clip_towers
from humanssl.models.prompt_learner import PromptLearner


@dataclass
class ClipReidOutput:
    cls_scores: list[Tensor]   # [classifier(BN(f)), classifier_proj(BN(f_p))]
    features: list[Tensor]     # [CLS after block L-1, f, f_p]: the triplet features
    image_feature_proj: Tensor  # f_p, against the text features


def ssl_mlp(in_dim: int, hidden: int = 4096, out_dim: int = 256) -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("layer1", nn.Linear(in_dim, hidden)), ("bn1", nn.BatchNorm1d(hidden)), ("relu1", nn.ReLU(inplace=True)),
        ("layer2", nn.Linear(hidden, hidden)), ("bn2", nn.BatchNorm1d(hidden)), ("relu2", nn.ReLU(inplace=True)),
        ("layer3", nn.Linear(hidden, out_dim)),
    ]))


def bnneck(dim: int) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(dim)
    bn.bias.requires_grad_(False)  # the BNNeck shift never trains
    return bn


class ClipReid(nn.Module):
    def __init__(self, image_encoder: nn.Module, text_encoder: nn.Module, token_embedding: nn.Embedding,
                 num_classes: int, *, camera_num: int = 0, view_num: int = 0, sie_camera: bool = False,
                 sie_view: bool = False, sie_coe: float = 3.0, dataset: str = "market1501",
                 ssl_mlp_dims: tuple[int, int] | None = None):
        super().__init__()
        width = image_encoder.width
        proj_dim = image_encoder.proj_dim
        self.num_classes = num_classes
        self.camera_num, self.view_num = camera_num, view_num
        self.sie_camera, self.sie_view, self.sie_coe = sie_camera, sie_view, sie_coe
        sie_rows = (camera_num * view_num if sie_camera and sie_view else
                    camera_num if sie_camera else view_num if sie_view else 0)
        if (sie_camera or sie_view) and sie_rows < 1:
            raise UserError(f"clip-reid: side information on cameras={sie_camera}, views={sie_view} needs "
                            f"camera_num/view_num >= 1, got {camera_num}/{view_num}")
        if sie_rows and not hasattr(image_encoder, "class_embedding"):
            raise UserError("clip-reid: side information (model.sie_camera / sie_view) needs a ViT tower; "
                            "turn it off for RN50")
        if sie_rows:
            self.cv_embed = nn.Parameter(nn.init.trunc_normal_(
                image_encoder.class_embedding.new_zeros(sie_rows, width), std=0.02))
        self.classifier = nn.Linear(width, num_classes, bias=False)
        self.classifier_proj = nn.Linear(proj_dim, num_classes, bias=False)
        for lin in (self.classifier, self.classifier_proj):
            nn.init.normal_(lin.weight, std=0.001)
        self.bottleneck = bnneck(width)
        self.bottleneck_proj = bnneck(proj_dim)
        self.image_encoder = image_encoder
        if ssl_mlp_dims is not None:
            hidden, out = ssl_mlp_dims
            self.image_mlp = ssl_mlp(width, hidden, out)
            self.text_mlp = ssl_mlp(text_encoder.text_projection.shape[1], hidden, out)
            for m in self.image_mlp:  # the official init, image side only (text_mlp keeps PyTorch's)
                if isinstance(m, nn.Linear):
                    nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm1d):
                    nn.init.uniform_(m.weight)
                    nn.init.uniform_(m.bias)
        self.prompt_learner = PromptLearner(num_classes, token_embedding, dataset,
                                            context_length=text_encoder.positional_embedding.shape[0])
        self.text_encoder = text_encoder

    def side_information(self, cam_label: Tensor | None, view_label: Tensor | None) -> Tensor | None:
        if not hasattr(self, "cv_embed"):
            return None
        if self.sie_camera and self.sie_view:
            if cam_label is None or view_label is None:
                raise UserError("clip-reid: the model uses camera x view side information; pass both labels")
            index = cam_label * self.view_num + view_label
        else:
            index = cam_label if self.sie_camera else view_label
            if index is None:
                raise UserError(f"clip-reid: the model uses {'camera' if self.sie_camera else 'view'} side "
                                "information; pass that label")
        return self.sie_coe * self.cv_embed[index]

    def text_features(self, labels: Tensor) -> Tensor:
        """(B,) identity labels -> (B, 512) text features (EOT token, projected)."""
        return self.encode_prompts(self.prompt_learner(labels))

    def encode_prompts(self, prompts: Tensor) -> Tensor:
        return self.text_encoder(prompts, self.prompt_learner.tokenized_prompts)

    def image_features_proj(self, x: Tensor) -> Tensor:
        """Projected CLS (RN50: attention pool) without side information: what stage 1 caches."""
        return self.image_encoder.pooled(x)[2]

    def ssl_image_embedding(self, x: Tensor) -> Tensor:
        """image_mlp(CLS after ln_post; RN50: pooled layer 4) of an extra view, without side
        information (SVLL stage 2)."""
        return self.image_mlp(self.image_encoder.pooled(x)[1])

    def forward(self, x: Tensor, cam_label: Tensor | None = None, view_label: Tensor | None = None):
        """Training: ClipReidOutput. Eval: the L2-normalised test feature concat(f, f_p)."""
        f_last, f, f_proj = self.image_encoder.pooled(x, self.side_information(cam_label, view_label))
        if not self.training:
            return F.normalize(torch.cat([f, f_proj], dim=1), dim=1)
        scores = [self.classifier(self.bottleneck(f)), self.classifier_proj(self.bottleneck_proj(f_proj))]
        return ClipReidOutput(scores, [f_last, f, f_proj], f_proj)


def build_clip_reid(num_classes: int, *, name: str = "ViT-B-16", input_size: tuple[int, int] = (256, 128),
                    stride: int = 16, weights: str | Path | None = None, random_init: bool = False,
                    camera_num: int = 0, view_num: int = 0, sie_camera: bool = False, sie_view: bool = False,
                    sie_coe: float = 3.0, dataset: str = "market1501", ssl: bool = False,
                    ssl_mlp_dims: tuple[int, int] = (4096, 256), clip_overrides: dict | None = None,
                    last_stride: int = 1) -> ClipReid:
    """CLIP-ReID (`ssl=False`) or SVLL-ReID (`ssl=True`: image_mlp and text_mlp) model.

    weights: OpenAI's CLIP checkpoint file (never downloaded); `random_init=True` for tests.
    clip_overrides: changes to open_clip's model config, e.g. tiny widths for tests.
    name: "ViT-B-16" or "RN50"; last_stride: RN50's layer-4 stride (1 for re-id, 2 as CLIP).
    """
    if num_classes < 1:
        raise UserError(f"clip-reid: num_classes must be >= 1, got {num_classes}")
    image_encoder, text_encoder, token_embedding = build_clip_towers(
        name, tuple(input_size), stride, weights, random_init, clip_overrides, last_stride)
    return ClipReid(image_encoder, text_encoder, token_embedding, num_classes, camera_num=camera_num,
                    view_num=view_num, sie_camera=sie_camera, sie_view=sie_view, sie_coe=sie_coe,
                    dataset=dataset, ssl_mlp_dims=ssl_mlp_dims if ssl else None)
