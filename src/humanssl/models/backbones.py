"""Backbones a user can name in a config: ``create_backbone(name)`` / ``list_backbones()``.

Each returns pooled features (B, D) for any input size and has ``embed_dim``. Weights are never
downloaded; ``weights=PATH`` loads a local state dict (.pth/.pt or .safetensors).
Inside the code, import the builders directly; the registry exists only for typed names.
"""

from __future__ import annotations

from functools import partial

import inspect
import math
from pathlib import Path
from typing import Callable

import torch
from timm.layers import resample_abs_pos_embed
from timm.models import create_model
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn
from torchvision.models import resnet18 as tv_resnet18
from torchvision.models import resnet50 as tv_resnet50
from torchvision.models.resnet import BasicBlock, conv1x1

from humanssl.errors import UserError
from humanssl.models import swin as swin_models

PERSON_SIZE = (256, 128)  # H x W of the global crops in person re-id pre-training


# ---------------------------------------------------------------- ViTs (timm)
def _timm_vit(arch: str, img_size, drop_path_rate: float, weights: str | None) -> VisionTransformer:
    # global_pool "token" + num_classes 0: forward() returns the normed CLS token, DINO's feature.
    # dynamic_img_size resamples the position table to each input's grid (multi-crop sizes).
    model = create_model(
        arch, pretrained=False, num_classes=0, global_pool="token", dynamic_img_size=True,
        img_size=img_size, drop_path_rate=drop_path_rate,
    )
    return _load(model, weights, classifier_prefix="head.")


def vit_tiny(img_size=PERSON_SIZE, drop_path_rate: float = 0.0, weights: str | None = None):
    return _timm_vit("vit_tiny_patch16_224", img_size, drop_path_rate, weights)


def vit_small(img_size=PERSON_SIZE, drop_path_rate: float = 0.0, weights: str | None = None):
    return _timm_vit("vit_small_patch16_224", img_size, drop_path_rate, weights)


def vit_mini(img_size=(64, 32), drop_path_rate: float = 0.0, weights: str | None = None):
    """A ~0.5M-parameter ViT for CPU demos: patch 8, so a 64x32 crop is 8x4 tokens."""
    model = VisionTransformer(
        img_size=img_size, patch_size=8, embed_dim=96, depth=4, num_heads=3, mlp_ratio=4.0,
        num_classes=0, global_pool="token", dynamic_img_size=True, drop_path_rate=drop_path_rate,
    )
    return _load(model, weights, classifier_prefix="head.")


# ---------------------------------------------------------------- ResNets (torchvision)
# ResNets have no stochastic depth. They accept drop_path_rate and ignore it, as DINO does (it
# passes the rate to ViTs only), so one config line works for every backbone.
def resnet50(drop_path_rate: float = 0.0, weights: str | None = None) -> nn.Module:
    return _headless_resnet(tv_resnet50(weights=None), 2048, weights)


def resnet18(drop_path_rate: float = 0.0, weights: str | None = None) -> nn.Module:
    return _headless_resnet(tv_resnet18(weights=None), 512, weights)


def _headless_resnet(model: nn.Module, dim: int, weights: str | None) -> nn.Module:
    model.fc = nn.Identity()  # the global-average-pooled features are the output
    model.embed_dim = dim
    return _load(model, weights, classifier_prefix="fc.")


