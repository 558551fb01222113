"""Micro-motion template builder of GaitPart (Fan et al., CVPR 2020), as SelfGait uses it.

SelfGait calls it `MCM_NOTP` ("MCM without temporal pooling"): for every horizontal strip,
two temporal branches look at the strip's (channels, frames) sequence:

    branch 1: sigmoid(conv k1 (relu(conv k3 (x)))) * (maxpool k3 + avgpool k3)(x)
    branch 2: sigmoid(conv k3 (relu(conv k3 (x)))) * (maxpool k5 + avgpool k5)(x)

and the output is their sum, the same shape as the input (frames are kept; the temporal max
comes afterwards). Every strip has its own convolutions. The official code loops over the
strips; here all strips run in one grouped convolution whose weights are the per-strip
weights laid side by side, which computes the same thing in one call.

Parameter names are the official ones: `conv_list_1.{strip}.{0,2}`, `conv_list_2.{strip}.{0,2}`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _branch(channels: int, hidden: int, second_kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(channels, hidden, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv1d(hidden, channels, kernel_size=second_kernel, padding=second_kernel // 2),
    )


class MicroMotionModule(nn.Module):
    def __init__(self, in_channels: int = 128, out_channels: int = 128, p: int = 31, div: int = 4) -> None:
        super().__init__()
        # `out_channels` is accepted for the official signature; the official module ignores it
        # too and keeps the input width.
        self.in_channels = in_channels
        self.p = p
        self.div = div
        hidden = in_channels // div
        self.conv_list_1 = nn.ModuleList(_branch(in_channels, hidden, 1) for _ in range(p))
        self.conv_list_2 = nn.ModuleList(_branch(in_channels, hidden, 3) for _ in range(p))

    def _attention(self, branches: nn.ModuleList, x: Tensor) -> Tensor:
        """All strips' attention at once; x is (n, p*c, s) with strip-major channels."""
        first = [b[0] for b in branches]
        second = [b[2] for b in branches]
        h = F.conv1d(x, torch.cat([m.weight for m in first]), torch.cat([m.bias for m in first]),
                     padding=1, groups=self.p)
        h = F.relu(h)
        k = second[0].kernel_size[0]
        return torch.sigmoid(F.conv1d(h, torch.cat([m.weight for m in second]),
                                      torch.cat([m.bias for m in second]), padding=k // 2, groups=self.p))

    def forward(self, x: Tensor) -> Tensor:
        """x (n, s, c, p) per-frame strip features -> (n, s, c, p)."""
        n, s, c, p = x.shape
        if p != self.p or c != self.in_channels:
            raise ValueError(f"MicroMotionModule expects (n, frames, {self.in_channels}, {self.p}); "
                             f"got {tuple(x.shape)}")
        seq = x.permute(0, 3, 2, 1).reshape(n, p * c, s)
        # Average pools count the zero padding, as nn.AvgPool1d does by default.
        template_1 = (F.max_pool1d(seq, 3, stride=1, padding=1) + F.avg_pool1d(seq, 3, stride=1, padding=1))
        template_5 = (F.max_pool1d(seq, 5, stride=1, padding=2) + F.avg_pool1d(seq, 5, stride=1, padding=2))
        out = template_1 * self._attention(self.conv_list_1, seq) + template_5 * self._attention(self.conv_list_2, seq)
        return out.reshape(n, p, c, s).permute(0, 3, 2, 1).contiguous()


MCM_NOTP = MicroMotionModule  # the official class name
