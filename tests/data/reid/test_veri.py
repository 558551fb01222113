"""VeRi-776: names with 3-digit cameras, view ids from the keypoint files, dropped images."""

import pytest

from humanssl.data.reid import load_reid_dataset
from humanssl.errors import UserError
from tests.fixtures import needs_fixture

from .helpers import PARSING, parsing_fixture, rows, touch, tree_from_fixture

KEYPOINTS = " ".join(["-1"] * 40)  # 20 (x, y) keypoints; only the last field, the view, is read


def view_lines(entry_rows, folder):
    return "".join(f"VeRi/{folder}/{row[0].rsplit('/', 1)[1]} {KEYPOINTS} {row[3]}\n" for row in entry_rows)


@needs_fixture(*PARSING)
def test_matches_official_parsing(tmp_path):
    entry = parsing_fixture()["veri"]
    tree_from_fixture(tmp_path, entry)
    touch(tmp_path, "VeRi/image_test/0099_c004_00000001_0.jpg")  # no view entry: dropped, as officially
    veri = tmp_path / "VeRi"
    (veri / "keypoint_train.txt").write_text(view_lines(entry["train"], "image_train"))
    (veri / "keypoint_test.txt").write_text(view_lines(entry["query"] + entry["gallery"], "image_test"))
    ds = load_reid_dataset("veri", tmp_path)
    for split in ("train", "query", "gallery"):
        assert rows(getattr(ds, split), tmp_path) == entry[split], split
    assert (ds.num_train_pids, ds.num_train_cams, ds.num_train_views) == (
        entry["num_train_pids"], entry["num_train_cams"], entry["num_train_vids"])
    assert ds.pid2label == {776: 0, 1: 1, 2: 2}
    assert ds.notes[1] == "1 images without a view annotation dropped"
    with pytest.raises(UserError, match=r"0099_c004_00000001_0.jpg has no entry in the view files"):
        load_reid_dataset("veri", tmp_path, missing_view="error")


def veri_tree(root):
    touch(root / "VeRi", "image_train/0001_c001_00016450_0.jpg", "image_train/0001_c012_00016460_0.jpg",
          "image_query/0030_c008_00049745_0.jpg", "image_test/0030_c020_00049799_0.jpg")
    return root / "VeRi"


def test_without_view_files_every_view_is_zero(tmp_path):
    veri_tree(tmp_path)
    ds = load_reid_dataset("veri776", tmp_path)
    assert {it.viewid for it in ds.train + ds.query + ds.gallery} == {0}
    assert sorted(it.camid for it in ds.train + ds.gallery) == [0, 11, 19]
    assert "every view id is 0" in ds.notes[0]


def test_keypoint_dir_option_and_errors(tmp_path):
    folder = veri_tree(tmp_path)
    kp = tmp_path / "kp"
    kp.mkdir()
    (kp / "keypoint_train.txt").write_text(f"VeRi/image_train/0001_c001_00016450_0.jpg {KEYPOINTS} 5\n"
                                           f"VeRi/image_train/0001_c012_00016460_0.jpg {KEYPOINTS} 7\n")
    with pytest.raises(UserError, match=r"view file .*kp/keypoint_test.txt is missing"):
        load_reid_dataset("veri", tmp_path, keypoint_dir=kp)
    (kp / "keypoint_test.txt").write_text(f"VeRi/image_test/0030_c008_00049745_0.jpg {KEYPOINTS} 3\n"
                                          f"VeRi/image_test/0030_c020_00049799_0.jpg {KEYPOINTS} 0\n")
    ds = load_reid_dataset("veri", tmp_path, keypoint_dir=kp)
    assert [it.viewid for it in ds.train + ds.query + ds.gallery] == [5, 7, 3, 0]
    (folder / "keypoint_train.txt").write_text("")
    with pytest.raises(UserError, match="found .*keypoint_train.txt but not .*keypoint_test.txt"):
        load_reid_dataset("veri", tmp_path)
    (folder / "keypoint_test.txt").write_text("VeRi/image_test/0030_c008_00049745_0.jpg front\n")
    with pytest.raises(UserError, match="keypoint_test.txt line 1 does not end in an integer view id"):
        load_reid_dataset("veri", tmp_path)
