"""SOLIDER multi-crop transform and the eval transform."""

import dataclasses
import pickle
import random

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from humanssl.data.collate import collate_samples
from humanssl.data.transforms import MultiCropConfig, MultiCropTransform, eval_transform
from humanssl.errors import UserError

SMALL = dict(global_size=(16, 8), local_size=(8, 4), local_number=3)

# Every random step off, full-image crops: what is left is deterministic, so single steps can
# be compared with a hand-made reference.
NOTHING_RANDOM = dict(
    global_size=(32, 16), local_size=(8, 4), local_number=1,
    global_scale=(1.0, 1.0), aspect=(0.5, 0.5), flip_prob=0.0, jitter_prob=0.0,
    grayscale_prob=0.0, blur_probs=(0.0, 0.0, 0.0), solarize_prob=0.0,
)  # fmt: skip


def photo(h=32, w=16, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def reference(img: Image.Image, cfg: MultiCropConfig) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)
    mean, std = torch.tensor(cfg.mean)[:, None, None], torch.tensor(cfg.std)[:, None, None]
    return (x - mean) / std


def seeded_crops(transform, img, seed):
    random.seed(seed)
    torch.manual_seed(seed)
    return transform(img)


def test_defaults_are_solider_recipe():
    cfg = MultiCropConfig()
    assert (cfg.global_size, cfg.local_size, cfg.local_number) == ((256, 128), (128, 64), 8)
    assert (cfg.global_scale, cfg.local_scale, cfg.aspect) == ((0.8, 1.0), (0.05, 0.8), (0.4, 0.6))
    assert (cfg.blur_probs, cfg.solarize_prob, cfg.jitter) == ((1.0, 0.1, 0.5), 0.2, (0.4, 0.4, 0.2, 0.1))


def test_crop_count_shapes_and_normalisation():
    cfg = MultiCropConfig(**SMALL)
    crops = MultiCropTransform(cfg)(photo())
    assert len(crops) == 5 == MultiCropTransform(cfg).num_crops
    assert [tuple(c.shape) for c in crops] == [(3, 16, 8)] * 2 + [(3, 8, 4)] * 3
    low = [(0 - m) / s for m, s in zip(cfg.mean, cfg.std)]
    high = [(1 - m) / s for m, s in zip(cfg.mean, cfg.std)]
    for c in crops:
        assert c.dtype == torch.float32
        for ch in range(3):
            assert low[ch] - 1e-5 <= c[ch].min() and c[ch].max() <= high[ch] + 1e-5


def test_default_sizes_and_no_local_crops():
    crops = MultiCropTransform(MultiCropConfig())(photo(300, 120))
    assert [tuple(c.shape[1:]) for c in crops] == [(256, 128)] * 2 + [(128, 64)] * 8
    only_globals = MultiCropTransform(MultiCropConfig(**{**SMALL, "local_number": 0}))(photo())
    assert [tuple(c.shape) for c in only_globals] == [(3, 16, 8)] * 2


def test_same_python_and_torch_seeds_give_bit_identical_crops():
    t = MultiCropTransform(MultiCropConfig(**SMALL))
    img = photo()
    np.random.seed(1)
    a = seeded_crops(t, img, 123)
    np.random.seed(2)  # numpy's generator must play no part
    b = seeded_crops(t, img, 123)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    c = seeded_crops(t, img, 124)
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_python_random_drives_the_blur():
    cfg = MultiCropConfig(**{**NOTHING_RANDOM, "blur_probs": (1.0, 1.0, 1.0)})
    t, img = MultiCropTransform(cfg), photo()
    torch.manual_seed(0)
    random.seed(0)
    a = t(img)
    torch.manual_seed(0)
    random.seed(1)
    b = t(img)
    assert not torch.equal(a[0], b[0])  # only Python's seed changed, so the radius did


def test_solarisation_only_on_global_view_two():
    cfg = MultiCropConfig(**{**NOTHING_RANDOM, "solarize_prob": 1.0})
    img = photo()
    view1, view2, local = seeded_crops(MultiCropTransform(cfg), img, 0)
    assert torch.allclose(view1, reference(img, cfg), atol=1e-6)
    assert torch.allclose(view2, reference(ImageOps.solarize(img, 128), cfg), atol=1e-6)
    assert not torch.allclose(view2, view1)


