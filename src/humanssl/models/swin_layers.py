"""The parts of SOLIDER's Swin Transformer: patch embedding, (shifted) window attention, the
Swin block and patch merging. `swin.py` assembles them.

SOLIDER uses the mmdet/mmseg port of Swin, not Microsoft's original, and its released weights
carry that port's module names, so they are kept here even where they are ugly
(`attn.w_msa`, `ffn.layers.0.0`, `ffn.layers.1`, `patch_embed.projection`): official
checkpoints then load with nothing but a prefix strip.

Two behaviours of that port differ from Microsoft's Swin and matter for parity:
  * maps are zero-padded to a multiple of the window *after* norm1, and padded tokens are not
    masked out in plain windows; the window is never shrunk and the shift never dropped, even
    when the map is smaller than one window;
  * patch merging gathers each 2x2 patch in `nn.Unfold` order (feature c*4 + kh*2 + kw), where
    Microsoft concatenates the four pixels (feature (kw*2 + kh)*C + c); `hub.py` converts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import Tensor, nn

SHIFT_MASK_VALUE = -100.0  # the logit penalty between tokens from different regions of a shifted window


def pad_right_bottom(x: Tensor, kernel: int, stride: int) -> Tensor:
    """Zero-pad an NCHW map right/bottom so that a kernel with this stride covers all of it."""
    h, w = x.shape[-2:]
    pad_h = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
    pad_w = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
    return F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x


class PatchEmbed(nn.Module):
    """Non-overlapping patches (conv with kernel = stride = patch size), then LayerNorm."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int, norm: bool = True) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.projection = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims) if norm else None

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        x = self.projection(pad_right_bottom(x, self.patch_size, self.patch_size))
        hw = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)
        return (self.norm(x) if self.norm is not None else x), hw


def relative_position_index(window: int) -> Tensor:
    """(N, N) row of the bias table for query (y1, x1) and key (y2, x2), N = window**2:
    (y1 - y2 + window - 1) * (2 * window - 1) + (x1 - x2 + window - 1)."""
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + window - 1
    dx = xs[:, None] - xs[None, :] + window - 1
    return dy * (2 * window - 1) + dx


