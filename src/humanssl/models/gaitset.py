"""GaitSet (Chao et al., AAAI 2019): a gait sequence is an unordered set of silhouettes.

Frame-wise convolutions encode every silhouette on its own; "set pooling" (a max over the
frames of one sequence) turns the per-frame maps into one map per sequence, at three depths,
and a global branch (`gl_layer*`) accumulates those pooled maps. Horizontal pyramid mapping
then cuts the final maps of both branches into horizontal strips (1+2+4+8+16 = 31 per
branch, 62 in all), pools each strip (mean + max) and maps each with its own matrix.

Parameter names are the official ones (`set_layer{1..6}.forward_block.conv`, `gl_layer{1..4}.conv`,
`fc_bin.0`), so an official `*-encoder.ptm` loads after stripping `module.`.

Sequences of different lengths can be packed on the frame axis of one batch row, with their
frame counts in `batch_frame`, exactly as GaitSet's test loop does: the convolutions do not
care, and every set pooling is taken per segment, so the output has one row per segment.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from humanssl.errors import UserError

BINS = (1, 2, 4, 8, 16)


class BasicConv2d(nn.Module):
    """Bias-free conv followed by leaky ReLU (slope 0.01), GaitSet's only building block."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(self.conv(x), negative_slope=0.01)


class SetBlock(nn.Module):
    """Applies a 2-D block to every frame of (n, s, c, h, w) by folding frames into the batch."""

    def __init__(self, forward_block: nn.Module, pooling: bool = False) -> None:
        super().__init__()
        self.forward_block = forward_block
        self.pooling = pooling
        self.pool2d = nn.MaxPool2d(2) if pooling else None

    def forward(self, x: Tensor) -> Tensor:
        n, s = x.shape[:2]
        y = self.forward_block(x.flatten(0, 1))
        if self.pool2d is not None:
            y = self.pool2d(y)
        return y.unflatten(0, (n, s))


def set_layers(in_channels: int = 1, channels: Sequence[int] = (32, 64, 128)) -> list[tuple[str, SetBlock]]:
    """The six frame-wise layers shared by GaitSet and SelfGait, with their official names."""
    c1, c2, c3 = channels
    return [
        ("set_layer1", SetBlock(BasicConv2d(in_channels, c1, 5, padding=2))),
        ("set_layer2", SetBlock(BasicConv2d(c1, c1, 3, padding=1), pooling=True)),
        ("set_layer3", SetBlock(BasicConv2d(c1, c2, 3, padding=1))),
        ("set_layer4", SetBlock(BasicConv2d(c2, c2, 3, padding=1), pooling=True)),
        ("set_layer5", SetBlock(BasicConv2d(c2, c3, 3, padding=1))),
        ("set_layer6", SetBlock(BasicConv2d(c3, c3, 3, padding=1))),
    ]


def horizontal_pyramid(x: Tensor, bins: Sequence[int] = BINS) -> Tensor:
    """(..., c, h, w) -> (..., c, sum(bins)): each strip pooled by mean + max.

    Strips are equal consecutive chunks of the flattened h*w positions (whole rows when the
    bin count divides h), as the official code cuts them.
    """
    flat = x.flatten(-2)
    parts = []
    for b in bins:
        z = flat.unflatten(-1, (b, -1))
        parts.append(z.mean(-1) + z.amax(-1))
    return torch.cat(parts, -1)


def check_strips(h: int, w: int, bins: Sequence[int] = BINS) -> None:
    bad = [b for b in bins if (h * w) % b]
    if bad:
        raise UserError(f"the final feature map is {h}x{w}; its {h * w} positions cannot be cut into "
                        f"{bad[0]} equal horizontal strips (input height/width must give h*w divisible by {max(bins)})")


def as_silhouettes(silhouettes: Tensor, name: str = "silhouettes") -> Tensor:
    """(n, s, h, w) or (n, s, 1, h, w) -> float (n, s, 1, h, w)."""
    if not isinstance(silhouettes, Tensor):
        raise UserError(f"{name} must be a torch.Tensor shaped (n, frames, height, width)")
    if silhouettes.ndim == 4:
        silhouettes = silhouettes.unsqueeze(2)
    if silhouettes.ndim != 5 or silhouettes.shape[2] != 1:
        raise UserError(f"{name} must be shaped (n, frames, height, width) or (n, frames, 1, height, width); "
                        f"got {tuple(silhouettes.shape)}")
    if silhouettes.shape[1] == 0:
        raise UserError(f"{name} has no frames")
    if not silhouettes.is_floating_point():
        silhouettes = silhouettes.float()
    return silhouettes


