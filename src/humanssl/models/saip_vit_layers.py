"""The parts of SAIP's ViT: patch embedding, the attention block that can also return its
attention pair, and the two ways of fitting the anchor position table to another patch grid.

Parameter names follow the official `vision_transformer.py` / `models_pretrain.py`
(`patch_embed.proj`, `norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, resample_abs_pos_embed
from torch import Tensor, nn

POS_RESAMPLE_MODES = ("sequence", "grid")


class PatchEmbed(nn.Module):
    """Conv patchify, flattened row-major. Any input size: a border narrower than a patch is
    dropped by the strided conv (112x56 gives 7x3 patches), as in the official code."""

    def __init__(self, img_size=(256, 128), patch_size=(16, 16), in_chans: int = 3, embed_dim: int = 192) -> None:
        super().__init__()
        self.img_size = tuple(img_size)
        self.patch_size = tuple(patch_size)
        self.grid_size = (self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention. With `return_attention` it is computed explicitly and also
    returns SAIP's pair [softmax(q k^T s), softmax(v v^T s)] (the second is what the CSM
    attention-distillation term compares); otherwise through the fused kernel, pair None."""

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False, qk_scale: float | None = None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, return_attention: bool = False) -> tuple[Tensor, list[Tensor] | None]:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        if return_attention:
            qk = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            vv = ((v @ v.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            out, pair = qk @ v, [qk, vv]
        else:
            out, pair = F.scaled_dot_product_attention(q, k, v, scale=self.scale), None
        return self.proj(out.transpose(1, 2).reshape(b, n, c)), pair


class Block(nn.Module):
    """Pre-norm transformer block (the official one has no dropout; stochastic depth is ours,
    off by default)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop_path: float = 0.0, norm_layer=nn.LayerNorm) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: Tensor, return_attention: bool = False) -> tuple[Tensor, list[Tensor] | None]:
        y, pair = self.attn(self.norm1(x), return_attention)
        x = x + self.drop_path(y)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x, pair


def interpolate_pos_encoding(pos_embed: Tensor, npatch: int, with_cls_token: bool = True) -> Tensor:
    """SAIP's resampling (official `interpolate_pos_encoding`, also used by its CSR decoder):
    the patch rows are one sequence, resampled by bicubic interpolation along it to `npatch`
    rows; the 2-D layout of the anchor grid is ignored. The CLS row is kept as it is."""
    n = pos_embed.shape[1] - int(with_cls_token)
    if npatch == n:
        return pos_embed
    rows = pos_embed[:, 1:] if with_cls_token else pos_embed
    d = rows.shape[-1]
    seq = rows.reshape(1, n, 1, d).permute(0, 3, 1, 2)
    # The official call passes the scale factor, which also sets the sampling positions.
    out = F.interpolate(seq, scale_factor=(npatch / n, 1), mode="bicubic")
    if out.shape[2] != npatch:  # floor(n * (npatch / n)) fell one short (only when n is no power of 2)
        out = F.interpolate(seq, size=(npatch, 1), mode="bicubic")
    out = out.permute(0, 2, 3, 1).reshape(1, npatch, d)
    return torch.cat([pos_embed[:, :1], out], dim=1) if with_cls_token else out


def resample_pos_embed(pos_embed: Tensor, anchor_size: tuple[int, int], grid: tuple[int, int],
                       mode: str = "sequence") -> Tensor:
    """The (1, 1 + grid_h * grid_w, D) table for a patch grid. "sequence" is the official 1-D
    resampling; "grid" the usual 2-D bicubic resampling of the anchor grid (timm's, antialiased
    when shrinking), which keeps rows as rows."""
    if mode == "sequence":
        return interpolate_pos_encoding(pos_embed, grid[0] * grid[1])
    if mode == "grid":
        return resample_abs_pos_embed(pos_embed, new_size=list(grid), old_size=list(anchor_size), num_prefix_tokens=1)
    raise ValueError(f"pos_resample must be one of {POS_RESAMPLE_MODES}, not {mode!r}")