class WindowMSA(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative position bias.
    Holds the parameters; the windowing itself is done by `ShiftWindowMSA`."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, qkv_bias: bool = True,
                 qk_scale: float | None = None, attn_drop_rate: float = 0.0, proj_drop_rate: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.scale = qk_scale  # None: SDPA's default head_dim ** -0.5, as the official code
        self.attn_drop_rate = attn_drop_rate
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate)

    def position_bias(self) -> Tensor:
        n = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1)  # (heads, N, N)

    def forward(self, windows: Tensor, shift_mask: Tensor | None) -> Tensor:
        """windows: (B, nW, N, C); shift_mask: (nW, N, N) or None. Returns (B, nW, N, C)."""
        b, nw, n, c = windows.shape
        heads = self.num_heads
        qkv = self.qkv(windows).view(b, nw, n, 3, heads, c // heads).permute(3, 0, 1, 4, 2, 5)
        # Windows go into the head axis, (B, nW*heads, N, d): the bias + shift mask then is one
        # (1, nW*heads, N, N) tensor broadcast over the batch, instead of a copy per image.
        q, k, v = (t.reshape(b, nw * heads, n, c // heads) for t in qkv)
        mask = self.position_bias().unsqueeze(0)  # (1, heads, N, N)
        if shift_mask is not None:
            mask = mask + shift_mask.unsqueeze(1)
        mask = mask.expand(nw, heads, n, n).reshape(1, nw * heads, n, n).to(q.dtype)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_drop_rate if self.training else 0.0, scale=self.scale
        )
        out = out.view(b, nw, heads, n, c // heads).transpose(2, 3).reshape(b, nw, n, c)
        return self.proj_drop(self.proj(out))


def shift_window_mask(h_pad: int, w_pad: int, window: int, shift: int, device) -> Tensor:
    """(nW, N, N) mask for a map rolled by -shift: tokens that were not neighbours before the
    roll (different regions of the 3x3 split at -window and -shift) get SHIFT_MASK_VALUE."""
    labels = torch.zeros(h_pad, w_pad, device=device)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, rows in enumerate(bands):
        for j, cols in enumerate(bands):
            labels[rows, cols] = i * 3 + j
    labels = partition(labels[None, :, :, None], window).flatten(2).squeeze(0)  # (nW, N)
    differ = labels[:, :, None] != labels[:, None, :]
    return torch.zeros_like(differ, dtype=torch.float32).masked_fill(differ, SHIFT_MASK_VALUE)


def partition(x: Tensor, window: int) -> Tensor:
    """(B, H, W, C) -> (B, nW, window*window, C), windows and tokens in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // window) * (w // window), window * window, c)


def unpartition(windows: Tensor, window: int, h: int, w: int) -> Tensor:
    b, c = windows.shape[0], windows.shape[-1]
    x = windows.view(b, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


class ShiftWindowMSA(nn.Module):
    """Pad to whole windows, optionally roll by -shift, attend per window, undo both."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, shift_size: int = 0, **attn_kwargs) -> None:
        super().__init__()
        self.window_size, self.shift_size = window_size, shift_size
        self.w_msa = WindowMSA(embed_dims, num_heads, window_size, **attn_kwargs)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        b, _, c = x.shape
        (h, w), ws, shift = hw, self.window_size, self.shift_size
        x = x.view(b, h, w, c)
        x = F.pad(x, (0, 0, 0, (ws - w % ws) % ws, 0, (ws - h % ws) % ws))
        h_pad, w_pad = x.shape[1], x.shape[2]
        mask = None
        if shift:
            x = torch.roll(x, (-shift, -shift), dims=(1, 2))
            mask = shift_window_mask(h_pad, w_pad, ws, shift, x.device)
        x = unpartition(self.w_msa(partition(x, ws), mask), ws, h_pad, w_pad)
        if shift:
            x = torch.roll(x, (shift, shift), dims=(1, 2))
        return x[:, :h, :w, :].reshape(b, h * w, c)


class FFN(nn.Module):
    """Linear -> GELU -> Linear; `layers.0.0` / `layers.1` are the official parameter names."""

    def __init__(self, embed_dims: int, hidden: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, hidden), nn.GELU(), nn.Dropout(drop_rate)),
            nn.Linear(hidden, embed_dims),
            nn.Dropout(drop_rate),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class SwinBlock(nn.Module):
    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float, window_size: int, shift: bool,
                 qkv_bias: bool = True, qk_scale: float | None = None, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = ShiftWindowMSA(
            embed_dims, num_heads, window_size, window_size // 2 if shift else 0,
            qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop_rate=attn_drop_rate, proj_drop_rate=drop_rate,
        )
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = FFN(embed_dims, int(mlp_ratio * embed_dims), drop_rate)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), hw))
        return x + self.drop_path(self.ffn(self.norm2(x)))


class PatchMerging(nn.Module):
    """Gather k x k patches (k = 2) at the given stride in unfold order, LayerNorm, Linear(4C -> out).
    Stride 2 halves the map; stride 1 (pose/detection configs) pads one row/column and keeps it."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, norm: bool = True) -> None:
        super().__init__()
        self.stride = stride
        self.out_channels = out_channels
        self.norm = nn.LayerNorm(4 * in_channels) if norm else None
        self.reduction = nn.Linear(4 * in_channels, out_channels, bias=False)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> tuple[Tensor, tuple[int, int]]:
        b, _, c = x.shape
        x = pad_right_bottom(x.view(b, *hw, c).permute(0, 3, 1, 2), 2, self.stride)
        out_hw = ((x.shape[2] - 2) // self.stride + 1, (x.shape[3] - 2) // self.stride + 1)
        x = F.unfold(x, kernel_size=2, stride=self.stride).transpose(1, 2)  # (B, L', C*4)
        if self.norm is not None:
            x = self.norm(x)
        return self.reduction(x), out_hw
