"""DukeMTMC-reID and Occluded-Duke against the official parsing, and their view ids."""

import pytest

from humanssl.data.reid import load_reid_dataset
from humanssl.errors import UserError
from tests.fixtures import needs_fixture

from .helpers import PARSING, parsing_fixture, rows, touch, tree_from_fixture


@needs_fixture(*PARSING)
@pytest.mark.parametrize("name", ["dukemtmc", "occ_duke"])
def test_matches_official_parsing(tmp_path, name):
    entry = parsing_fixture()[name]
    tree_from_fixture(tmp_path, entry)
    options = {"official_view_ids": True} if name == "occ_duke" else {}
    ds = load_reid_dataset(name, tmp_path, **options)
    for split in ("train", "query", "gallery"):
        assert rows(getattr(ds, split), tmp_path) == entry[split], split
    assert (ds.num_train_pids, ds.num_train_cams, ds.num_train_views) == (
        entry["num_train_pids"], entry["num_train_cams"], entry["num_train_vids"])
    # Ids up to 7140 overflow the 8-slot set table: the official labels are not ascending.
    assert ds.pid2label == {4096: 0, 1: 1, 2049: 2, 7140: 3, 5: 4}


def duke_tree(root, sub):
    touch(root / "dukemtmcreid" / sub,
          "bounding_box_train/0001_c2_f0046182.jpg", "bounding_box_train/0005_c8_f0046985.jpg",
          "query/0009_c6_f0100100.jpg",
          "bounding_box_test/0009_c1_f0002000.jpg", "bounding_box_test/0011_c4_f0003000.jpg")


def test_occluded_duke_views_default_to_zero_and_folders_are_distinct(tmp_path):
    duke_tree(tmp_path, "Occluded_Duke")
    ds = load_reid_dataset("occluded-duke", tmp_path)
    assert {it.viewid for it in ds.train + ds.query + ds.gallery} == {0}
    assert sorted(it.camid for it in ds.train) == [1, 7]
    with pytest.raises(UserError, match="DukeMTMC-reID: no dataset folder found"):
        load_reid_dataset("dukemtmc", tmp_path)  # the Occluded-Duke folder is not Duke


def test_duke_sorted_relabel_and_root_at_dataset_folder(tmp_path):
    duke_tree(tmp_path, "DukeMTMC-reID")
    ds = load_reid_dataset("duke", tmp_path / "dukemtmcreid", relabel="sorted")
    assert ds.pid2label == {1: 0, 5: 1}
    assert (ds.stats("gallery").ids, ds.stats("gallery").cameras) == (2, 2)
