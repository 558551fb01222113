"""SelfGait's networks (Liu et al., ICASSP 2021): GaitSet's frame-wise layers, per-frame
horizontal pyramid pooling, GaitPart's micro-motion module, temporal max + part FCs, and
BYOL's projection / prediction heads.

    online:  SetNet -> MicroMotionModule -> TemporalPartFC -> projection -> predictor
    target:  SetNet -> TemporalPartFC -> projection          (EMA copies, no MCM, no predictor)
    feature for retrieval: TemporalPartFC(MicroMotionModule(SetNet(x)))  (n, 31, 128)

Class and parameter names follow the official code (its `SetNet`, `TP_FULL`, `MLPHead`; the
micro-motion module is in `micro_motion.py`), so each of the official checkpoint's
`*_state_dict` entries loads into the matching module after stripping `module.`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from humanssl.errors import UserError
from humanssl.models.gaitset import (BINS, as_silhouettes, check_strips, horizontal_pyramid, segment_lengths,
                                     set_layers)
from humanssl.models.micro_motion import MicroMotionModule

NUM_PARTS = sum(BINS)  # 31 strips per frame


class SelfGaitSetNet(nn.Module):
    """SelfGait's edit of GaitSet's SetNet: the six frame-wise layers only, no global branch and
    no set pooling. Returns per-frame strip features (n, s, 128, 31), strip = mean + max."""

    def __init__(self, hidden_dim: int = 128, in_channels: int = 1) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.bin_num = list(BINS)
        # Never used by the official forward but present in its checkpoints, so kept for strict
        # loading. It takes no gradient, so it is frozen (DDP would otherwise complain about an
        # unused parameter); the EMA still carries it, as the official update does.
        self.fc_bin = nn.Parameter(torch.zeros(NUM_PARTS, 256, hidden_dim), requires_grad=False)
        for name, layer in set_layers(in_channels):
            self.add_module(name, layer)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
        nn.init.xavier_uniform_(self.fc_bin)

    def forward(self, silhouettes: Tensor) -> Tensor:
        x = as_silhouettes(silhouettes)
        for i in range(1, 7):
            x = getattr(self, f"set_layer{i}")(x)
        check_strips(*x.shape[-2:], self.bin_num)
        return horizontal_pyramid(x, self.bin_num)


class TemporalPartFC(nn.Module):
    """Official `TP_FULL`: max over frames, then one (128 x hidden_dim) matrix per strip.

    (n, s, 128, p) -> (n, p, hidden_dim)."""

    def __init__(self, hidden_dim: int = 128, in_channels: int = 128, parts: int = NUM_PARTS) -> None:
        super().__init__()
        self.fc_bin = nn.Parameter(torch.zeros(parts, in_channels, hidden_dim))
        nn.init.xavier_uniform_(self.fc_bin)

    def forward(self, x: Tensor) -> Tensor:
        return self.map_parts(x.amax(1))

    def map_parts(self, pooled: Tensor) -> Tensor:
        """(n, 128, p) frame-pooled strips -> (n, p, hidden_dim)."""
        return pooled.permute(2, 0, 1).matmul(self.fc_bin).permute(1, 0, 2).contiguous()


class PerStripBatchNorm(nn.BatchNorm1d):
    """BatchNorm with statistics of its own for every (strip, channel), taken over the samples only.

    Input laid out as MLPHead's, (p, c, n). Each strip loses its batch mean, so what is left is
    what tells the samples apart, not the strip's place on the body."""

    def __init__(self, parts: int, channels: int) -> None:
        super().__init__(parts * channels)

    def forward(self, x: Tensor) -> Tensor:
        p, c, n = x.shape
        y = super().forward(x.permute(2, 0, 1).reshape(n, p * c))
        return y.reshape(n, p, c).permute(1, 2, 0)


class MLPHead(nn.Module):
    """BYOL's projector / predictor as SelfGait builds it: 1x1 Conv1d, BatchNorm1d, ReLU, 1x1 Conv1d.

    Applied to (n, p, c) laid out as (p, c, n): the 1x1 convolutions act on every (strip,
    sample) alone. `norm="pooled"` (official): BatchNorm pools its statistics over all strips
    and samples. `norm="per_strip"`: one set of statistics per strip (PerStripBatchNorm); its
    parameters are `parts` times larger, so such a head does not load official head weights."""

    def __init__(self, in_channels: int = 128, mlp_hidden_size: int = 256, projection_size: int = 128,
                 norm: str = "pooled", parts: int = NUM_PARTS) -> None:
        super().__init__()
        if norm not in ("pooled", "per_strip"):
            raise UserError(f"selfgait.head_norm must be 'pooled' or 'per_strip'; got {norm!r}")
        self.net = nn.Sequential(
            nn.Conv1d(in_channels, mlp_hidden_size, kernel_size=1),
            nn.BatchNorm1d(mlp_hidden_size) if norm == "pooled" else PerStripBatchNorm(parts, mlp_hidden_size),
            nn.ReLU(inplace=True),
            nn.Conv1d(mlp_hidden_size, projection_size, kernel_size=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.permute(1, 2, 0)).permute(2, 0, 1).contiguous()


class SelfGaitEncoder(nn.Module):
    """The retrieval feature TP_1(conv_trans(online_network(x))) -> (n, 31, hidden_dim).

    Sub-module names are those of the official checkpoint's entries. Packed variable-length
    input (one row, `batch_frame` counts) is split into its sequences after the frame-wise
    layers, so neither the temporal convolutions nor the frame max cross a sequence boundary.
    (The official test loop feeds one sequence at a time, which is the same thing.)
    """

    def __init__(self, online_network: SelfGaitSetNet | None = None, conv_trans: MicroMotionModule | None = None,
                 TP_1: TemporalPartFC | None = None, hidden_dim: int = 128, div: int = 4) -> None:  # noqa: N803
        super().__init__()
        self.online_network = online_network if online_network is not None else SelfGaitSetNet(hidden_dim)
        self.conv_trans = conv_trans if conv_trans is not None else MicroMotionModule(128, 128, NUM_PARTS, div)
        self.TP_1 = TP_1 if TP_1 is not None else TemporalPartFC(hidden_dim)

    def forward(self, silhouettes: Tensor, batch_frame=None) -> Tensor:
        x = as_silhouettes(silhouettes)
        lengths = segment_lengths(batch_frame, x.shape[0], x.shape[1])
        if lengths is None:
            return self.TP_1(self.conv_trans(self.online_network(x)))
        frames = self.online_network(x[:, :sum(lengths)])
        pooled = [self.conv_trans(seg).amax(1) for seg in frames.split(lengths, dim=1)]
        return self.TP_1.map_parts(torch.cat(pooled, 0))


# Official class names.
SetNet = SelfGaitSetNet
TP_FULL = TemporalPartFC
