"""SOLIDER's Swin Transformer: the mmdet-style Swin plus the "semantic controller".

The controller takes a per-sample pair s = (lambda, 1 - lambda) -- lambda = 1 is the semantic
end, 0 the appearance end -- and, after stage i, modulates the tokens handed to stage i + 1:
    x <- x * softplus(semantic_embed_w[i](s)) + semantic_embed_b[i](s)
The per-stage outputs are taken before that modulation, so stage 0's map never depends on
lambda, and the i = 3 pair changes nothing (it exists in every official checkpoint anyway).

`forward(x, semantic_weight)` returns (pooled, [stage maps]) as the official model does;
`SwinTransformer(..., pooled_only=True)` returns just the pooled (B, D) feature, which is what
the backbone registry hands to methods. Module names follow the official state dict exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from humanssl.models.swin_layers import PatchEmbed, PatchMerging, SwinBlock

SemanticWeight = float | Tensor | None


class SwinStage(nn.Module):
    """`depth` blocks (odd ones shifted), then the optional patch merging."""

    def __init__(self, embed_dims: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float,
                 drop_path_rates: list[float], downsample: PatchMerging | None, with_cp: bool = False,
                 **block_kwargs) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.blocks = nn.ModuleList(
            SwinBlock(embed_dims, num_heads, mlp_ratio, window_size, shift=j % 2 == 1,
                      drop_path_rate=drop_path_rates[j], **block_kwargs)
            for j in range(depth)
        )
        self.downsample = downsample

    def forward(self, x: Tensor, hw: tuple[int, int]) -> tuple[Tensor, tuple[int, int], Tensor, tuple[int, int]]:
        """Returns (tokens for the next stage, their grid, this stage's output, its grid)."""
        for block in self.blocks:
            if self.with_cp and x.requires_grad:
                x = checkpoint(block, x, hw, use_reentrant=False)
            else:
                x = block(x, hw)
        if self.downsample is None:
            return x, hw, x, hw
        down, down_hw = self.downsample(x, hw)
        return down, down_hw, x, hw


class SwinTransformer(nn.Module):
    """Arguments keep the official names and defaults (`embed_dims`, `strides`, ...).

    strides: patch-embedding stride then one merging stride per later stage; (4, 2, 2, 2) is the
    default, (4, 2, 1, 1) the pose config and (4, 2, 2, 1) the detection config.
    semantic_weight: the lambda used when forward() gets none; a negative value builds a plain
    Swin without the controller (and forward then ignores any lambda it is given).
    """

    def __init__(self, embed_dims: int = 96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), *,
                 in_channels: int = 3, patch_size: int = 4, window_size: int = 7, mlp_ratio: float = 4.0,
                 strides=(4, 2, 2, 2), out_indices=(0, 1, 2, 3), qkv_bias: bool = True,
                 qk_scale: float | None = None, patch_norm: bool = True, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0, with_cp: bool = False,
                 semantic_weight: float = 0.0, pooled_only: bool = False) -> None:
        super().__init__()
        if strides[0] != patch_size:
            raise ValueError(f"strides[0] ({strides[0]}) must equal patch_size ({patch_size}): patches do not overlap")
        if len(strides) != len(depths) or len(num_heads) != len(depths):
            raise ValueError("depths, num_heads and strides need one entry per stage")
        n = len(depths)
        self.out_indices = tuple(out_indices)
        self.pooled_only = pooled_only
        self.semantic_weight = semantic_weight
        self.num_features = [embed_dims * 2**i for i in range(n)]
        self.embed_dim = self.num_features[-1]  # what the backbone registry promises: pooled width

        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size, norm=patch_norm)
        self.drop_after_pos = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()  # stochastic depth grows linearly
        self.stages = nn.ModuleList()
        for i in range(n):
            width = self.num_features[i]
            down = PatchMerging(width, 2 * width, strides[i + 1], norm=patch_norm) if i < n - 1 else None
            self.stages.append(SwinStage(
                width, depths[i], num_heads[i], window_size, mlp_ratio, dpr[sum(depths[:i]):sum(depths[:i + 1])],
                down, with_cp=with_cp, qkv_bias=qkv_bias, qk_scale=qk_scale, drop_rate=drop_rate,
                attn_drop_rate=attn_drop_rate,
            ))
        for i in self.out_indices:
            self.add_module(f"norm{i}", nn.LayerNorm(self.num_features[i]))
        if semantic_weight >= 0:
            # The controller after the last stage has the last stage's width (official layout).
            widths = [self.num_features[min(i + 1, n - 1)] for i in range(n)]
            self.semantic_embed_w = nn.ModuleList(nn.Linear(2, d) for d in widths)
            self.semantic_embed_b = nn.ModuleList(nn.Linear(2, d) for d in widths)
            for layer in (*self.semantic_embed_w, *self.semantic_embed_b):
                nn.init.trunc_normal_(layer.weight, std=0.02, a=-2.0, b=2.0)
                nn.init.zeros_(layer.bias)
        # The rest keeps PyTorch's default init with zero bias tables: SOLIDER's pre-training
        # never calls init_weights(). Call it for the mmdet from-scratch init instead.

    @property
    def has_controller(self) -> bool:
        return self.semantic_weight >= 0

    def init_weights(self) -> None:
        """The official from-scratch init: truncated normal (std 0.02) Linear weights, zero
        biases, LayerNorm (1, 0). SOLIDER's pre-training does not use it."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02, a=-2.0, b=2.0)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def semantic_input(self, semantic_weight: SemanticWeight, x: Tensor) -> Tensor:
        """The (B, 2) controller input. Accepts None (the constructor's lambda), a float, a
        (B,) or (B, 1) tensor of lambdas, or a ready (B, 2) tensor of (lambda, 1 - lambda) rows."""
        ref = self.semantic_embed_w[0].weight
        b = x.shape[0]
        if semantic_weight is None:
            semantic_weight = self.semantic_weight
        if not isinstance(semantic_weight, Tensor):
            lam = torch.full((b, 1), float(semantic_weight), device=x.device, dtype=ref.dtype)
            return torch.cat([lam, 1 - lam], dim=1)
        s = semantic_weight.to(device=x.device, dtype=ref.dtype)
        if s.dim() == 2 and s.shape == (b, 2):
            return s
        if s.dim() == 0 or (s.dim() <= 2 and s.shape[0] == b and s.numel() == b):
            lam = s.reshape(-1, 1).expand(b, 1)
            return torch.cat([lam, 1 - lam], dim=1)
        raise ValueError(
            f"semantic_weight must be a float, a ({b},) tensor of lambdas or a ({b}, 2) tensor of "
            f"(lambda, 1 - lambda) rows; got shape {tuple(s.shape)}"
        )

    def forward_stages(self, x: Tensor, semantic_weight: SemanticWeight = None,
                       _last_only: bool = False) -> tuple[Tensor, list[Tensor]]:
        """(pooled (B, D), [stage maps (B, C_i, H_i, W_i) for i in out_indices])."""
        s = self.semantic_input(semantic_weight, x) if self.has_controller else None
        wanted = self.out_indices[-1:] if _last_only else self.out_indices
        x, hw = self.patch_embed(x)
        x = self.drop_after_pos(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x, hw, out, out_hw = stage(x, hw)
            if s is not None:
                scale = F.softplus(self.semantic_embed_w[i](s)).unsqueeze(1)
                x = x * scale + self.semantic_embed_b[i](s).unsqueeze(1)
            if i in wanted:
                out = getattr(self, f"norm{i}")(out)
                outs.append(out.view(-1, *out_hw, out.shape[-1]).permute(0, 3, 1, 2).contiguous())
        pooled = torch.flatten(F.adaptive_avg_pool2d(outs[-1], 1), 1)
        return pooled, outs

    def forward(self, x: Tensor, semantic_weight: SemanticWeight = None):
        if self.pooled_only:  # the other stage norms would be computed for nothing
            return self.forward_stages(x, semantic_weight, _last_only=True)[0]
        return self.forward_stages(x, semantic_weight)


def freeze_unreached_by_pooled(swin: SwinTransformer) -> None:
    """Turn off gradients of the parameters the pooled feature never reaches: the norms of the
    earlier stage maps and the controller after the last stage (it modulates tokens nothing reads).

    They would get no gradient anyway, so optimizers leave them untouched; marking them keeps
    DistributedDataParallel from waiting for gradients that never come.
    """
    last = len(swin.stages) - 1
    unreached = [f"norm{i}." for i in swin.out_indices[:-1]]
    unreached += [f"semantic_embed_w.{last}.", f"semantic_embed_b.{last}."]
    for name, p in swin.named_parameters():
        if name.startswith(tuple(unreached)):
            p.requires_grad_(False)


# ---------------------------------------------------------------- factories
# Patch 4, window 7, MLP ratio 4, qkv bias, no absolute position embedding, dropouts 0: the
# official swin_*_patch4_window7_224 factories. Keyword arguments reach SwinTransformer.
ARCHS = {
    "swin_tiny": dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "swin_small": dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "swin_base": dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    # The conformance fixture's model (580k parameters), also the CPU demo size.
    "swin_mini": dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8)),
}


def swin_tiny(**kwargs) -> SwinTransformer:
    return SwinTransformer(**{**ARCHS["swin_tiny"], **kwargs})


def swin_small(**kwargs) -> SwinTransformer:
    return SwinTransformer(**{**ARCHS["swin_small"], **kwargs})


def swin_base(**kwargs) -> SwinTransformer:
    return SwinTransformer(**{**ARCHS["swin_base"], **kwargs})


def swin_mini(**kwargs) -> SwinTransformer:
    return SwinTransformer(**{**ARCHS["swin_mini"], **kwargs})
