"""SS-PRL's views of one image: SwAV's multi-crop plus the pyramid patches (notes §1.3).

* Global crops: for each size group j, `nmb_crops[j]` RandomResizedCrops to `size_crops[j]` with
  area scale (`min_scale_crops[j]`, `max_scale_crops[j]`); each flipped (p 0.5), colour-jittered
  (0.8, 0.8, 0.8, 0.2 with p 0.8), greyed (p 0.2), PIL-blurred (p 0.5, radius U(0.1, 2)) and
  normalised with SwAV's statistics (std 0.228 for red, a quirk of the official code).
* Pyramid level i: ONE RandomResizedCrop of the image to a square `loc_size_crops[i]` (scale
  `loc_scale[i]`), cut into g x g cells of floor(size / g) px. The cells are visited in one
  random order (a permutation of the rows times a permutation of the columns) shared by all
  `nmb_loc_views[i]` views; in every view each cell gets its own RandomCrop to
  `loc_size_patches[i]`, flip, colour distortion, blur and normalisation. So patch k of view 0
  and patch k of view 1 come from the same cell: the pairs the local loss compares.

`SSPRLViews(img)` returns {"image": [global crops, large first], "patches0": [view 0's g^2
patches, view 1's ...], "patches1": ...}: with `ViewsDataset` lifting those keys into each
sample, `collate_samples` batches them into exactly what `methods/ssprl.py` reads.

Every random draw comes from Python's `random` or torch's global generator (as in
`transforms.py`), which the engine seeds per sample.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from humanssl.data.transforms import RandomGaussianBlur
from humanssl.errors import UserError

SWAV_MEAN = (0.485, 0.456, 0.406)
SWAV_STD = (0.228, 0.224, 0.225)  # the official value (torchvision's is 0.229)


@dataclass
class SSPRLViewsConfig:
    """Official COCO recipe (`train_SSPRL.sh`); every size can be shrunk for tests and CPU demos."""

    size_crops: list[int] = field(default_factory=lambda: [224, 96])
    nmb_crops: list[int] = field(default_factory=lambda: [2, 6])
    min_scale_crops: list[float] = field(default_factory=lambda: [0.14, 0.05])
    max_scale_crops: list[float] = field(default_factory=lambda: [1.0, 0.14])
    grid_perside: list[int] = field(default_factory=lambda: [2, 3])
    nmb_loc_views: list[int] = field(default_factory=lambda: [2, 2])
    loc_size_crops: list[int] = field(default_factory=lambda: [314, 383])
    loc_size_patches: list[int] = field(default_factory=lambda: [112, 96])
    loc_min_scale: list[float] = field(default_factory=lambda: [0.6, 0.6])
    loc_max_scale: list[float] = field(default_factory=lambda: [1.0, 1.0])
    flip_prob: float = 0.5
    jitter: list[float] = field(default_factory=lambda: [0.8, 0.8, 0.8, 0.2])  # bright, contr, sat, hue
    jitter_prob: float = 0.8
    grayscale_prob: float = 0.2
    blur_prob: float = 0.5
    blur_radius: list[float] = field(default_factory=lambda: [0.1, 2.0])
    mean: list[float] = field(default_factory=lambda: list(SWAV_MEAN))
    std: list[float] = field(default_factory=lambda: list(SWAV_STD))

    def __post_init__(self):
        for f in fields(self):  # YAML and tuples alike end up as lists
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                setattr(self, f.name, list(value))
        self.check()

    def check(self) -> None:
        def fail(name: str, expected: str):
            raise UserError(f"ssprl view setting {name}={getattr(self, name)!r}: expected {expected}")

        groups = len(self.size_crops)
        for name in ("nmb_crops", "min_scale_crops", "max_scale_crops"):
            if len(getattr(self, name)) != groups:
                fail(name, f"one entry per global crop size ({groups}, the length of size_crops)")
        if any(int(s) != s or s < 1 for s in self.size_crops):
            fail("size_crops", "positive integers")
        if any(int(n) != n or n < 0 for n in self.nmb_crops) or sum(self.nmb_crops) < 2:
            fail("nmb_crops", "counts >= 0, at least 2 crops in all")
        for lo, hi in zip(self.min_scale_crops, self.max_scale_crops):
            if not 0 < lo <= hi <= 1:
                fail("min_scale_crops", "area fractions with 0 < min <= max <= 1 (see max_scale_crops)")
        levels = len(self.grid_perside)
        for name in ("nmb_loc_views", "loc_size_crops", "loc_size_patches", "loc_min_scale", "loc_max_scale"):
            if len(getattr(self, name)) != levels:
                fail(name, f"one entry per pyramid level ({levels}, the length of grid_perside)")
        for i, (g, views, size, patch) in enumerate(zip(self.grid_perside, self.nmb_loc_views,
                                                        self.loc_size_crops, self.loc_size_patches)):
            if int(g) != g or g < 1:
                fail("grid_perside", "positive integers (cells per side)")
            if int(views) != views or views < 2:
                fail("nmb_loc_views", "integers >= 2 (two views of a cell predict each other)")
            if int(patch) != patch or patch < 1 or int(size) != size or size // g < patch:
                raise UserError(
                    f"ssprl view setting loc_size_patches[{i}]={patch}: expected a positive integer no larger "
                    f"than a cell of level {i}, loc_size_crops[{i}] // grid_perside[{i}] = {size} // {g} "
                    f"= {size // g}")
        for lo, hi in zip(self.loc_min_scale, self.loc_max_scale):
            if not 0 < lo <= hi <= 1:
                fail("loc_min_scale", "area fractions with 0 < min <= max <= 1 (see loc_max_scale)")
        if len(self.jitter) != 4 or min(self.jitter) < 0 or self.jitter[3] > 0.5:
            fail("jitter", "(brightness, contrast, saturation, hue), all >= 0, hue <= 0.5")
        for name in ("flip_prob", "jitter_prob", "grayscale_prob", "blur_prob"):
            if not 0 <= getattr(self, name) <= 1:
                fail(name, "a probability in [0, 1]")
        if len(self.blur_radius) != 2 or not 0 <= self.blur_radius[0] <= self.blur_radius[1]:
            fail("blur_radius", "(min, max) radii in pixels, 0 <= min <= max")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            fail("std", "three means and three positive standard deviations")

    @property
    def num_crops(self) -> int:
        return int(sum(self.nmb_crops))


class SSPRLViews:
    """PIL image -> {"image": global crops, "patches{i}": views x g^2 patches per level}."""

    def __init__(self, cfg: SSPRLViewsConfig | None = None):
        self.cfg = cfg = cfg if cfg is not None else SSPRLViewsConfig()
        self.global_crops = []
        for size, n, lo, hi in zip(cfg.size_crops, cfg.nmb_crops, cfg.min_scale_crops, cfg.max_scale_crops):
            crop = T.RandomResizedCrop(int(size), scale=(lo, hi))
            self.global_crops.extend([T.Compose([crop, self._distort()])] * int(n))
        self.regions = [T.RandomResizedCrop(int(size), scale=(lo, hi))
                        for size, lo, hi in zip(cfg.loc_size_crops, cfg.loc_min_scale, cfg.loc_max_scale)]
        self.patches = [T.Compose([T.RandomCrop(int(p)), self._distort()]) for p in cfg.loc_size_patches]

    def _distort(self) -> T.Compose:
        c = self.cfg
        return T.Compose([
            T.RandomHorizontalFlip(c.flip_prob),
            T.RandomApply([T.ColorJitter(*c.jitter)], p=c.jitter_prob),
            T.RandomGrayscale(c.grayscale_prob),
            RandomGaussianBlur(c.blur_prob, tuple(c.blur_radius)),
            T.ToTensor(),
            T.Normalize(c.mean, c.std),
        ])

    def __call__(self, img: Image.Image) -> dict[str, list[torch.Tensor]]:
        out = {"image": [view(img) for view in self.global_crops]}
        for i, (g, views) in enumerate(zip(self.cfg.grid_perside, self.cfg.nmb_loc_views)):
            region = self.regions[i](img)
            cells = grid_cells(region, int(g))
            order = cell_order(int(g))
            out[f"patches{i}"] = [self.patches[i](cells[k]) for _ in range(int(views)) for k in order]
        return out

    def __repr__(self):
        return f"{type(self).__name__}({self.cfg})"


def grid_cells(img: Image.Image, g: int) -> list[Image.Image]:
    """The g x g cells of floor(size / g) px, row-major (index r * g + c); any remainder at the
    right and bottom edges is dropped, as officially."""
    w, h = img.size
    cw, ch = w // g, h // g
    return [img.crop((c * cw, r * ch, (c + 1) * cw, (r + 1) * ch)) for r in range(g) for c in range(g)]


def cell_order(g: int) -> list[int]:
    """A random order of the g^2 cells: shuffled rows, each row's cells in shuffled column order."""
    rows, cols = list(range(g)), list(range(g))
    random.shuffle(rows)
    random.shuffle(cols)
    return [r * g + c for r in rows for c in cols]


class ViewsDataset(Dataset):
    """Wraps a dataset whose samples hold the dict of `SSPRLViews` under "image" and lifts its
    keys into the sample, so the batch has "image" and "patches{i}" at the top level."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        sample = dict(self.dataset[index])
        views = sample.pop("image")
        if not isinstance(views, dict):
            raise UserError(f"{type(self.dataset).__name__} sample {index}: expected its 'image' to be the "
                            f"views of SSPRLViews (a dict), got {type(views).__name__}; pass "
                            "transform=SSPRLViews(...) to the dataset")
        sample.update(views)
        return sample
