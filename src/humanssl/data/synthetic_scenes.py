"""Synthetic scenes for SS-PRL: several people and objects on a background, multi-label.

A stand-in for COCO that runs anywhere: every image is a street-like background (the painter of
`synthetic_render.py`) with a random subset of `SCENE_CLASSES` in it, one to three instances of
each class present, at different sizes and places. The label of an image is the set of classes
it shows (a 0/1 vector), as COCO's image-level labels are. Images and labels are a pure function
of (seed, index): rendering is bit-identical across runs, processes and worker counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw

from humanssl.data.synthetic_render import (
    PALETTE,
    _Frame,
    camera_background,
    draw_person,
    rng,
    sample_camera,
    sample_identity,
    sample_pose,
)
from humanssl.errors import UserError

SCENE_CLASSES = ("person", "ball", "box", "tree", "car", "sign")

# stream tags of this module (synthetic_render uses 1..8)
SCENE, OBJECT = 21, 22


@dataclass(frozen=True)
class SyntheticScenes:
    """The scene world: `render(index)` -> (RGB image, labels over SCENE_CLASSES)."""

    seed: int = 0
    image_size: tuple[int, int] = (128, 128)  # (H, W)
    num_backgrounds: int = 16
    present_prob: float = 0.35  # chance of each class being in an image (at least one always is)

    def __post_init__(self):
        h, w = self.image_size
        if int(h) != h or int(w) != w or h < 16 or w < 16:
            raise UserError(f"synthetic scene image_size {self.image_size!r}: expected (height, width) >= 16 px")
        if self.num_backgrounds < 1:
            raise UserError(f"synthetic scene num_backgrounds {self.num_backgrounds}: expected >= 1")
        if not 0 < self.present_prob <= 1:
            raise UserError(f"synthetic scene present_prob {self.present_prob}: expected in (0, 1]")

    @property
    def classes(self) -> tuple[str, ...]:
        return SCENE_CLASSES

    def labels(self, index: int) -> np.ndarray:
        """The 0/1 vector of classes present in image `index` (no rendering)."""
        return self._layout(index)[0]

    def render(self, index: int) -> tuple[Image.Image, np.ndarray]:
        present, bg_id, objects = self._layout(index)
        img = _background(self.seed, bg_id, tuple(int(s) for s in self.image_size)).copy()
        # place the background window by the scene stream: a second look at the same street
        g = rng(self.seed, SCENE, index, 1)
        scene_w, H = img.size
        W = scene_w // 2
        left = int(g.integers(0, scene_w - W + 1))
        img = img.crop((left, 0, left + W, H))
        draw = ImageDraw.Draw(img)
        for k, (cls, x, y, s) in enumerate(objects):  # sorted by y: farther (higher) things first
            _DRAW[cls](draw, self.seed, index, k, x * W, y * H, s * H)
        return img, present

    def _layout(self, index: int):
        if index < 0:
            raise UserError(f"synthetic scene index {index}: expected >= 0")
        g = rng(self.seed, SCENE, index)
        present = (g.random(len(SCENE_CLASSES)) < self.present_prob).astype(np.float32)
        if not present.any():
            present[int(g.integers(len(SCENE_CLASSES)))] = 1.0
        bg_id = int(g.integers(self.num_backgrounds)) + 1
        objects = []
        for c in np.flatnonzero(present):
            for _ in range(int(g.integers(1, 4))):
                # x: centre, y: ground line, s: height; all fractions of the image
                objects.append((SCENE_CLASSES[c], float(g.uniform(0.1, 0.9)), float(g.uniform(0.45, 0.98)),
                                float(g.uniform(0.2, 0.55))))
        objects.sort(key=lambda o: o[2])
        return present, bg_id, objects


@lru_cache(maxsize=64)
def _background(seed: int, bg_id: int, size: tuple[int, int]) -> Image.Image:
    return camera_background(seed, bg_id, size)


def _colour(seed: int, index: int, k: int) -> tuple[int, int, int]:
    g = rng(seed, OBJECT, index, k)
    return PALETTE[int(g.integers(len(PALETTE)))]


def _person(draw, seed, index, k, x, ground, h):
    pid = int(rng(seed, OBJECT, index, k, 1).integers(1 << 20))
    cam = sample_camera(seed, 1 + k % 4)
    pose = sample_pose(seed, pid, 1 + k % 4, index, cam)
    draw_person(draw, _Frame(x, ground - h, h), sample_identity(seed, pid), pose)


def _ball(draw, seed, index, k, x, ground, h):
    r = 0.2 * h
    draw.ellipse([x - r, ground - 2 * r, x + r, ground], fill=_colour(seed, index, k), outline=(20, 20, 20))


def _box(draw, seed, index, k, x, ground, h):
    s = 0.35 * h
    colour = _colour(seed, index, k)
    draw.rectangle([x - s / 2, ground - s, x + s / 2, ground], fill=colour, outline=(30, 30, 30))
    draw.line([x - s / 2, ground - s, x + s / 2, ground], fill=(30, 30, 30), width=max(1, int(s / 12)))


def _tree(draw, seed, index, k, x, ground, h):
    trunk_w = 0.06 * h
    draw.rectangle([x - trunk_w, ground - 0.4 * h, x + trunk_w, ground], fill=(101, 67, 33))
    green = (34, int(100 + 80 * rng(seed, OBJECT, index, k).random()), 34)
    draw.polygon([(x - 0.3 * h, ground - 0.35 * h), (x + 0.3 * h, ground - 0.35 * h), (x, ground - h)], fill=green)


def _car(draw, seed, index, k, x, ground, h):
    w, body = 0.9 * h, 0.25 * h
    colour = _colour(seed, index, k)
    draw.rectangle([x - w / 2, ground - body - 0.08 * h, x + w / 2, ground - 0.08 * h], fill=colour)
    draw.rectangle([x - w / 4, ground - body - 0.22 * h, x + w / 4, ground - body - 0.08 * h],
                   fill=tuple(int(0.7 * c) for c in colour))
    for wx in (x - w / 3, x + w / 3):
        draw.ellipse([wx - 0.09 * h, ground - 0.18 * h, wx + 0.09 * h, ground], fill=(15, 15, 15))


def _sign(draw, seed, index, k, x, ground, h):
    draw.rectangle([x - 0.02 * h, ground - 0.7 * h, x + 0.02 * h, ground], fill=(120, 120, 120))
    r = 0.15 * h
    draw.regular_polygon((x, ground - 0.7 * h, r), 8, fill=(200, 30, 30), outline=(240, 240, 240))


_DRAW = {"person": _person, "ball": _ball, "box": _box, "tree": _tree, "car": _car, "sign": _sign}


class SyntheticScenesDataset(torch.utils.data.Dataset):
    """`num_images` scenes; a sample is {"image", "labels" (float 0/1 over classes), "difficult"
    (all False), "index"}, the format of `humanssl.data.multilabel`.

    `with_labels=False` gives the unlabelled stream for pretraining ({"image", "index",
    "failed_reads": []}, like `unlabeled.py`)."""

    def __init__(self, world: SyntheticScenes, num_images: int, transform=None, first_index: int = 0,
                 with_labels: bool = True):
        if num_images < 1:
            raise UserError(f"synthetic scenes: num_images {num_images}, expected >= 1")
        self.world, self.num_images, self.transform = world, int(num_images), transform
        self.first_index, self.with_labels = int(first_index), with_labels
        self.classes = list(world.classes)

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.num_images:
            raise IndexError(f"index {i} out of range for {self.num_images} scenes")
        img, labels = self.world.render(self.first_index + i)
        image = self.transform(img) if self.transform is not None else img
        if not self.with_labels:
            return {"image": image, "index": i, "failed_reads": []}
        return {"image": image, "labels": torch.from_numpy(labels),
                "difficult": torch.zeros(len(labels), dtype=torch.bool), "index": i}

    def label_matrix(self) -> np.ndarray:
        """(num_images, num_classes) 0/1 ground truth, without rendering."""
        return np.stack([self.world.labels(self.first_index + i) for i in range(self.num_images)])
