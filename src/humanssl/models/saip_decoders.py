"""SAIP's three task decoders (notes/solider_saip.md §2.1, §2.3), official parameter names.

* `CSMDecoder` (cross-scale matching): DINO's projection head. The official module also
  defines a LayerNorm `decoder_norm` that its forward never uses; it is kept (frozen) only so
  official checkpoints load with their keys.
* `CSRDecoder` (cross-scale reconstruction): an MAE decoder whose sequence starts with two
  class tokens, the masked view's and the unmasked global view's, then the patch tokens with
  mask tokens put back in place; predicts patch_size^2 * 3 values per patch.
* `CSSDecoder` (cross-scale search): turns a query token set into a dynamic 1x1 kernel
  (self-attention over the query, its class token cross-attends to the reference tokens) and
  applies it to conv features of the reference map: one mask logit per reference patch.

Pure modules; the losses are in `humanssl.losses.saip_*`. Default sizes are csl_vit_tiny's.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from humanssl.models.dino_head import WeightNormLinear
from humanssl.models.saip_vit_layers import interpolate_pos_encoding

LayerNorm6 = partial(nn.LayerNorm, eps=1e-6)  # every decoder norm of csl_vit_tiny_patch16


def _xavier_linear(m: nn.Module) -> None:
    """The official init of all three decoders: Xavier-uniform Linear weights, zero biases,
    LayerNorm (1, 0). Conv biases keep torch's default (officially only Linear biases are zeroed)."""
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(m.weight)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class CSMDecoder(nn.Module):
    def __init__(self, embed_dim: int = 192, out_dim: int = 65536, hidden_dim: int = 2048,
                 bottleneck_dim: int = 256, nlayers: int = 3, norm_last_layer: bool = True) -> None:
        super().__init__()
        self.decoder_norm = nn.LayerNorm(embed_dim)  # unused, as officially (see module docstring)
        self.decoder_norm.requires_grad_(False)  # no gradient ever reaches it; DDP must not wait for one
        nlayers = max(nlayers, 1)
        if nlayers == 1:
            self.mlp: nn.Module = nn.Linear(embed_dim, bottleneck_dim)
        else:
            dims = [embed_dim] + [hidden_dim] * (nlayers - 1)
            layers: list[nn.Module] = []
            for d_in, d_out in zip(dims[:-1], dims[1:]):
                layers += [nn.Linear(d_in, d_out), nn.GELU()]
            self.mlp = nn.Sequential(*layers, nn.Linear(hidden_dim, bottleneck_dim))
        self.mlp.apply(_xavier_linear)
        self.last_layer = WeightNormLinear(bottleneck_dim, out_dim)  # g = 1, v = nn.Linear's init
        if norm_last_layer:
            self.last_layer.weight_g.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))


class CSRDecoder(nn.Module):
    def __init__(self, embed_dim: int = 192, num_patches: int = 128, patch_size=(16, 16), in_chans: int = 3,
                 decoder_embed_dim: int = 512, decoder_depth: int = 8, decoder_num_heads: int = 16,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        # Official draws: both tables U[0, 1), never re-initialised.
        self.mask_token = nn.Parameter(torch.rand(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.rand(1, num_patches + 1, decoder_embed_dim))
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.decoder_blocks = nn.ModuleList(
            Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True, norm_layer=LayerNorm6)
            for _ in range(decoder_depth))
        self.decoder_norm = LayerNorm6(decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size[0] * patch_size[1] * in_chans)
        self.apply(_xavier_linear)

    def forward(self, visible: Tensor, context_cls: Tensor, ids_restore: Tensor) -> Tensor:
        """visible (B, 1 + K, D): the masked view's class token and its K encoded patches, in
        shuffled order; context_cls (B, 1, D): the class token of the unmasked view; ids_restore
        (B, L) puts the shuffled patches back. Returns (B, L, patch values)."""
        x = self.decoder_embed(visible)
        context = self.decoder_embed(context_cls)
        b, k, d = x.shape[0], x.shape[1] - 1, x.shape[2]
        length = ids_restore.shape[1]
        patches = torch.cat([x[:, 1:], self.mask_token.expand(b, length - k, d).to(x.dtype)], dim=1)
        patches = torch.gather(patches, 1, ids_restore[..., None].expand(-1, -1, d))
        x = torch.cat([x[:, :1], context, patches], dim=1)
        # The official table is resampled (1-D) to 1 + (L + 1) rows: its class row goes to the masked
        # view's class token, the first resampled row to the context token, the rest to the patches.
        x = x + interpolate_pos_encoding(self.decoder_pos_embed, length + 1).to(x.dtype)
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 2:]


class CrossAttentionBlock(nn.Module):
    """Pre-norm on the query only (keys/values come normalised), torch's multi-head attention."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, norm_layer=LayerNorm6) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads=num_heads, batch_first=True)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: Tensor, key: Tensor, value: Tensor) -> Tensor:
        y, _ = self.attn(self.norm1(x), key, value, need_weights=False)
        x = x + y
        return x + self.mlp(self.norm2(x))


class CSSDecoder(nn.Module):
    def __init__(self, embed_dim: int = 192, hidden_dim: int = 512, num_heads: int = 16,
                 mask_encoder_depth: int = 2, mask_decoder_depth: int = 4, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.q_decoder_embed = nn.Linear(embed_dim, hidden_dim)
        self.kv_decoder_embed = nn.Linear(embed_dim, hidden_dim)
        self.self_atten_blocks = nn.ModuleList(
            Block(hidden_dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=LayerNorm6)
            for _ in range(mask_encoder_depth))
        self.cross_atten_block = CrossAttentionBlock(hidden_dim, num_heads, mlp_ratio)
        self.kv_decoder_norm = LayerNorm6(hidden_dim)
        self.q_decoder_norm = LayerNorm6(hidden_dim)
        self.kernel_pred = nn.Linear(hidden_dim, hidden_dim)
        head: list[nn.Module] = []
        for i in range(mask_decoder_depth):
            head += [nn.Conv2d(embed_dim, hidden_dim, 1) if i == 0 else nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1),
                     nn.GELU()]
        self.mask_head = nn.Sequential(*head)
        self.apply(_xavier_linear)
        # nn.MultiheadAttention's packed in-projection is no nn.Linear: torch already gives it Xavier.

    def forward(self, query: Tensor, reference: Tensor) -> Tensor:
        """query (B, 1 + N, D) tokens of the person view (class token first); reference (B, D, h, w)
        the reference image's token map. Returns mask logits (B, h, w)."""
        b, _, h, w = reference.shape
        kernel = self.q_decoder_embed(query)
        for blk in self.self_atten_blocks:
            kernel = blk(kernel)
        kernel = kernel[:, :1]  # the class token carries the query person
        ref_tokens = self.kv_decoder_norm(self.kv_decoder_embed(reference.flatten(2).transpose(1, 2)))
        kernel = self.kernel_pred(self.q_decoder_norm(self.cross_atten_block(kernel, ref_tokens, ref_tokens)))
        features = self.mask_head(reference).flatten(2)  # (B, hidden, h w)
        return torch.bmm(kernel, features.to(kernel.dtype)).view(b, h, w)


def token_map(tokens: Tensor, grid: tuple[int, int]) -> Tensor:
    """(B, 1 + h w, D) tokens -> (B, D, h, w) map of the patch tokens (class token dropped)."""
    b, n, d = tokens.shape
    if n - 1 != grid[0] * grid[1]:
        raise ValueError(f"{n - 1} patch tokens do not make a {grid[0]}x{grid[1]} grid")
    return tokens[:, 1:].transpose(1, 2).reshape(b, d, *grid)

