"""Swin state-dict arithmetic: Microsoft <-> SOLIDER key layouts, relative position table
resizing, and reading the architecture off a state dict.

Microsoft's Swin (ImageNet weights) and SOLIDER's mmdet-style Swin hold the same tensors
under other names, except patch merging: Microsoft concatenates the four pixels of a 2x2 patch
as [(0,0), (1,0), (0,1), (1,1)] blocks of C channels (feature (kw*2 + kh)*C + c), the mmdet
port unfolds them channel-major (feature c*4 + kh*2 + kw). The merging LayerNorm and the
reduction's input columns are permuted accordingly.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import Tensor

from humanssl.errors import UserError

_MS_STAGE = re.compile(r"^layers\.(\d+)\.")
# The Microsoft block names that the mmdet port renamed (ours on the right).
_RENAMES = [(".attn.", ".attn.w_msa."), (".mlp.fc1.", ".ffn.layers.0.0."), (".mlp.fc2.", ".ffn.layers.1.")]


def merge_permutation(channels: int) -> Tensor:
    """perm with unfold_features = microsoft_features[..., perm], for 4*channels features."""
    # Microsoft feature index viewed as [kw, kh, c]; read it out in [c, kh, kw] order.
    return torch.arange(4 * channels).view(2, 2, channels).permute(2, 1, 0).reshape(-1)


def is_microsoft_swin(state: dict[str, Tensor]) -> bool:
    return any(_MS_STAGE.match(k) for k in state) and not any(k.startswith("stages.") for k in state)


def microsoft_to_solider(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Microsoft Swin keys -> SOLIDER keys. The classifier (`head.*`) and the cached shift masks
    (`attn_mask`) are dropped. The final `norm` becomes the last stage's output norm; the
    official converter drops it instead (norm3 then keeps its init), which wastes a trained layer."""
    stages = {int(m.group(1)) for k in state if (m := _MS_STAGE.match(k))}
    if not stages:
        raise UserError("not a Microsoft Swin state dict: no 'layers.N.' keys")
    last = max(stages)
    merges = {int(m.group(1)) for k in state if (m := _MS_STAGE.match(k)) and ".downsample." in k}
    if merges and 0 not in merges:  # timm re-saves Microsoft's weights with merging moved forward
        raise UserError(
            "this Swin state dict merges patches at the start of stages 1-3 (timm's layout), not at the "
            "end of stages 0-2 (Microsoft's); convert it with timm to the Microsoft layout first"
        )
    out = {}
    for k, v in state.items():
        if k.startswith("head.") or k.endswith("attn_mask"):
            continue
        if k.startswith("layers."):
            if ".downsample." in k:
                perm = merge_permutation(v.shape[-1] // 4)
                v = v[..., perm].contiguous()
            else:
                for old, new in _RENAMES:
                    k = k.replace(old, new)
            k = "stages." + k[len("layers."):]
        elif k.startswith("patch_embed.proj."):
            k = "patch_embed.projection." + k[len("patch_embed.proj."):]
        elif k.startswith("norm."):
            k = f"norm{last}." + k[len("norm."):]
        out[k] = v
    return out


def solider_to_microsoft(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of `microsoft_to_solider` for the tensors Microsoft's Swin has: the
    semantic controller and the output norms of stages 0-2 have no Microsoft counterpart."""
    stages = {int(k.split(".")[1]) for k in state if k.startswith("stages.")}
    if not stages:
        raise UserError("not a SOLIDER Swin state dict: no 'stages.N.' keys")
    last = max(stages)
    out = {}
    for k, v in state.items():
        if k.startswith("stages."):
            if ".downsample." in k:
                perm = torch.argsort(merge_permutation(v.shape[-1] // 4))
                v = v[..., perm].contiguous()
            else:
                for old, new in _RENAMES:
                    k = k.replace(new, old)
            k = "layers." + k[len("stages."):]
        elif k.startswith("patch_embed.projection."):
            k = "patch_embed.proj." + k[len("patch_embed.projection."):]
        elif k.startswith(f"norm{last}."):
            k = "norm." + k[len(f"norm{last}."):]
        elif not k.startswith("patch_embed."):
            continue  # semantic_embed_*, norm0..2
        out[k] = v
    return out


def resize_bias_table(table: Tensor, rows: int, key: str) -> Tensor:
    """Bicubic resize of a ((2w-1)^2, heads) relative position table to `rows` rows, as the
    official loader does when a checkpoint was trained with another window size."""
    old_side, new_side = math.isqrt(table.shape[0]), math.isqrt(rows)
    if old_side**2 != table.shape[0] or new_side**2 != rows:
        raise UserError(f"{key}: relative position table with {table.shape[0]} rows is not square")
    grid = table.T.reshape(1, table.shape[1], old_side, old_side).float()
    grid = F.interpolate(grid, size=(new_side, new_side), mode="bicubic")
    return grid.reshape(table.shape[1], rows).T.contiguous().to(table.dtype)


def infer_swin_arch(state: dict[str, Tensor]) -> dict:
    """SwinTransformer constructor arguments that fit a SOLIDER-layout state dict."""
    if "patch_embed.projection.weight" not in state:
        raise UserError("not a SOLIDER Swin state dict: 'patch_embed.projection.weight' is missing")
    proj = state["patch_embed.projection.weight"]
    blocks: dict[int, set[int]] = {}
    for k in state:
        if m := re.match(r"^stages\.(\d+)\.blocks\.(\d+)\.", k):
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    n = len(blocks)
    tables = [state[f"stages.{i}.blocks.0.attn.w_msa.relative_position_bias_table"] for i in range(n)]
    side = math.isqrt(tables[0].shape[0])
    has_controller = any(k.startswith("semantic_embed_w.") for k in state)
    return dict(
        embed_dims=proj.shape[0], patch_size=proj.shape[-1], strides=(proj.shape[-1],) + (2,) * (n - 1),
        depths=tuple(len(blocks[i]) for i in range(n)), num_heads=tuple(t.shape[1] for t in tables),
        window_size=(side + 1) // 2, semantic_weight=0.0 if has_controller else -1.0,
    )
