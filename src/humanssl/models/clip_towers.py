"""CLIP image and text towers for CLIP-ReID / SVLL-ReID, built with open_clip.

open_clip supplies the architecture (QuickGELU, as OpenAI trained it) and the BPE vocabulary; we
never download anything: towers start from random weights, and OpenAI's weights are read only
from a file the user names (`ViT-B-16.pt`, a TorchScript archive or a plain state dict).

Re-id adaptations of the image tower (CLIP-ReID): a rectangular input (256x128 persons,
256x256 vehicles), a patch conv with stride 16 or 12 (overlapping patches), and the 14x14
position grid resized bilinearly to the re-id grid when weights are loaded. `RN50` (the modified
ResNet, see clip_resnet.py) is the other supported tower.

Parameter names and their order follow the official CLIP-ReID checkpoints (`image_encoder.*`,
`text_encoder.*`), so their state dicts load as they are.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from humanssl.errors import UserError
from humanssl.models.clip_resnet import ReidModifiedResNet, resnet_grid

CLIP_EXTRA = "needs open_clip_torch: pip install 'humanssl[clip]'"


def import_open_clip():
    try:
        import open_clip
    except ImportError as e:
        raise UserError(f"CLIP-ReID {CLIP_EXTRA}") from e
    return open_clip


def reid_grid(input_size: tuple[int, int], stride: int, patch: int = 16) -> tuple[int, int]:
    """(rows, cols) of the patch grid for an input size and a patch stride (CLIP-ReID's formula)."""
    h, w = input_size
    if stride < 1 or stride > patch or h < patch or w < patch:
        raise UserError(f"clip: input {h}x{w} with patch stride {stride} (patch {patch}): expected "
                        f"1 <= stride <= {patch} and both sides >= {patch}")
    return (h - patch) // stride + 1, (w - patch) // stride + 1


SUPPORTED = ("ViT-B-16", "RN50")
POS_KEY = {"ViT-B-16": "visual.positional_embedding", "RN50": "visual.attnpool.positional_embedding"}


def resize_pos_embed(posemb: Tensor, rows: int, cols: int, key: str = "visual.positional_embedding") -> Tensor:
    """(1 + g*g, D) square position grid -> (1 + rows*cols, D), bilinear, as the official loader."""
    cls_pos, grid = posemb[:1], posemb[1:]
    g = int(math.sqrt(len(grid)))
    if g * g != len(grid):
        raise UserError(f"clip weights: {key} has {len(grid)} grid tokens, "
                        "expected a square number")
    grid = grid.reshape(1, g, g, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(rows, cols), mode="bilinear")
    return torch.cat([cls_pos, grid.permute(0, 2, 3, 1).reshape(rows * cols, -1)], dim=0)


def official_block_order(transformer: nn.Module) -> None:
    # open_clip registers ln_1 before attn; OpenAI's CLIP (and so every CLIP-ReID checkpoint)
    # lists attn, ln_1, mlp, ln_2. Only the state-dict order changes, never the computation.
    for blk in transformer.resblocks:
        order = ["attn", "ln_1", "mlp", "ln_2"]
        blk._modules = OrderedDict([(k, blk._modules[k]) for k in order] +
                                   [(k, m) for k, m in blk._modules.items() if k not in order])


class ReidVisionTransformer(nn.Module):
    """CLIP's ViT image tower returning the token maps CLIP-ReID uses.

    forward(x, cv_emb) -> (tokens after the second-to-last block, tokens after the last block
    and ln_post, those projected by `proj`); `cv_emb` (B, width), the side-information
    embedding, is added to the CLS token before the position embedding.
    """

    def __init__(self, visual: nn.Module, rows: int, cols: int, stride: int):
        super().__init__()
        width = visual.conv1.out_channels
        self.class_embedding = visual.class_embedding
        self.positional_embedding = nn.Parameter(
            visual.class_embedding.new_empty(rows * cols + 1, width).normal_(std=width ** -0.5))
        self.proj = visual.proj
        self.conv1 = visual.conv1
        self.conv1.stride = (stride, stride)
        self.ln_pre = visual.ln_pre
        self.transformer = visual.transformer
        self.ln_post = visual.ln_post
        official_block_order(self.transformer)
        self.grid = (rows, cols)
        self.width = width
        self.proj_dim = self.proj.shape[1]

    def embed(self, x: Tensor, cv_emb: Tensor | None = None) -> Tensor:
        x = self.conv1(x.to(self.conv1.weight.dtype))
        if x.shape[-2:] != self.grid:
            raise UserError(f"clip image encoder: input {tuple(x.shape[-2:])} patches, the model was built "
                            f"for a {self.grid[0]}x{self.grid[1]} grid (check input.size / stride)")
        x = x.flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        if cv_emb is not None:
            cls = cls + cv_emb[:, None]
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        return self.ln_pre(x)

    def forward(self, x: Tensor, cv_emb: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        x = self.embed(x, cv_emb)
        blocks = self.transformer.resblocks
        for blk in blocks[:-1]:
            x = blk(x)
        last = x
        x = self.ln_post(blocks[-1](x))
        return last, x, x @ self.proj

    def pooled(self, x: Tensor, cv_emb: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """The CLS token of each output: (after block L-1, after block L + ln_post, projected)."""
        last, x, x_proj = self(x, cv_emb)
        return last[:, 0], x[:, 0], x_proj[:, 0]


class TextEncoder(nn.Module):
    """CLIP's text transformer on given token embeddings (no token embedding of its own):
    the feature is the EOT token (the highest token id) after ln_final, times text_projection."""

    def __init__(self, clip_model: nn.Module):
        super().__init__()
        self.positional_embedding = clip_model.positional_embedding
        self.text_projection = clip_model.text_projection
        self.transformer = clip_model.transformer
        self.ln_final = clip_model.ln_final
        official_block_order(self.transformer)
        n = clip_model.positional_embedding.shape[0]
        causal = torch.full((n, n), float("-inf"), device=clip_model.positional_embedding.device).triu_(1)
        self.register_buffer("attn_mask", causal, persistent=False)

    def forward(self, prompts: Tensor, tokenized_prompts: Tensor) -> Tensor:
        x = prompts + self.positional_embedding.to(prompts.dtype)
        for blk in self.transformer.resblocks:
            x = blk(x, attn_mask=self.attn_mask)
        x = self.ln_final(x)
        eot = tokenized_prompts.to(x.device).argmax(dim=-1)
        if eot.numel() == 1:
            eot = eot.expand(x.shape[0])
        return x[torch.arange(x.shape[0], device=x.device), eot] @ self.text_projection


def read_openai_state_dict(path: str | Path) -> dict[str, Tensor]:
    """OpenAI's CLIP file (TorchScript archive or plain state dict) as a float32 state dict."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"clip weights: {path} is not a file (expected OpenAI's ViT-B-16.pt or RN50.pt)")
    try:
        with warnings.catch_warnings():  # torch.jit.load is deprecated, but OpenAI's files are TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            sd = torch.jit.load(str(path), map_location="cpu").state_dict()
    except (RuntimeError, ValueError):
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
            raise UserError(f"clip weights: cannot read {path} as a CLIP checkpoint ({e})") from e
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    if "visual.conv1.weight" not in sd or "token_embedding.weight" not in sd:
        raise UserError(f"clip weights: {path} has no visual.conv1.weight / token_embedding.weight; "
                        "expected an OpenAI CLIP checkpoint")
    for key in ("input_resolution", "context_length", "vocab_size"):
        sd.pop(key, None)
    return {k: v.float() for k, v in sd.items()}


def clip_config(name: str, overrides: dict | None = None) -> dict:
    """open_clip's model config for `name`, with nested overrides (tiny towers in tests)."""
    open_clip = import_open_clip()
    if name not in SUPPORTED:
        raise UserError(f"clip: model {name!r} is not supported; expected one of {', '.join(SUPPORTED)}")
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise UserError(f"clip: open_clip has no config for {name!r}")
    for key, value in (overrides or {}).items():
        if isinstance(value, dict):
            cfg[key] = {**cfg.get(key, {}), **value}
        else:
            cfg[key] = value
    return cfg


def build_clip_towers(name: str, input_size: tuple[int, int], stride: int, weights: str | Path | None,
                      random_init: bool = False, overrides: dict | None = None, last_stride: int = 1):
    """(image encoder, text encoder, token embedding) of a CLIP model adapted to re-id input.

    `weights`: path of OpenAI's checkpoint; None is only allowed with `random_init=True`.
    `stride` is the ViT patch stride (RN50 takes only 16); `last_stride` the RN50 layer-4 stride.
    """
    if weights is None and not random_init:
        raise UserError(f"clip: no weights given. Name OpenAI's {name}.pt file (clip.weights=PATH; it is "
                        "never downloaded), or set clip.random_init=true for random towers")
    open_clip = import_open_clip()
    cfg = clip_config(name, overrides)
    resnet = name == "RN50"
    if resnet:
        if stride != 16:
            raise UserError(f"clip RN50: patch stride {stride} (overlapping patches) is ViT-only; "
                            "set model.stride=16")
        rows, cols = resnet_grid(input_size, last_stride)
    else:
        rows, cols = reid_grid(input_size, stride, cfg["vision_cfg"]["patch_size"])
    # QuickGELU as OpenAI trained it (the text tower of RN50 too; the ResNet itself uses ReLU)
    clip = open_clip.model.CLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"], quick_gelu=True)
    if weights is not None:
        sd = read_openai_state_dict(weights)
        key = POS_KEY[name]
        if key not in sd:
            raise UserError(f"clip weights {weights}: no {key}; not an OpenAI {name} checkpoint (clip.name={name})")
        sd[key] = resize_pos_embed(sd[key], rows, cols, key)
        owner = clip.visual.attnpool if resnet else clip.visual
        owner.positional_embedding = nn.Parameter(torch.empty_like(sd[key]))
        _load_strict(clip, sd, weights)
    if resnet:
        return ReidModifiedResNet(clip.visual, rows, cols, last_stride), TextEncoder(clip), clip.token_embedding
    visual = ReidVisionTransformer(clip.visual, rows, cols, stride)
    if weights is not None:
        with torch.no_grad():
            visual.positional_embedding.copy_(clip.visual.positional_embedding)
    return visual, TextEncoder(clip), clip.token_embedding


def _load_strict(clip: nn.Module, sd: dict[str, Tensor], path) -> None:
    own = clip.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [f"{k} {tuple(sd[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if k in sd and sd[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise UserError(f"clip weights {path}: does not match the configured tower "
                        f"(missing {missing[:3]}, unexpected {unexpected[:3]}, shape mismatch {wrong[:3]})")
    clip.load_state_dict(sd)
