"""SVLL-ReID's extra views: the training geometry plus one erased box of a third of the image."""

import random

import numpy as np
import torch
from PIL import Image

from humanssl.data.collate import collate_samples
from humanssl.data.reid_ssl_views import ReidImagesWithViews, ssl_view_transform
from humanssl.data.reid_transforms import ReidTransformConfig, reid_test_transform, reid_train_transform


def picture_file(tmp_path, w=32, h=64):
    path = tmp_path / "0003_c2s1_000001_00.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, quality=100)
    return str(path)


def test_two_views_each_erased_by_one_third_box(tmp_path):
    path = picture_file(tmp_path)
    cfg = ReidTransformConfig(size=(64, 32), flip_prob=0.0, padding=0, erasing_prob=1.0)
    ds = ReidImagesWithViews([(path, 3, 1)], reid_train_transform(cfg), ssl_view_transform(cfg))
    random.seed(0)
    torch.manual_seed(0)
    sample = ds[0]
    plain = reid_test_transform(cfg)(Image.open(path).convert("RGB"))  # no flip, no crop: the same geometry
    for view in sample["views"]:
        erased = (view != plain).any(0)
        rows, cols = erased.any(1).nonzero(), erased.any(0).nonzero()
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert int(erased.sum()) == int(box)  # one rectangle
        assert 0.27 < erased.float().mean() < 0.40
    assert not torch.equal(*sample["views"])
    assert (sample["pid"], sample["camid"], tuple(sample["image"].shape)) == (3, 1, (3, 64, 32))


def test_views_follow_the_training_geometry_and_batch_as_a_pair(tmp_path):
    path = picture_file(tmp_path)
    cfg = ReidTransformConfig(size=(64, 32), flip_prob=1.0, padding=0, erasing_prob=0.0)
    ds = ReidImagesWithViews([(path, 3, 1), (path, 4, 0)], reid_train_transform(cfg), ssl_view_transform(cfg))
    batch = collate_samples([ds[0], ds[1]])
    flipped = reid_test_transform(cfg)(Image.open(path).convert("RGB")).flip(2)
    assert len(batch["views"]) == 2 and batch["views"][0].shape == (2, 3, 64, 32)
    torch.testing.assert_close(batch["views"][1][0], flipped)
    assert batch["pid"].tolist() == [3, 4]
