"""Train and test transforms of supervised re-id fine-tuning (the TransReID / SOLIDER-REID family).

Train: bicubic resize to (H, W), horizontal flip, zero padding + random crop back to (H, W),
to tensor, normalise, random erasing. Test: resize, to tensor, normalise.

Random erasing is timm's `RandomErasing` with the settings these recipes use: probability 0.5,
one rectangle of 2%-33% of the image with aspect ratio 0.3-3.3, filled with per-pixel normal
noise (on the normalised tensor). Every random draw comes from Python's `random` or torch's
global generator, which the engine seeds per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from timm.data.random_erasing import RandomErasing
from torchvision import transforms as T

from humanssl.errors import UserError


@dataclass
class ReidTransformConfig:
    """SOLIDER-REID's numbers (notes/solider_saip.md §1.3). Sizes are (H, W)."""

    size: tuple[int, int] = (384, 128)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    flip_prob: float = 0.5
    padding: int = 10
    erasing_prob: float = 0.5
    erasing_mode: Literal["pixel", "rand", "const"] = "pixel"  # timm's modes: pixel (normal noise), rand (one colour), const (zeros)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                setattr(self, f.name, tuple(value))
        self.check()

    def check(self) -> None:
        def fail(name, expected):
            raise UserError(f"transforms.{name}={getattr(self, name)!r}: expected {expected}")

        if len(self.size) != 2 or any(int(s) != s or s < 1 for s in self.size):
            fail("size", "(height, width), two positive integers")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            fail("std", "three means and three positive standard deviations")
        for name in ("flip_prob", "erasing_prob"):
            if not 0 <= getattr(self, name) <= 1:
                fail(name, "a probability in [0, 1]")
        if int(self.padding) != self.padding or self.padding < 0:
            fail("padding", "an integer number of pixels >= 0")
        if self.erasing_mode not in ("pixel", "rand", "const"):
            fail("erasing_mode", "one of 'pixel', 'rand', 'const'")


def _size(cfg: ReidTransformConfig) -> tuple[int, int]:
    return int(cfg.size[0]), int(cfg.size[1])


def reid_train_transform(cfg: ReidTransformConfig) -> T.Compose:
    steps = [T.Resize(_size(cfg), interpolation=T.InterpolationMode.BICUBIC),
             T.RandomHorizontalFlip(cfg.flip_prob)]
    if cfg.padding:
        steps += [T.Pad(int(cfg.padding)), T.RandomCrop(_size(cfg))]
    steps += [T.ToTensor(), T.Normalize(cfg.mean, cfg.std)]
    if cfg.erasing_prob > 0:
        steps.append(RandomErasing(probability=cfg.erasing_prob, mode=cfg.erasing_mode, max_count=1, device="cpu"))
    return T.Compose(steps)


def reid_test_transform(cfg: ReidTransformConfig) -> T.Compose:
    return T.Compose([T.Resize(_size(cfg), interpolation=T.InterpolationMode.BICUBIC),
                      T.ToTensor(), T.Normalize(cfg.mean, cfg.std)])
