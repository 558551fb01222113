import random

import numpy as np
import pytest
import torch
from PIL import Image

from humanssl.data.collate import collate_samples
from humanssl.data.ssprl_views import SSPRLViews, SSPRLViewsConfig, ViewsDataset, cell_order, grid_cells
from humanssl.data.synthetic_scenes import SyntheticScenes, SyntheticScenesDataset
from humanssl.errors import UserError
from humanssl.methods.ssprl import SSPRL, SSPRLConfig
from humanssl.models.backbones import resnet_mini


def tiny_views(**kw) -> SSPRLViewsConfig:
    base = dict(size_crops=[32, 16], loc_size_crops=[40, 45], loc_size_patches=[18, 14])
    return SSPRLViewsConfig(**{**base, **kw})


def test_views_have_the_official_counts_large_crops_first():
    img = Image.new("RGB", (64, 64), (90, 120, 30))
    out = SSPRLViews(tiny_views())(img)
    assert sorted(out) == ["image", "patches0", "patches1"]
    assert [tuple(t.shape) for t in out["image"]] == [(3, 32, 32)] * 2 + [(3, 16, 16)] * 6
    assert [tuple(t.shape) for t in out["patches0"]] == [(3, 18, 18)] * (2 * 4)
    assert [tuple(t.shape) for t in out["patches1"]] == [(3, 14, 14)] * (2 * 9)
    assert sum(len(v) for v in out.values()) == 34  # the official crop list per image


def test_patch_k_of_every_view_is_the_same_cell():
    # a 3x3 image of 9 flat colours; with no distortion and patches the size of a cell, each
    # patch is one flat colour, which names its cell
    g, cell = 3, 12
    colours = np.array([[20 * k, 255 - 20 * k, (37 * k) % 256] for k in range(g * g)], dtype=np.uint8)
    arr = np.repeat(np.repeat(colours.reshape(g, g, 3), cell, axis=0), cell, axis=1)
    img = Image.fromarray(arr)
    cfg = tiny_views(grid_perside=[g], nmb_loc_views=[3], loc_size_crops=[g * cell], loc_size_patches=[cell],
                     loc_min_scale=[1.0], loc_max_scale=[1.0], flip_prob=0.0, jitter_prob=0.0,
                     grayscale_prob=0.0, blur_prob=0.0, mean=[0, 0, 0], std=[1, 1, 1])
    views = SSPRLViews(cfg)
    orders = set()
    for seed in range(12):
        random.seed(seed)
        torch.manual_seed(seed)
        patches = views(img)["patches0"]
        ids = []
        for p in patches:
            assert torch.equal(p, p[:, :1, :1].expand_as(p))  # one flat cell, nothing mixed in
            rgb = np.round(p[:, 0, 0].numpy() * 255).astype(int)
            ids.append(int(np.argmin(np.abs(colours.astype(int) - rgb).sum(1))))
        per_view = [ids[v * g * g:(v + 1) * g * g] for v in range(3)]
        assert sorted(per_view[0]) == list(range(g * g))
        assert per_view[1] == per_view[0] and per_view[2] == per_view[0]
        orders.add(tuple(per_view[0]))
    assert len(orders) > 1  # the order is random from image to image


def test_cell_order_is_rows_times_columns():
    random.seed(3)
    for _ in range(20):
        order = cell_order(3)
        rows = [order[i * 3] // 3 for i in range(3)]
        assert sorted(order) == list(range(9))
        assert all(order[i * 3 + j] // 3 == rows[i] for i in range(3) for j in range(3))
        cols = [k % 3 for k in order[:3]]
        assert all([k % 3 for k in order[i * 3:i * 3 + 3]] == cols for i in range(3))


def test_grid_cells_drop_the_remainder():
    cells = grid_cells(Image.new("RGB", (47, 47)), 3)
    assert len(cells) == 9 and all(c.size == (15, 15) for c in cells)


@pytest.mark.parametrize("bad, word", [
    (dict(loc_size_patches=[21, 14]), "loc_size_patches[0]"),  # 40 // 2 = 20 < 21
    (dict(nmb_loc_views=[2]), "nmb_loc_views"),
    (dict(nmb_crops=[2]), "nmb_crops"),
    (dict(min_scale_crops=[0.5, 0.05], max_scale_crops=[0.4, 0.14]), "min_scale_crops"),
])
def test_bad_view_settings_are_user_errors(bad, word):
    with pytest.raises(UserError, match=word.replace("[", r"\[").replace("]", r"\]")):
        tiny_views(**bad)


def test_views_dataset_needs_the_views_dict():
    ds = SyntheticScenesDataset(SyntheticScenes(seed=0, image_size=(48, 48)), 2, transform=None, with_labels=False)
    with pytest.raises(UserError, match="SSPRLViews"):
        ViewsDataset(ds)[0]


def test_one_ssprl_step_on_synthetic_scene_views():
    random.seed(0)
    torch.manual_seed(0)
    views = SSPRLViews(tiny_views())
    world = SyntheticScenes(seed=1, image_size=(64, 64))
    ds = ViewsDataset(SyntheticScenesDataset(world, 4, views, with_labels=False))
    batch = collate_samples([ds[i] for i in range(4)])
    assert len(batch["image"]) == 8 and batch["image"][0].shape == (4, 3, 32, 32)
    assert len(batch["patches1"]) == 18 and batch["patches1"][0].shape == (4, 3, 14, 14)

    cfg = SSPRLConfig(hidden_mlp=32, feat_dim=16, nmb_ptypes=10, nmb_local_ptypes=[6, 6], queue_length=0,
                      local_queue_length=[0, 0], freeze_prototypes_niters=1)
    method = SSPRL(cfg, backbone=resnet_mini(width=8))
    losses = method.training_step(batch, step=0)
    assert set(losses) == {"global", "local", "cross_scale"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    method.after_backward(0)
    assert method.heads.ptypes.weight.grad is None  # frozen in the first step
    grads = [p.grad for p in method.backbone.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
