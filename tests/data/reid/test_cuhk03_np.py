"""CUHK03-NP: detected and labeled sub-folders with Market-style names."""

import pytest

from humanssl.data.reid import load_reid_dataset
from humanssl.errors import UserError

from .helpers import touch


def cuhk_tree(root, subset, first_pid):
    p = first_pid
    touch(root / "cuhk03-np" / subset, f"bounding_box_train/{p:04d}_c1_1.png", f"bounding_box_train/{p:04d}_c2_6.png",
          f"bounding_box_train/{p + 2:04d}_c1_2.png", f"query/{p + 1:04d}_c1_1.png", f"query/{p + 1:04d}_c2_6.png",
          f"bounding_box_test/{p + 1:04d}_c1_2.png", f"bounding_box_test/{p + 1:04d}_c2_7.png",
          f"bounding_box_test/{p + 3:04d}_c2_9.png")


def test_subsets_are_separate_folders(tmp_path):
    cuhk_tree(tmp_path, "detected", 1)
    cuhk_tree(tmp_path, "labeled", 101)
    det = load_reid_dataset("cuhk03_np", tmp_path)
    lab = load_reid_dataset("cuhk03-np", tmp_path, subset="labeled")
    assert det.name == "CUHK03-NP (detected)" and det.pid2label == {1: 0, 3: 1}
    assert lab.pid2label == {101: 0, 103: 1}
    assert all("/labeled/" in it.path for it in lab.train + lab.query + lab.gallery)
    assert [(s.ids, s.images, s.cameras) for s in map(det.stats, ("train", "query", "gallery"))] == [
        (2, 3, 2), (1, 2, 2), (2, 3, 2)]
    assert sorted(it.camid for it in det.query) == [0, 1]


def test_missing_subset_and_unknown_subset(tmp_path):
    cuhk_tree(tmp_path, "detected", 1)
    with pytest.raises(UserError, match=r"CUHK03-NP \(labeled\): no dataset folder found.*cuhk03-np/labeled/"):
        load_reid_dataset("cuhk03_np", tmp_path, subset="labeled")
    with pytest.raises(UserError, match="subset='both'"):
        load_reid_dataset("cuhk03_np", tmp_path, subset="both")
