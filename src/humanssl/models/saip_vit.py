"""SAIP's image encoder (`SAIPViT`, the `backbone` of the official `csl_vit_tiny_patch16`).

A plain pre-norm ViT with three SAIP-specific traits:
  * two token sets come out: the tokens after block `out_index` (6) through `inter_norm`, used
    by the reconstruction (CSR) and search (CSS) decoders, and the final tokens through `norm`;
  * the block that runs last also returns its attention pair [softmax(q k^T s), softmax(v v^T s)]
    for the CSM attention-distillation term;
  * one learnable position table anchored on the patch grid of `img_size` (16x8 for 256x128);
    other input sizes resample it, by default as the official code does (the 128 rows as a 1-D
    sequence, `pos_resample="sequence"`), optionally on the 2-D grid (`pos_resample="grid"`).
The masked forward is the official one: MAE random masking, or (`with_anchor_mask=True`, CSR)
a mask drawn on the anchor grid and nearest-up-sampled to the input's patch grid.

`forward_features(...)` returns the official 4-tuple ([inter, final], mask, ids_restore,
attention pair) as a named tuple; `forward` does the same unless the model is built with
`pooled_only=True` (the backbone registry), then it returns the final CLS token (B, D).
State-dict keys are the official ones, in the official order.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from humanssl.errors import UserError
from humanssl.models.saip_vit_layers import POS_RESAMPLE_MODES, Block, PatchEmbed, resample_pos_embed

MaskOut = Tensor | list[Tensor] | None
# "official": the SAIP code's init; "dino": the DINO ViT's (which the mini ViT learns from on CPU)
INITS = ("official", "dino")


class SAIPViTOutput(NamedTuple):
    outs: list[Tensor]  # [inter, final] (B, 1 + kept, D); only [inter] with get_intermediate_only
    mask: MaskOut  # random masking: (B, L) 1 = removed; anchor masking: [keep (B,1,ah,aw), removed (B, L)]
    ids_restore: Tensor | None  # (B, L), undoes the shuffle
    attn: list[Tensor] | None  # [qk, vv] of the last block run, each (B, heads, N, N)


class SAIPViT(nn.Module):
    """Official constructor arguments; `out_index`, `drop_path_rate`, `pos_resample` and
    `pooled_only` are ours (the official values are (6,), 0, "sequence", False)."""

    def __init__(self, img_size=(256, 128), patch_size=(16, 16), in_chans: int = 3, embed_dim: int = 1024,
                 depth: int = 24, num_heads: int = 16, mlp_ratio: float = 4.0, norm_layer=None, *,
                 out_index=(6,), drop_path_rate: float = 0.0, pos_resample: str = "sequence",
                 pooled_only: bool = False, init: str = "official") -> None:
        super().__init__()
        if init not in INITS:
            raise UserError(f"init must be one of {', '.join(INITS)}, not '{init}'")
        if pos_resample not in POS_RESAMPLE_MODES:
            raise UserError(f"pos_resample must be one of {', '.join(POS_RESAMPLE_MODES)}, not '{pos_resample}'")
        if embed_dim % num_heads:
            raise UserError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        norm_layer = norm_layer or partial(nn.LayerNorm, eps=1e-6)
        self.in_chans = in_chans
        self.embed_dim = self.num_features = embed_dim
        self.pos_resample = pos_resample
        self.pooled_only = pooled_only
        self.out_index = list(out_index)

        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.patch_size = self.patch_embed.patch_size
        self.anchor_size = self.patch_embed.grid_size
        self.anchor_patches = self.patch_embed.num_patches
        # Official init: both drawn from U[0, 1); the CLS token is then re-drawn, the table is not.
        self.cls_token = nn.Parameter(torch.rand(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.rand(1, self.anchor_patches + 1, embed_dim))
        dpr = torch.linspace(0, drop_path_rate, depth, device="cpu").tolist()
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, drop_path=dpr[i], norm_layer=norm_layer)
            for i in range(depth)
        )
        self.norm = norm_layer(embed_dim)
        self.inter_norm = norm_layer(embed_dim)
        self.initialize_weights(init)

    def initialize_weights(self, init: str = "official") -> None:
        """official: Xavier-uniform patch conv (as a matrix) and Linear weights, CLS ~ N(0, 0.02),
        the position table kept at its U[0, 1) draw. dino: DINO's ViT init, truncated normal
        (std 0.02) CLS, position table and Linear weights, PyTorch's default for the patch conv.
        Both: zero Linear biases, LayerNorm (1, 0)."""
        if init == "official":
            w = self.patch_embed.proj.weight.data
            nn.init.xavier_uniform_(w.view(w.shape[0], -1))
            nn.init.normal_(self.cls_token, std=0.02)
            linear_init = nn.init.xavier_uniform_
        else:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
            linear_init = partial(nn.init.trunc_normal_, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                linear_init(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # ------------------------------------------------------------ masking
    def random_masking(self, x: Tensor, mask_ratio: float, noise: Tensor | None = None):
        """MAE's per-sample masking: keep the int(L (1 - r)) tokens with the smallest noise."""
        b, n, d = x.shape
        len_keep = int(n * (1 - mask_ratio))
        noise = torch.rand(b, n, device=x.device) if noise is None else noise
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        x = torch.gather(x, 1, ids_shuffle[:, :len_keep, None].expand(-1, -1, d))
        mask = torch.ones(b, n, device=x.device)
        mask[:, :len_keep] = 0
        return x, torch.gather(mask, 1, ids_restore), ids_restore

    def anchor_keep_mask(self, noise: Tensor, mask_ratio: float) -> Tensor:
        """(B, 1, ah, aw): 1 at the int(A (1 - r)) anchor cells with the smallest noise."""
        keep = int(self.anchor_patches * (1 - mask_ratio))
        order = torch.argsort(noise, dim=1)
        base = torch.zeros(noise.shape, device=noise.device).scatter_(1, order[:, :keep], 1.0)
        return base.view(-1, 1, *self.anchor_size)

    def random_masking_with_ref_anchor(self, x: Tensor, mask_ratio: float, grid: tuple[int, int],
                                       noise: Tensor | None = None, ids_shuffle: Tensor | None = None):
        """The CSR mask: drawn on the anchor grid, nearest-up-sampled to `grid`; the first
        int(L (1 - r)) tokens of argsort(removed) are kept. The up-sampled mask generally marks
        a different number of tokens kept than are kept (official behaviour); which of the tied
        tokens come first is up to torch's unstable sort, or given as `ids_shuffle`."""
        b, n, d = x.shape
        len_keep = int(n * (1 - mask_ratio))
        noise = torch.rand(b, self.anchor_patches, device=x.device) if noise is None else noise
        base_mask = self.anchor_keep_mask(noise, mask_ratio)
        removed = 1 - F.interpolate(base_mask, size=grid).flatten(1)
        if ids_shuffle is None:
            ids_shuffle = torch.argsort(removed, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        x = torch.gather(x, 1, ids_shuffle[:, :len_keep, None].expand(-1, -1, d))
        return x, [base_mask, removed], ids_restore

    # ------------------------------------------------------------ forward
    def pos_embed_for(self, grid: tuple[int, int]) -> Tensor:
        """The (1, 1 + h w, D) position table added at a patch grid of h x w."""
        return resample_pos_embed(self.pos_embed, self.anchor_size, grid, self.pos_resample)

    def forward_features(self, x: Tensor, mask_ratio: float = 0.0, with_anchor_mask: bool = False,
                         get_intermediate_only: bool = False, *, noise: Tensor | None = None,
                         ids_shuffle: Tensor | None = None, with_attention: bool = True) -> SAIPViTOutput:
        """The official forward. `noise` fixes the mask draw ((B, anchor cells) with the anchor
        mask, (B, L) without); `ids_shuffle` (B, L) fixes the anchor-masked token order (to
        replay a recorded run); `with_attention=False` skips the explicit attention pair."""
        grid = self._check_input(x, mask_ratio)
        b, n = x.shape[0], grid[0] * grid[1]
        x = self.patch_embed(x)
        pos_embed = self.pos_embed_for(grid)
        x = x + pos_embed[:, 1:]

        mask = ids_restore = None
        if mask_ratio > 0:
            if with_anchor_mask:
                _check_shape(noise, (b, self.anchor_patches), "noise (one value per anchor cell)")
                _check_shape(ids_shuffle, (b, n), "ids_shuffle (one index per patch)")
                x, mask, ids_restore = self.random_masking_with_ref_anchor(x, mask_ratio, grid, noise, ids_shuffle)
            else:
                _check_shape(noise, (b, n), "noise (one value per patch)")
                x, mask, ids_restore = self.random_masking(x, mask_ratio, noise)

        cls = (self.cls_token + pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)

        stop = min(self.out_index) if get_intermediate_only and self.out_index else len(self.blocks) - 1
        stop = min(stop, len(self.blocks) - 1)
        outs, attn = [], None
        for i, blk in enumerate(self.blocks[:stop + 1]):
            x, attn = blk(x, return_attention=with_attention and i == stop)
            if i in self.out_index:
                outs.append(self.inter_norm(x))
                if get_intermediate_only:
                    return SAIPViTOutput(outs, mask, ids_restore, attn)
        outs.append(self.norm(x))
        return SAIPViTOutput(outs, mask, ids_restore, attn)

    def forward(self, x: Tensor, mask_ratio: float = 0.0, with_anchor_mask: bool = False,
                get_intermediate_only: bool = False, **kwargs):
        if not self.pooled_only:
            return self.forward_features(x, mask_ratio, with_anchor_mask, get_intermediate_only, **kwargs)
        kwargs.setdefault("with_attention", False)
        out = self.forward_features(x, mask_ratio, with_anchor_mask, get_intermediate_only, **kwargs)
        return out.outs[-1][:, 0]

    def _check_input(self, x: Tensor, mask_ratio: float) -> tuple[int, int]:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != self.in_chans:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise UserError(f"SAIPViT expects images of shape (B, {self.in_chans}, H, W), got {got}")
        ph, pw = x.shape[2] // self.patch_size[0], x.shape[3] // self.patch_size[1]
        if ph < 1 or pw < 1:
            raise UserError(f"SAIPViT input {tuple(x.shape[2:])} is smaller than one {self.patch_size} patch")
        if not 0 <= mask_ratio < 1:
            raise UserError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        return ph, pw


def _check_shape(t: Tensor | None, shape: tuple[int, int], what: str) -> None:
    if t is not None and tuple(t.shape) != shape:
        raise UserError(f"{what} must have shape {shape}, got {tuple(t.shape)}")


def freeze_unreached_by_pooled(model: SAIPViT) -> None:
    """`inter_norm` never reaches the pooled CLS feature; without gradients marked off, DDP
    would wait for it."""
    for p in model.inter_norm.parameters():
        p.requires_grad_(False)


# ---------------------------------------------------------------- weights
_ROOTS = ("cls_token", "pos_embed", "patch_embed.", "blocks.", "norm.", "inter_norm.")


def load_saip_weights(model: SAIPViT, path: str | Path, which: str = "teacher",
                      trust_checkpoint: bool = False) -> None:
    """Load the backbone from an official SAIP checkpoint (its `teacher` or `student`, decoders
    left out), a bare backbone state dict, or a humanssl run folder."""
    # imported here: the hub imports the models, not the reverse
    from humanssl.hub.reading import read_checkpoint, unwrap_state_dict
    from humanssl.models.backbones import load_state_checked

    obj = read_checkpoint(path, trust_checkpoint=trust_checkpoint)
    if isinstance(obj, dict) and isinstance(obj.get(which), dict):
        obj = obj[which]
    tensors = unwrap_state_dict(obj, str(path))
    if any(k.startswith(f"{which}.") for k in tensors):  # a humanssl model.safetensors
        tensors = {k.removeprefix(f"{which}."): v for k, v in tensors.items() if k.startswith(f"{which}.")}
    state = {}
    for k, v in tensors.items():
        k = k.removeprefix("module.").removeprefix("backbone.")
        if k.startswith(_ROOTS):  # decoders (csm_/csr_/css_decoder) are not the backbone
            state[k] = v
    if not state:
        raise UserError(f"{path}: no SAIP backbone weights found (keys such as 'backbone.blocks.0.attn.qkv.weight' "
                        f"expected); its keys look like: {', '.join(sorted(tensors)[:5])}")
    load_state_checked(model, state, f"SAIP weights {path}")


# ---------------------------------------------------------------- factories
# Patch 16x16, MLP x4, qkv bias, LayerNorm eps 1e-6 (official csl_vit_tiny_patch16).
ARCHS = {
    "saip_vit_tiny": dict(embed_dim=192, depth=12, num_heads=3),
    # The conformance fixture's model (130,528 parameters), also the CPU demo size.
    "saip_vit_mini": dict(embed_dim=32, depth=8, num_heads=2),
}


def saip_vit_tiny(**kwargs) -> SAIPViT:
    return SAIPViT(**{"img_size": (256, 128), "patch_size": (16, 16), **ARCHS["saip_vit_tiny"], **kwargs})


def saip_vit_mini(**kwargs) -> SAIPViT:
    return SAIPViT(**{"img_size": (256, 128), "patch_size": (16, 16), **ARCHS["saip_vit_mini"], **kwargs})
