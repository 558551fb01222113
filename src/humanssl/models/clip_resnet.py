"""CLIP's modified ResNet (RN50) image tower adapted to re-id, as CLIP-ReID's RN50 variant.

Re-id changes: a rectangular input (256x128 persons, 256x256 vehicles); the last residual stage
keeps its resolution (last stride 1, so the layer-4 map is input / 16: 16x8 at 256x128); the
attention pool's 7x7 position grid is resized bilinearly to that map when weights are loaded.

Features (CLIP-ReID's RN50 branch): layer-3 map average-pooled (1024-d, the "last but one"
triplet feature), layer-4 map average-pooled (2048-d, f, BNNeck + classifier) and the
attention-pool output (1024-d, f_p, BNNeck + classifier_proj, against the text features).
There is no side-information embedding on this tower (no CLS token to add it to).

The notes (ssprl_selfgait_svll.md §3.1) only say "ViT-B/16 (or RN50)": the last stride and the
three features follow the brief and CLIP-ReID's RN50 code as remembered, not a checked source.
"""

from __future__ import annotations

from torch import Tensor, nn

from humanssl.errors import UserError

RESNET_STEM_STRIDE = 16  # stem (4) x layer2 (2) x layer3 (2); layer 4 adds `last_stride`


def resnet_grid(input_size: tuple[int, int], last_stride: int) -> tuple[int, int]:
    """(rows, cols) of the layer-4 map for an input size (sides must be multiples of 32)."""
    h, w = input_size
    if last_stride not in (1, 2):
        raise UserError(f"clip RN50: last_stride must be 1 (re-id) or 2 (CLIP), got {last_stride}")
    if h % 32 or w % 32:
        raise UserError(f"clip RN50: input {h}x{w}: both sides must be multiples of 32")
    total = RESNET_STEM_STRIDE * last_stride
    return h // total, w // total


class ReidModifiedResNet(nn.Module):
    """open_clip's ModifiedResNet, same parameter names, returning what CLIP-ReID uses.

    forward(x) -> (layer-3 map, layer-4 map, attention-pool output (B, proj_dim));
    pooled(x) -> (avg layer 3, avg layer 4, attention pool): the three triplet features.
    """

    def __init__(self, visual: nn.Module, rows: int, cols: int, last_stride: int = 1):
        super().__init__()
        for name, module in visual.named_children():
            self.add_module(name, module)
        pos = self.attnpool.positional_embedding
        if pos.shape[0] != rows * cols + 1:
            width = pos.shape[1]
            self.attnpool.positional_embedding = nn.Parameter(
                pos.new_empty(rows * cols + 1, width).normal_(std=width ** -0.5))
        if last_stride == 1:
            first = self.layer4[0]
            first.stride = 1
            first.avgpool = nn.Identity()
            if first.downsample is not None:
                first.downsample._modules["-1"] = nn.Identity()
        self.grid = (rows, cols)
        self.width = self.attnpool.k_proj.in_features
        self.proj_dim = self.attnpool.c_proj.out_features

    def stem(self, x: Tensor) -> Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.act3(self.bn3(self.conv3(x)))
        return self.avgpool(x)

    def forward(self, x: Tensor, cv_emb: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        if cv_emb is not None:
            raise UserError("clip RN50: side information (SIE) needs a ViT tower")
        x = self.stem(x.to(self.conv1.weight.dtype))
        x3 = self.layer3(self.layer2(self.layer1(x)))
        x4 = self.layer4(x3)
        if tuple(x4.shape[-2:]) != self.grid:
            raise UserError(f"clip RN50 image encoder: input gives a {tuple(x4.shape[-2:])} map, the model was "
                            f"built for {self.grid[0]}x{self.grid[1]} (check input.size)")
        return x3, x4, self.attnpool(x4)

    def pooled(self, x: Tensor, cv_emb: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        x3, x4, proj = self(x, cv_emb)
        return x3.mean(dim=(2, 3)), x4.mean(dim=(2, 3)), proj
