"""ReidImages: samples, transforms, unreadable files."""

import pytest
import torch
from torch.utils.data import DataLoader

from humanssl.data.reid import ReidImages, ReidItem
from humanssl.errors import UserError

from .helpers import write_image


def test_sample_fields_and_transform(tmp_path):
    a = write_image(tmp_path / "a.jpg", 10)
    b = write_image(tmp_path / "b.png", 200)
    ds = ReidImages([ReidItem(str(a), 3, 1, 2), (str(b), 4, 0)], transform=lambda im: torch.tensor(im.getpixel((0, 0))))
    assert len(ds) == 2
    s = ds[1]
    assert {k: s[k] for k in ("pid", "camid", "viewid", "path", "index")} == {
        "pid": 4, "camid": 0, "viewid": 0, "path": str(b), "index": 1}
    assert s["image"].tolist() == [200, 200, 200]
    raw = ReidImages([(str(a), 3, 1, 2)])[0]["image"]
    assert raw.mode == "RGB" and raw.size == (4, 8)
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["pid"].tolist() == [3, 4] and batch["viewid"].tolist() == [2, 0]


def test_corrupt_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "0001_c1s1_000001_01.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg" * 10)
    with pytest.raises(UserError, match=r"re-id image .*0001_c1s1_000001_01.jpg cannot be read"):
        ReidImages([(str(bad), 1, 0)])[0]
    with pytest.raises(UserError, match=r"re-id image .*gone.jpg does not exist"):
        ReidImages([(str(tmp_path / "gone.jpg"), 1, 0)])[0]
