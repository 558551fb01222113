"""SOLIDER's multi-crop augmentation (DINO's recipe at person-crop sizes) and the eval transform.

Every random draw comes from Python's ``random`` or torch's global generator, never numpy or a
private generator: the engine seeds those two per sample, which is what makes a resumed run and
a run with any number of workers produce the same crops.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from typing import Callable

import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms as T

from humanssl.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class MultiCropConfig:
    """SOLIDER's pretraining defaults (notes/solider_saip.md §1.2). Sizes are (H, W)."""

    global_size: tuple[int, int] = (256, 128)
    global_scale: tuple[float, float] = (0.8, 1.0)
    local_number: int = 8
    local_size: tuple[int, int] = (128, 64)
    local_scale: tuple[float, float] = (0.05, 0.8)
    aspect: tuple[float, float] = (0.4, 0.6)  # width / height, torchvision's `ratio`
    flip_prob: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)  # bright, contr, sat, hue
    jitter_prob: float = 0.8
    grayscale_prob: float = 0.2
    blur_probs: tuple[float, float, float] = (1.0, 0.1, 0.5)  # global 1, global 2, each local
    blur_radius: tuple[float, float] = (0.1, 2.0)
    solarize_prob: float = 0.2  # global view 2 only
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # on_device: loader workers only decode each image to a uint8 canvas of canvas_size (default
    # global_size) and the crops are made batched on the training device (device_multicrop.py),
    # which keeps a GPU fed where per-image PIL augmentation on the CPU cannot (~29 ms/image/core)
    on_device: bool = False
    canvas_size: tuple[int, int] | None = None

    def __post_init__(self):
        # YAML gives lists; tuples keep the config hashable and printable as written.
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                setattr(self, f.name, tuple(value))
        self._check()

    def _check(self):
        def fail(name, expected):
            raise UserError(f"multi-crop setting {name}={getattr(self, name)!r}: expected {expected}")

        for name in ("global_size", "local_size", "canvas_size"):
            size = getattr(self, name)
            if size is None and name == "canvas_size":
                continue
            if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
                fail(name, "(height, width), two positive integers")
        pairs = {
            "global_scale": (lambda lo, hi: 0 < lo <= hi <= 1, "area fractions, 0 < min <= max <= 1"),
            "local_scale": (lambda lo, hi: 0 < lo <= hi <= 1, "area fractions, 0 < min <= max <= 1"),
            "aspect": (lambda lo, hi: 0 < lo <= hi, "width/height ratios, 0 < min <= max"),
            "blur_radius": (lambda lo, hi: 0 <= lo <= hi, "radii in pixels, 0 <= min <= max"),
        }
        for name, (valid, expected) in pairs.items():
            pair = getattr(self, name)
            if len(pair) != 2 or not valid(*pair):
                fail(name, f"(min, max) {expected}")
        if int(self.local_number) != self.local_number or self.local_number < 0:
            fail("local_number", "an integer >= 0")
        if len(self.jitter) != 4 or min(self.jitter) < 0 or self.jitter[3] > 0.5:
            fail("jitter", "(brightness, contrast, saturation, hue), all >= 0, hue <= 0.5")
        if len(self.blur_probs) != 3 or not all(0 <= p <= 1 for p in self.blur_probs):
            fail("blur_probs", "three probabilities in [0, 1] (global 1, global 2, local)")
        for name in ("flip_prob", "jitter_prob", "grayscale_prob", "solarize_prob"):
            if not 0 <= getattr(self, name) <= 1:
                fail(name, "a probability in [0, 1]")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            fail("std", "three means and three positive standard deviations")


class RandomGaussianBlur:
    """PIL Gaussian blur with a radius drawn uniformly, applied with probability ``p``.

    PIL's filter rather than torchvision's GaussianBlur: the reference blurs the PIL image by
    radius, and torchvision's kernel-size version gives different pixels.
    """

    def __init__(self, p: float, radius: tuple[float, float]):
        self.p = p
        self.radius = radius

    def __call__(self, img: Image.Image) -> Image.Image:
        if random.random() >= self.p:
            return img
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(*self.radius)))

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p}, radius={self.radius})"


class RandomSolarize:
    """Invert pixels >= 128 with probability ``p`` (drawn from Python's random, as the reference)."""

    def __init__(self, p: float, threshold: int = 128):
        self.p = p
        self.threshold = threshold

    def __call__(self, img: Image.Image) -> Image.Image:
        if random.random() >= self.p:
            return img
        return ImageOps.solarize(img, self.threshold)

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p}, threshold={self.threshold})"


def _hw(size) -> tuple[int, int]:
    return int(size[0]), int(size[1])  # YAML may hand over 256.0


def _normalize(mean, std) -> list:
    return [T.ToTensor(), T.Normalize(mean, std)]


def _view(cfg: MultiCropConfig, size, scale, blur_p: float, solarize_p: float = 0.0) -> T.Compose:
    brightness, contrast, saturation, hue = cfg.jitter
    steps = [
        T.RandomResizedCrop(
            _hw(size), scale=scale, ratio=cfg.aspect, interpolation=T.InterpolationMode.BICUBIC
        ),
        T.RandomHorizontalFlip(cfg.flip_prob),
        T.RandomApply([T.ColorJitter(brightness, contrast, saturation, hue)], p=cfg.jitter_prob),
        T.RandomGrayscale(cfg.grayscale_prob),
        RandomGaussianBlur(blur_p, cfg.blur_radius),
    ]
    if solarize_p > 0:  # only view 2 solarises; the others draw no number for it
        steps.append(RandomSolarize(solarize_p))
    return T.Compose(steps + _normalize(cfg.mean, cfg.std))


class MultiCropTransform:
    """PIL image -> [global 1, global 2, local 1 .. local N], normalised float CHW tensors.

    With the defaults global view 1 is always blurred, view 2 rarely (p 0.1) and is the only
    solarised one; locals are smaller crops of a smaller area range, blurred with p 0.5.
    """

    def __init__(self, cfg: MultiCropConfig | None = None):
        self.cfg = cfg = cfg if cfg is not None else MultiCropConfig()
        blur1, blur2, blur_local = cfg.blur_probs
        self.global1 = _view(cfg, cfg.global_size, cfg.global_scale, blur1)
        self.global2 = _view(cfg, cfg.global_size, cfg.global_scale, blur2, cfg.solarize_prob)
        self.local = _view(cfg, cfg.local_size, cfg.local_scale, blur_local)

    @property
    def num_crops(self) -> int:
        return 2 + self.cfg.local_number

    def __call__(self, img: Image.Image) -> list[torch.Tensor]:
        crops = [self.global1(img), self.global2(img)]
        crops.extend(self.local(img) for _ in range(int(self.cfg.local_number)))
        return crops

    def __repr__(self):
        return f"{type(self).__name__}({self.cfg})"


def eval_transform(
    size: tuple[int, int], mean=IMAGENET_MEAN, std=IMAGENET_STD
) -> Callable[[Image.Image], torch.Tensor]:
    """Deterministic transform for feature extraction: bicubic resize to (H, W), normalise."""
    if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
        raise UserError(f"eval image size {size!r}: expected (height, width), positive integers")
    resize = T.Resize(_hw(size), interpolation=T.InterpolationMode.BICUBIC)
    return T.Compose([resize] + _normalize(mean, std))
