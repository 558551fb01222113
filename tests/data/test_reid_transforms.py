"""Re-id train/test transforms: sizes, normalisation, flip, pad-crop, erasing, seeding."""

import random

import numpy as np
import pytest
import torch
from PIL import Image

from humanssl.config import load_config
from humanssl.data.reid_transforms import ReidTransformConfig, reid_test_transform, reid_train_transform
from humanssl.errors import UserError
from humanssl.finetune_config import FinetuneConfig


def picture(w=20, h=40):
    g = np.random.default_rng(0)
    return Image.fromarray(g.integers(0, 256, (h, w, 3), dtype=np.uint8))


def seeded(fn, img, seed):
    random.seed(seed)
    torch.manual_seed(seed)
    return fn(img)


def test_test_transform_resizes_and_normalises_with_half():
    cfg = ReidTransformConfig(size=(32, 16))
    white = reid_test_transform(cfg)(Image.new("RGB", (7, 9), (255, 255, 255)))
    black = reid_test_transform(cfg)(Image.new("RGB", (7, 9), (0, 0, 0)))
    assert white.shape == (3, 32, 16)
    assert torch.allclose(white, torch.ones_like(white)) and torch.allclose(black, -torch.ones_like(black))


def test_train_output_size_for_any_input():
    tf = reid_train_transform(ReidTransformConfig(size=(32, 16)))
    for size in ((5, 50), (64, 64), (16, 32)):
        assert seeded(tf, Image.new("RGB", size), 0).shape == (3, 32, 16)


def test_flip_only_is_the_mirrored_test_image():
    cfg = ReidTransformConfig(size=(40, 20), flip_prob=1.0, padding=0, erasing_prob=0.0)
    img = picture()
    assert torch.equal(reid_train_transform(cfg)(img), reid_test_transform(cfg)(img).flip(2))


def test_pad_and_crop_shifts_the_image_within_the_padding():
    cfg = ReidTransformConfig(size=(40, 20), flip_prob=0.0, padding=3, erasing_prob=0.0)
    img, plain = picture(), reid_test_transform(cfg)(picture())
    out = seeded(reid_train_transform(cfg), img, 1)
    # some shift (dy, dx) in [-3, 3]^2 maps the plain image onto the crop where they overlap
    hits = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
            if torch.equal(out[:, max(dy, 0):40 + min(dy, 0), max(dx, 0):20 + min(dx, 0)],
                           plain[:, max(-dy, 0):40 + min(-dy, 0), max(-dx, 0):20 + min(-dx, 0)])]
    assert hits
    dy, dx = hits[0]
    if (dy, dx) != (0, 0):  # the uncovered border is padding: black, i.e. -1 after normalisation
        border = out[:, :dy] if dy > 0 else out[:, 40 + dy:] if dy < 0 else out[:, :, :dx] if dx > 0 else out[:, :, 20 + dx:]
        assert torch.all(border == -1.0)


def test_random_erasing_changes_one_rectangle_and_follows_the_seed():
    base = ReidTransformConfig(size=(40, 20), flip_prob=0.0, padding=0, erasing_prob=0.0)
    erase = ReidTransformConfig(size=(40, 20), flip_prob=0.0, padding=0, erasing_prob=1.0)
    img = picture()
    a = seeded(reid_train_transform(erase), img, 5)
    changed = (a != reid_test_transform(base)(img)).any(0)
    rows, cols = changed.any(1).nonzero().squeeze(1), changed.any(0).nonzero().squeeze(1)
    assert 0.02 * 800 * 0.5 <= changed.sum() <= 800 / 3 + 1
    assert changed[rows.min():rows.max() + 1, cols.min():cols.max() + 1].float().mean() > 0.9  # a rectangle
    assert torch.equal(a, seeded(reid_train_transform(erase), img, 5))
    assert not torch.equal(a, seeded(reid_train_transform(erase), img, 6))


def test_bad_settings_name_the_key():
    with pytest.raises(UserError, match="transforms.size"):
        ReidTransformConfig(size=(0, 16))
    with pytest.raises(UserError, match="transforms.erasing_prob"):
        ReidTransformConfig(erasing_prob=1.5)
    with pytest.raises(UserError, match="transforms.erasing_mode"):
        load_config(FinetuneConfig, None, ["transforms.erasing_mode=blur"])