class MiniResNet(nn.Module):
    """torchvision's ResNet layout (same module names) with one BasicBlock per stage and
    widths 32-64-128-256, for CPU demos. torchvision's ResNet class fixes the widths at 64+."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        stages, c_in = [], width
        for i in range(4):
            c_out, stride = width * 2**i, 1 if i == 0 else 2
            down = None
            if stride != 1 or c_in != c_out:
                down = nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))
            stages.append(nn.Sequential(BasicBlock(c_in, c_out, stride, down)))
            c_in = c_out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.embed_dim = c_in
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def resnet_mini(width: int = 32, drop_path_rate: float = 0.0, weights: str | None = None) -> nn.Module:
    return _load(MiniResNet(width), weights, classifier_prefix="fc.")


# ---------------------------------------------------------------- Swins (SOLIDER)
# forward(x) gives the pooled feature at the constructor's lambda (0.2, SOLIDER's re-id value);
# forward_stages(x, semantic_weight) gives (pooled, stage maps) at any per-sample lambda.
# `weights` takes the released SOLIDER files as they are (see humanssl.hub).
def _swin(arch: str, drop_path_rate: float = 0.0, weights: str | None = None, semantic_weight: float = 0.2,
          strides=(4, 2, 2, 2), trust_checkpoint: bool = False, torch_default_init: bool = False) -> nn.Module:
    build = getattr(swin_models, arch)
    model = build(drop_path_rate=drop_path_rate, semantic_weight=semantic_weight, strides=tuple(strides),
                  pooled_only=True)
    if weights is not None:
        from humanssl.hub import load_swin_weights

        load_swin_weights(model, weights, trust_checkpoint=trust_checkpoint)
    elif not torch_default_init:
        # The Swin's own from-scratch init. SOLIDER's main_solider.py never calls it, so its
        # backbone starts from PyTorch's defaults (notes 1.1); under DINO the mini Swin stays below
        # raw pixels from those and learns from this one (benchmarks/README.md, "The Swin's init").
        model.init_weights()
    swin_models.freeze_unreached_by_pooled(model)  # its forward gives the pooled feature only
    return model


# One builder per size, all with _swin's options (swin_mini: widths 16-32-64-128, two blocks per
# stage, 0.58M parameters, for CPU demos).
swin_tiny, swin_small, swin_base, swin_mini = (partial(_swin, arch) for arch in
                                               ("swin_tiny", "swin_small", "swin_base", "swin_mini"))


# ---------------------------------------------------------------- registry
_BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "vit_mini": vit_mini,
    "vit_tiny": vit_tiny,
    "vit_small": vit_small,
    "resnet_mini": resnet_mini,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "swin_mini": swin_mini,
    "swin_tiny": swin_tiny,
    "swin_small": swin_small,
    "swin_base": swin_base,
}


def list_backbones() -> list[str]:
    return sorted(_BACKBONES)


def create_backbone(name: str, **kwargs) -> nn.Module:
    if name not in _BACKBONES:
        raise UserError(f"unknown backbone '{name}'; known backbones: {', '.join(list_backbones())}")
    builder = _BACKBONES[name]
    params = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:  # a config typo, reported here rather than as a TypeError from deep in timm
        raise UserError(
            f"backbone '{name}' has no option(s) {', '.join(unknown)}; it accepts: {', '.join(params)}"
        )
    return builder(**kwargs)


# ---------------------------------------------------------------- local weights
def _load(model: nn.Module, weights: str | None, classifier_prefix: str) -> nn.Module:
    if weights is None:
        return model
    path = Path(weights)
    if not path.is_file():
        raise UserError(f"backbone weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file or pickled objects: say which file and why
        raise UserError(f"could not read backbone weights {path}: {exc}") from exc
    from humanssl.hub.reading import unwrap_state_dict  # the hub imports the models, not the reverse

    state = unwrap_state_dict(state, f"backbone weights {path}")

    cleaned = {}
    for k, v in state.items():
        for prefix in ("module.", "backbone."):  # DDP and multi-crop wrapper prefixes
            k = k.removeprefix(prefix)
        if not k.startswith(classifier_prefix):  # our backbones have no classifier
            cleaned[k] = v
    if isinstance(model, VisionTransformer) and "pos_embed" in cleaned:
        cleaned["pos_embed"] = _fit_pos_embed(cleaned["pos_embed"], model, path)

    load_state_checked(model, cleaned, f"backbone weights {path}")
    return model


def _fit_pos_embed(pos: Tensor, model: VisionTransformer, path: Path) -> Tensor:
    """Checkpoints trained at another size (DINO's 224x224, or a person-shaped run) get their
    position table resampled (bicubic) to this model's grid. The file does not record its grid,
    so only the two shapes in use are recognised: square, or twice as high as wide (H = 2W)."""
    if pos.shape == model.pos_embed.shape:
        return pos
    n = pos.shape[1] - model.num_prefix_tokens
    side, half = math.isqrt(n), math.isqrt(n // 2)
    if side * side == n:
        old = [side, side]
    elif 2 * half * half == n:
        old = [2 * half, half]
    else:
        raise UserError(
            f"backbone weights {path}: cannot tell the patch grid of a {n}-token position table "
            f"(neither square nor 2:1); build the model with the img_size it was trained at"
        )
    return resample_abs_pos_embed(
        pos, new_size=list(model.patch_embed.grid_size), old_size=old,
        num_prefix_tokens=model.num_prefix_tokens,
    )


def load_state_checked(model: nn.Module, state: dict[str, Tensor], origin: str) -> None:
    """Load every tensor of `state` into `model`, or stop with a message naming `origin`: a
    partial load would silently train or evaluate a half-random network."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even with strict=False
        raise UserError(f"{origin} do not fit the model: {str(exc).splitlines()[-1].strip()}") from None
    if missing or unexpected:
        raise UserError(
            f"{origin} do not match the model: missing keys {sorted(missing)[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected keys {sorted(unexpected)[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''}; expected weights of the same backbone"
        )


# ---------------------------------------------------------------- SAIP ViTs
# forward(x) gives the final CLS token; `inter_norm` (read by SAIP's decoders only) is frozen.
# Position tables: pos_resample="sequence" is SAIP's 1-D resampling, "grid" the 2-D one.
# `weights` takes official SAIP checkpoints (their teacher), bare state dicts and run folders.
def _saip_vit(arch: str, img_size, drop_path_rate: float, weights: str | None, pos_resample: str,
              trust_checkpoint: bool) -> nn.Module:
    from humanssl.models import saip_vit

    model = getattr(saip_vit, arch)(img_size=tuple(img_size), drop_path_rate=drop_path_rate,
                                    pos_resample=pos_resample, pooled_only=True)
    if weights is not None:
        saip_vit.load_saip_weights(model, weights, trust_checkpoint=trust_checkpoint)
    saip_vit.freeze_unreached_by_pooled(model)
    return model


def saip_vit_tiny(img_size=PERSON_SIZE, drop_path_rate: float = 0.0, weights: str | None = None,
                  pos_resample: str = "sequence", trust_checkpoint: bool = False) -> nn.Module:
    return _saip_vit("saip_vit_tiny", img_size, drop_path_rate, weights, pos_resample, trust_checkpoint)


def saip_vit_mini(img_size=PERSON_SIZE, drop_path_rate: float = 0.0, weights: str | None = None,
                  pos_resample: str = "sequence", trust_checkpoint: bool = False) -> nn.Module:
    """SAIP's ViT at width 32, 8 blocks, 2 heads (130k parameters; the conformance model)."""
    return _saip_vit("saip_vit_mini", img_size, drop_path_rate, weights, pos_resample, trust_checkpoint)


_BACKBONES.update(saip_vit_mini=saip_vit_mini, saip_vit_tiny=saip_vit_tiny)