def test_blur_probabilities_per_view():
    img = photo()
    for probs, blurred in [((1.0, 0.0, 0.0), (True, False)), ((0.0, 1.0, 0.0), (False, True))]:
        cfg = MultiCropConfig(**{**NOTHING_RANDOM, "blur_probs": probs})
        view1, view2, _ = seeded_crops(MultiCropTransform(cfg), img, 0)
        plain = reference(img, cfg)
        assert (not torch.allclose(view1, plain, atol=1e-6)) == blurred[0]
        assert (not torch.allclose(view2, plain, atol=1e-6)) == blurred[1]


def test_flip_grayscale_and_crop_scale_are_honoured():
    img = photo()
    flip = MultiCropConfig(**{**NOTHING_RANDOM, "flip_prob": 1.0})
    view1 = seeded_crops(MultiCropTransform(flip), img, 0)[0]
    assert torch.allclose(view1, reference(img, flip).flip(-1), atol=1e-6)

    gray = MultiCropConfig(**{**NOTHING_RANDOM, "grayscale_prob": 1.0})
    view1 = seeded_crops(MultiCropTransform(gray), img, 0)[0]
    unnormalised = view1 * torch.tensor(gray.std)[:, None, None] + torch.tensor(gray.mean)[:, None, None]
    assert torch.allclose(unnormalised[0], unnormalised[1], atol=1e-5)

    # A tiny local scale crops a small patch, so a half-black image mostly yields one colour.
    half = np.zeros((64, 32, 3), dtype=np.uint8)
    half[32:] = 255
    cfg = MultiCropConfig(**{**NOTHING_RANDOM, "local_number": 20, "local_scale": (0.01, 0.01)})
    locals_ = seeded_crops(MultiCropTransform(cfg), Image.fromarray(half), 0)[2:]
    spread = [(c.amax(dim=(1, 2)) - c.amin(dim=(1, 2))).max().item() for c in locals_]
    assert sum(s < 1e-3 for s in spread) >= 15


def test_transform_pickles_for_worker_processes():
    t = MultiCropTransform(MultiCropConfig(**SMALL))
    clone = pickle.loads(pickle.dumps(t))
    a, b = seeded_crops(t, photo(), 5), seeded_crops(clone, photo(), 5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_collate_of_multicrop_samples():
    t = MultiCropTransform(MultiCropConfig(**SMALL))
    batch = collate_samples([{"image": t(photo(seed=i)), "index": i, "failed_reads": []} for i in range(4)])
    assert [tuple(c.shape) for c in batch["image"]] == [(4, 3, 16, 8)] * 2 + [(4, 3, 8, 4)] * 3
    assert batch["failed_reads"] == []


def test_eval_transform_is_deterministic_resize_and_normalise():
    tf = eval_transform((16, 8))
    img = photo(40, 20)
    out = tf(img)
    assert out.shape == (3, 16, 8) and torch.equal(out, tf(img))
    same_size = photo(16, 8)
    cfg = MultiCropConfig()
    assert torch.allclose(tf(same_size), reference(same_size, cfg), atol=1e-6)
    custom = eval_transform((16, 8), mean=(0.5,) * 3, std=(0.5,) * 3)(same_size)
    assert custom.min() >= -1 and custom.max() <= 1


def test_config_accepts_yaml_lists_and_rejects_bad_values():
    cfg = MultiCropConfig(global_size=[32, 16], aspect=[0.4, 0.6])
    assert cfg.global_size == (32, 16) and cfg.aspect == (0.4, 0.6)
    assert dataclasses.asdict(cfg)["local_number"] == 8
    bad = [
        dict(global_scale=(0.9, 0.5)),
        dict(local_number=-1),
        dict(blur_probs=(1.0, 0.1)),
        dict(solarize_prob=1.5),
        dict(local_size=(0, 4)),
    ]
    for kwargs in bad:
        name = next(iter(kwargs))
        with pytest.raises(UserError, match=name):
            MultiCropConfig(**kwargs)
    with pytest.raises(UserError, match="eval image size"):
        eval_transform((16,))
