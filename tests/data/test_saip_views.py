"""SAIP's views: person crops, the region image and the multi-person reference with its masks."""

import random

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from humanssl.data.collate import collate_samples
from humanssl.data.saip_views import SaipViews, SaipViewsConfig, paste, paste_positions
from humanssl.data.ssprl_views import ViewsDataset
from humanssl.data.synthetic import SyntheticPersons, SyntheticUnlabeled
from humanssl.data.transforms import MultiCropConfig
from humanssl.errors import UserError

CROPS = MultiCropConfig(global_size=(64, 32), local_number=3, local_size=(32, 16))
REF = SaipViewsConfig(reference_size=(48, 48), procedural_backgrounds=5)


def person():
    return SyntheticPersons(seed=0, num_cameras=2, image_size=(64, 32)).render(1, 1, 0)


def seeded(views, img, seed):
    random.seed(seed)
    torch.manual_seed(seed)
    return views(img)


def test_views_counts_and_sizes():
    out = seeded(SaipViews(CROPS, REF), person(), 0)
    assert sorted(out) == ["image", "inst_mask", "reference", "region", "roi_mask"]
    assert [tuple(t.shape) for t in out["image"]] == [(3, 64, 32)] * 2 + [(3, 32, 16)] * 3
    assert out["region"].shape == (3, 32, 16) and out["reference"].shape == (3, 48, 48)
    assert out["inst_mask"].shape == out["roi_mask"].shape == (48, 48)


def test_official_defaults_give_thirteen_tensors():
    out = seeded(SaipViews(), person(), 0)
    assert [tuple(t.shape) for t in out["image"]] == [(3, 256, 128)] * 2 + [(3, 128, 64)] * 7
    assert out["reference"].shape == (3, 224, 224)
    assert len(out["image"]) + 4 == 13


def test_region_is_global_view_one_shrunk_by_nearest():
    out = seeded(SaipViews(CROPS, REF), person(), 1)
    torch.testing.assert_close(out["region"], F.interpolate(out["image"][0][None], size=(32, 16))[0])


def test_patches_are_blended_where_the_masks_say():
    views = SaipViews(CROPS, REF)
    img = person()
    out = seeded(views, img, 3)
    random.seed(3)
    torch.manual_seed(3)
    crops = views.person_views(img)  # the same draws, in the same order, as in views(img)
    background = views.reference_view(views.backgrounds(random.randrange(len(views.backgrounds))))
    for mask, patch in ((out["roi_mask"], crops[-1]), (out["inst_mask"], out["region"])):
        assert int(mask.sum()) == 32 * 16
        rows, cols = mask.nonzero(as_tuple=True)
        r, c = int(rows.min()), int(cols.min())
        window = out["reference"][:, r:r + 32, c:c + 16]
        torch.testing.assert_close(window, 0.7 * patch + 0.3 * background[:, r:r + 32, c:c + 16])
    untouched = (out["roi_mask"] + out["inst_mask"]) == 0
    torch.testing.assert_close(out["reference"][:, untouched], background[:, untouched])
    assert (out["roi_mask"] * out["inst_mask"]).sum() == 0


def test_paste_positions_follow_the_official_ranges():
    seen = set()
    for seed in range(300):
        random.seed(seed)
        (r1, c1), (r2, c2) = paste_positions((224, 224), (128, 64))
        assert 0 <= r1 <= 94 and 0 <= r2 <= 94 and 0 <= c1 <= 94
        assert c1 + 64 <= c2 <= 158  # right of the first patch, inside the image
        seen.add(c2 - c1 - 64 == 0)
    assert seen == {True, False}


def test_paste_blends_and_marks():
    ref, patch = torch.zeros(3, 6, 6), torch.ones(3, 2, 3)
    out, mask = paste(ref, patch, 1, 2, 0.7)
    assert out[:, 1:3, 2:5].eq(0.7).all() and out.sum() == pytest.approx(0.7 * 18)
    assert mask.sum() == 6 and mask[1:3, 2:5].eq(1).all()


def test_same_seed_same_views_and_batches(tmp_path):
    world = SyntheticPersons(seed=0, num_cameras=2, image_size=(64, 32))
    data = ViewsDataset(SyntheticUnlabeled(4, 2, world, transform=SaipViews(CROPS, REF)))
    random.seed(5)
    torch.manual_seed(5)
    a = collate_samples([data[i] for i in range(3)])
    random.seed(5)
    torch.manual_seed(5)
    b = collate_samples([data[i] for i in range(3)])
    assert a["reference"].shape == (3, 3, 48, 48) and len(a["image"]) == 5 and a["inst_mask"].shape == (3, 48, 48)
    for key in ("reference", "region", "inst_mask", "roi_mask"):
        assert torch.equal(a[key], b[key])


def test_background_folder(tmp_path):
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
        Image.new("RGB", (60, 50), colour).save(tmp_path / f"bg{i}.png")
    cfg = SaipViewsConfig(reference_size=(48, 48), background_root=str(tmp_path))
    no_jitter = MultiCropConfig(global_size=(64, 32), local_number=1, local_size=(32, 16), jitter_prob=0.0,
                                grayscale_prob=0.0, solarize_prob=0.0)
    views = SaipViews(no_jitter, SaipViewsConfig(**{**vars(cfg), "reference_solarize_prob": 0.0}))
    out = seeded(views, person(), 0)
    corner = out["reference"][:, -1, -1] * torch.tensor(no_jitter.std) + torch.tensor(no_jitter.mean)
    assert corner.max() > 0.9 and corner.min() < 0.1  # a pure red or blue background pixel


def test_mistakes_are_named():
    with pytest.raises(UserError, match="background_root"):
        SaipViews(CROPS, SaipViewsConfig(reference_size=(48, 48), background_root="/no/such/folder"))
    with pytest.raises(UserError, match="cannot hold two"):
        SaipViews(CROPS, SaipViewsConfig(reference_size=(48, 32)))
    with pytest.raises(UserError, match="local_number"):
        SaipViews(MultiCropConfig(local_number=0), REF)
    with pytest.raises(UserError, match="paste_alpha"):
        SaipViewsConfig(paste_alpha=1.5)
