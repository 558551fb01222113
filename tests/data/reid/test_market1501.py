"""Market-1501: folder layout, junk/distractor handling, cameras, relabelling, errors."""

from pathlib import Path

import pytest

from humanssl.data.reid import load_reid_dataset
from humanssl.data.synthetic import SyntheticPersons, write_market1501
from humanssl.errors import UserError
from tests.fixtures import needs_fixture

from .helpers import PARSING, parsing_fixture, rows, touch, tree_from_fixture

M = "Market-1501-v15.09.15"


@needs_fixture(*PARSING)
def test_matches_official_parsing(tmp_path):
    entry = parsing_fixture()["market1501"]
    tree_from_fixture(tmp_path, entry)
    # Junk (pid -1) the official loader drops, in every folder.
    touch(tmp_path, f"{M}/bounding_box_train/-1_c3s1_000100_01.jpg", f"{M}/bounding_box_test/-1_c2s1_000200_02.jpg")
    ds = load_reid_dataset("market1501", tmp_path)
    for split in ("train", "query", "gallery"):
        assert rows(getattr(ds, split), tmp_path) == entry[split], split
    assert (ds.num_train_pids, ds.num_train_cams, ds.num_train_views) == (
        entry["num_train_pids"], entry["num_train_cams"], entry["num_train_vids"])
    assert ds.pid2label == {2: 0, 1500: 1, 7: 2}  # set order, not ascending


def market_tree(root: Path) -> Path:
    folder = root / M
    touch(folder, "bounding_box_train/0002_c1s1_000451_03.jpg", "bounding_box_train/0002_c2s1_000301_01.jpg",
          "bounding_box_train/0007_c6s4_002452_02.jpg", "bounding_box_train/Thumbs.db",
          "query/0003_c3s1_000276_00.jpg", "query/0004_c1s1_000100_00.jpg",
          "bounding_box_test/0000_c1s1_000001_01.jpg", "bounding_box_test/0000_c4s1_000002_01.jpg",
          "bounding_box_test/-1_c1s1_000003_01.jpg", "bounding_box_test/0003_c1s1_000152_01.jpg",
          "bounding_box_test/0004_c5s1_000152_01.jpg")
    return folder


def test_counts_distractors_kept_junk_dropped(tmp_path):
    folder = market_tree(tmp_path)
    ds = load_reid_dataset("market", tmp_path / M)  # root may also be the dataset folder itself
    assert ds.root == str(folder)
    assert [(s.ids, s.images, s.cameras) for s in map(ds.stats, ("train", "query", "gallery"))] == [
        (2, 3, 3), (2, 2, 2), (3, 4, 3)]
    assert sorted({it.pid for it in ds.gallery}) == [0, 3, 4]  # distractors stay, junk gone
    assert sorted(it.camid for it in ds.train) == [0, 1, 5]  # c1..c6 -> 0..5
    assert all(Path(it.path).is_absolute() and it.viewid == 0 for it in ds.train + ds.query + ds.gallery)
    assert "train" in ds.summary() and str(folder) in ds.summary()


def test_sorted_relabel_option(tmp_path):
    market_tree(tmp_path)
    touch(tmp_path / M, "bounding_box_train/1500_c1s6_011446_05.jpg")
    assert load_reid_dataset("market1501", tmp_path).pid2label == {2: 0, 1500: 1, 7: 2}
    assert load_reid_dataset("market1501", tmp_path, relabel="sorted").pid2label == {2: 0, 7: 1, 1500: 2}


def test_loads_the_synthetic_writer_output(tmp_path):
    world = SyntheticPersons(seed=0, num_cameras=3, image_size=(32, 16))
    counts = write_market1501(tmp_path, world, num_train_ids=3, num_test_ids=3, images_per_camera=1,
                              cameras_per_identity=2, num_distractors=2, num_junk=2)
    ds = load_reid_dataset("market1501", tmp_path)
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (
        counts["train"], counts["query"], counts["gallery"] - counts["junk"])
    assert ds.num_train_pids == 3 and ds.pid2label == {1: 0, 2: 1, 3: 2}
    assert {it.pid for it in ds.query} == {4, 5, 6}
    assert {it.pid for it in ds.gallery} == {0, 4, 5, 6}
    assert max(it.camid for it in ds.train + ds.query + ds.gallery) <= 2


def test_missing_folder_is_named_with_the_layout(tmp_path):
    market_tree(tmp_path)
    for path in (tmp_path / M / "query").iterdir():
        path.unlink()
    (tmp_path / M / "query").rmdir()
    with pytest.raises(UserError, match=rf"missing {tmp_path / M / 'query'}; expected layout .*bounding_box_train"):
        load_reid_dataset("market1501", tmp_path)


def test_root_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_reid_dataset("market1501", tmp_path / "nope")
    (tmp_path / "other").mkdir()
    with pytest.raises(UserError, match="no dataset folder found"):
        load_reid_dataset("market1501", tmp_path)


def test_bad_names_and_empty_splits(tmp_path):
    folder = market_tree(tmp_path)
    touch(folder, "query/frame_12.jpg")
    with pytest.raises(UserError, match=r"cannot parse the file name .*frame_12.jpg; expected names like 0002_c1s1"):
        load_reid_dataset("market1501", tmp_path)
    (folder / "query/frame_12.jpg").unlink()
    touch(folder, "query/0005_c0s1_000001_00.jpg")
    with pytest.raises(UserError, match="camera 0 .* is not 1-based"):
        load_reid_dataset("market1501", tmp_path)
    for path in (folder / "query").iterdir():
        path.unlink()
    with pytest.raises(UserError, match=r"query folder .*query holds no images"):
        load_reid_dataset("market1501", tmp_path)
    touch(folder, "query/-1_c1s1_000001_00.jpg")  # only junk: the split ends up empty
    with pytest.raises(UserError, match="the query split is empty"):
        load_reid_dataset("market1501", tmp_path)