def segment_lengths(batch_frame, n: int, frames: int) -> list[int] | None:
    """Frame counts of packed sequences, trailing zero counts dropped (GaitSet's multi-GPU padding)."""
    if batch_frame is None:
        return None
    lengths = [int(v) for v in torch.as_tensor(batch_frame).reshape(-1).tolist()]
    while lengths and lengths[-1] == 0:
        lengths.pop()
    if n != 1:
        raise UserError(f"packed sequences (batch_frame given) need one batch row; got {n} rows")
    if not lengths or min(lengths) <= 0:
        raise UserError(f"batch_frame must list positive frame counts; got {lengths}")
    if sum(lengths) > frames:
        raise UserError(f"batch_frame counts sum to {sum(lengths)} frames but the input has only {frames}")
    return lengths


def frame_max(x: Tensor, lengths: list[int] | None = None) -> Tensor:
    """Set pooling: max over the frame axis (dim 1); per packed segment when `lengths` is given.

    With segments the input has one batch row and the segments' results are stacked on dim 0.
    """
    if lengths is None:
        return x.amax(1)
    return torch.cat([seg.amax(1) for seg in x.split(lengths, dim=1)], 0)


class GaitSet(nn.Module):
    """The official `SetNet` of GaitSet (CASIA-B width). Output (n, 62, hidden_dim), no normalisation."""

    def __init__(self, hidden_dim: int = 256, in_channels: int = 1) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.bin_num = list(BINS)
        for name, layer in set_layers(in_channels):
            self.add_module(name, layer)
        self.gl_layer1 = BasicConv2d(32, 64, 3, padding=1)
        self.gl_layer2 = BasicConv2d(64, 64, 3, padding=1)
        self.gl_layer3 = BasicConv2d(64, 128, 3, padding=1)
        self.gl_layer4 = BasicConv2d(128, 128, 3, padding=1)
        self.gl_pooling = nn.MaxPool2d(2)
        # A ParameterList of one tensor only because the official checkpoint names it `fc_bin.0`.
        self.fc_bin = nn.ParameterList([nn.Parameter(torch.zeros(2 * sum(BINS), 128, hidden_dim))])
        self.reset_parameters()

    @property
    def num_parts(self) -> int:
        return 2 * sum(self.bin_num)

    def reset_parameters(self) -> None:
        # Official initialisation: Xavier-uniform convolutions and part matrices.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
        nn.init.xavier_uniform_(self.fc_bin[0])

    def forward(self, silhouettes: Tensor, batch_frame=None) -> Tensor:
        """silhouettes (n, s, h, w) in [0, 1]; `batch_frame` (list or (1, k) tensor of frame counts)
        packs k sequences into the single row of a (1, sum, h, w) input."""
        x = as_silhouettes(silhouettes)
        lengths = segment_lengths(batch_frame, x.shape[0], x.shape[1])
        if lengths is not None:
            x = x[:, :sum(lengths)]

        x = self.set_layer2(self.set_layer1(x))
        gl = self.gl_pooling(self.gl_layer2(self.gl_layer1(frame_max(x, lengths))))

        x = self.set_layer4(self.set_layer3(x))
        gl = self.gl_layer4(self.gl_layer3(gl + frame_max(x, lengths)))

        x = frame_max(self.set_layer6(self.set_layer5(x)), lengths)
        gl = gl + x

        check_strips(*x.shape[-2:], self.bin_num)
        # Official part order: for each bin count, the set-pooled strips, then the global ones.
        parts = []
        for b in self.bin_num:
            parts.append(horizontal_pyramid(x, (b,)))
            parts.append(horizontal_pyramid(gl, (b,)))
        feature = torch.cat(parts, -1).permute(2, 0, 1)  # (62, n, 128)
        return feature.matmul(self.fc_bin[0]).permute(1, 0, 2).contiguous()


SetNet = GaitSet  # the official class name
