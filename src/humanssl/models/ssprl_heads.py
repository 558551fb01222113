"""SS-PRL's heads on top of the trunk's pooled features (Hsieh et al., arXiv 2208.14439).

* `projection_head`: Linear(in, hidden_mlp) -> BatchNorm1d -> ReLU -> Linear(hidden_mlp,
  output_dim) for the global crops; the output is L2-normalised (`normalize=True`).
* `l_pro_head{i}`: a head of the same shape, its own weights, for the patches of pyramid level i.
* `ptypes` (K_0 x output_dim) and `local_ptypes{i}` (K_i x output_dim): bias-free prototypes;
  a projection's scores are its cosines with them.
* `l2g_ptypes{i}`: the cross-scale correlation learner, a bias-free Linear(K_i -> K_0) that maps an
  image's (L2-normalised) mean level-i patch scores to scores over the global prototypes.
* `ptypes_normalize()`: L2-normalises every row of the three kinds of prototype weights; the
  method calls it at the start of every step, so each prototype (and each global prototype's
  correlation weights) stays on the unit sphere.

The attribute names are the official ones (abbreviated "ptypes", numbered levels without a
separator), so official checkpoints load after stripping their `module.` prefix.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def projection_head(in_dim: int, hidden_mlp: int, output_dim: int) -> nn.Module:
    if hidden_mlp == 0:  # the official option of a single linear projection
        return nn.Linear(in_dim, output_dim)
    return nn.Sequential(
        nn.Linear(in_dim, hidden_mlp),
        nn.BatchNorm1d(hidden_mlp),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_mlp, output_dim),
    )


class SSPRLHeads(nn.Module):
    def __init__(self, in_dim: int = 2048, hidden_mlp: int = 2048, output_dim: int = 128,
                 nmb_ptypes: int = 300, nmb_local_ptypes: Sequence[int] = (150, 150),
                 normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize
        self.nmb_local_levels = len(nmb_local_ptypes)
        self.projection_head = projection_head(in_dim, hidden_mlp, output_dim)
        for i in range(self.nmb_local_levels):
            self.add_module(f"l_pro_head{i}", projection_head(in_dim, hidden_mlp, output_dim))
        self.ptypes = nn.Linear(output_dim, nmb_ptypes, bias=False)
        for i, k in enumerate(nmb_local_ptypes):
            self.add_module(f"local_ptypes{i}", nn.Linear(output_dim, k, bias=False))
        for i, k in enumerate(nmb_local_ptypes):
            self.add_module(f"l2g_ptypes{i}", nn.Linear(k, nmb_ptypes, bias=False))

    def level(self, kind: str, i: int) -> nn.Module:
        """`level("l_pro_head", 1)` is `self.l_pro_head1`."""
        return getattr(self, f"{kind}{i}")

    def prototype_layers(self) -> list[nn.Linear]:
        return [self.ptypes] + [self.level(kind, i) for i in range(self.nmb_local_levels)
                                for kind in ("local_ptypes", "l2g_ptypes")]

    @torch.no_grad()
    def ptypes_normalize(self) -> None:
        for layer in self.prototype_layers():
            layer.weight.copy_(F.normalize(layer.weight, dim=1, p=2))

    def _project(self, head: nn.Module, feats: Tensor) -> Tensor:
        z = head(feats)
        return F.normalize(z, dim=1, p=2) if self.normalize else z

    def forward_global(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        """Pooled features of all global crops (rows crop-major) -> (z, scores over `ptypes`)."""
        z = self._project(self.projection_head, feats)
        return z, self.ptypes(z)

    def forward_local(self, feats: Tensor, i: int) -> tuple[Tensor, Tensor]:
        """Pooled features of every patch of level i (all views in one call, so BatchNorm sees
        them together) -> (z, scores over `local_ptypes{i}`)."""
        z = self._project(self.level("l_pro_head", i), feats)
        return z, self.level("local_ptypes", i)(z)

    def forward_l2g(self, mean_scores: Tensor, i: int) -> Tensor:
        """Mean level-i patch scores of each image (B, K_i) -> scores over the global prototypes."""
        if self.normalize:
            mean_scores = F.normalize(mean_scores, dim=1, p=2)
        return self.level("l2g_ptypes", i)(mean_scores)
