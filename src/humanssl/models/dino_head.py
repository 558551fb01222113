"""DINO's projection head: MLP -> L2-normalise -> weight-normalised linear to prototypes.

Parameter names follow the official head (``mlp.0``, ``mlp.2``, ``mlp.4``, or ``mlp`` for one
layer; ``last_layer.weight_g`` / ``last_layer.weight_v``) so official checkpoints load as they
are. The ``weight_g``/``weight_v`` names are those of torch's old ``weight_norm`` hook; we keep
them, but implement the reparametrisation as a small module instead of the deprecated hook.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class WeightNormLinear(nn.Module):
    """Bias-free linear layer whose weight is ``g * v / ||v||`` with the norm taken per output row."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(out_features, 1))
        self.weight_v = nn.Parameter(torch.empty(out_features, in_features))
        # nn.Linear's default init, as the official head gets: with g fixed, the scale of v sets
        # the size of v's gradients (they shrink as 1/||v||), so it matters for training.
        nn.init.kaiming_uniform_(self.weight_v, a=math.sqrt(5))

    @property
    def weight(self) -> Tensor:
        return self.weight_v * (self.weight_g / self.weight_v.norm(dim=1, keepdim=True))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight)


class DINOHead(nn.Module):
    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        nlayers: int = 3,
        use_bn: bool = False,
        norm_last_layer: bool = True,
    ) -> None:
        super().__init__()
        nlayers = max(nlayers, 1)
        if nlayers == 1:
            # A bare Linear, not a Sequential: the official key is then ``mlp.weight``.
            self.mlp: nn.Module = nn.Linear(in_dim, bottleneck_dim)
        else:
            layers: list[nn.Module] = []
            dims = [in_dim] + [hidden_dim] * (nlayers - 1)
            for d_in, d_out in zip(dims[:-1], dims[1:]):
                layers.append(nn.Linear(d_in, d_out))
                if use_bn:
                    layers.append(nn.BatchNorm1d(d_out))
                layers.append(nn.GELU())
            layers.append(nn.Linear(hidden_dim, bottleneck_dim))
            self.mlp = nn.Sequential(*layers)
        self.mlp.apply(_init_linear)

        self.last_layer = WeightNormLinear(bottleneck_dim, out_dim)
        if norm_last_layer:
            # Unit-norm prototypes: the logits are cosines, which DINO found more stable.
            self.last_layer.weight_g.requires_grad = False

    def forward(self, x: Tensor) -> Tensor:
        x = F.normalize(self.mlp(x), dim=-1, p=2)
        return self.last_layer(x)


def _init_linear(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
