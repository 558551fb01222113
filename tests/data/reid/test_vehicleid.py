"""VehicleID: list files, the 13,164-vehicle check and the seeded gallery draws."""

from collections import Counter

import pytest

from humanssl.data.reid import ReidItem, load_reid_dataset, vehicleid_trials
from humanssl.errors import UserError
from tests.fixtures import needs_fixture

from .helpers import PARSING, parsing_fixture, rows

V = "VehicleID_V1.0"


def vehicle_tree(root, train, test, test_size):
    split = root / V / "train_test_split"
    split.mkdir(parents=True)
    (root / V / "image").mkdir()
    (split / "train_list.txt").write_text("".join(f"{name} {pid}\n" for name, pid in train))
    (split / f"test_list_{test_size}.txt").write_text("".join(f"{name} {pid}\n" for name, pid in test))


@needs_fixture(*PARSING)
def test_matches_official_parsing(tmp_path):
    entry = parsing_fixture()["VehicleID"]
    # The fixture's fake lists: 13,164 vehicles x 2 training images, 800 test vehicles x 3.
    train = [(f"{pid * 10 + k:08d}", pid) for pid in range(13164) for k in range(2)]
    test = [(f"{900000 + i * 10 + k:08d}", 50000 + i) for i in range(800) for k in range(3)]
    vehicle_tree(tmp_path, train, test, 800)
    ds = load_reid_dataset("VehicleID", tmp_path, test_size=800, seed=0, official_view_ids=True)
    assert (ds.num_train_pids, ds.num_train_cams, ds.num_train_views, len(ds.train)) == (
        entry["num_train_pids"], entry["num_train_cams"], entry["num_train_vids"], entry["train_len"])
    assert (len(ds.query), len(ds.gallery)) == (entry["query_len"], entry["gallery_len"])

    def first(items, n):
        return [rows([it], tmp_path)[0] for it in items[:n]]

    assert first(ds.train, 5) == entry["train_first5"]
    # The official draw after random.seed(0): our seed-0 draw 0 is the same.
    assert first(ds.query, 3) == entry["query_first3"]
    assert first(ds.gallery, 3) == entry["gallery_first3"]


def small_test_items():
    return [ReidItem(f"/v/{pid}_{k}.jpg", pid, 0, 0) for pid in (7, 3, 11, 5) for k in range(2 + pid % 3)]


def test_trials_are_deterministic_with_one_gallery_image_per_vehicle():
    items = small_test_items()
    trials = vehicleid_trials(items, num_trials=10, seed=3)
    assert trials == vehicleid_trials(items, num_trials=10, seed=3)
    assert trials != vehicleid_trials(items, num_trials=10, seed=4)
    assert len({tuple(it.path for it in g) for _, g in trials}) > 1  # draws differ between trials
    for query, gallery in trials:
        assert [it.pid for it in gallery] == [7, 3, 11, 5]  # one per vehicle, in list order
        assert {it.camid for it in gallery} == {1} and {it.camid for it in query} == {0}
        assert sorted(it.path for it in query + gallery) == sorted(it.path for it in items)
        assert Counter(it.pid for it in query) == {7: 2, 3: 1, 11: 3, 5: 3}
    assert vehicleid_trials(items, 3, seed=3) == trials[:3]  # draw k does not depend on how many


def test_dataset_trials_and_count_check(tmp_path):
    train = [(f"{pid:04d}{k}", pid) for pid in (30, 10, 20) for k in range(2)]
    test = [(f"9{i:03d}{k}", 100 + i) for i in range(4) for k in range(3)]
    vehicle_tree(tmp_path, train, test, 1600)
    with pytest.raises(UserError, match=r"train_list.txt lists 3 training vehicles, expected 13164"):
        load_reid_dataset("vehicleid", tmp_path, test_size=1600)
    ds = load_reid_dataset("vehicleid", tmp_path, test_size=1600, seed=5, check_counts=False)
    assert [it.pid for it in ds.train] == [0, 0, 1, 1, 2, 2]  # listed by ascending vehicle id
    assert ds.pid2label == {10: 0, 20: 1, 30: 2}
    assert {it.viewid for it in ds.train + ds.query} == {0}
    assert ds.trials(2)[0] == (ds.query, ds.gallery)
    assert len(ds.gallery) == 4 and len(ds.query) == 8
    with pytest.raises(UserError, match=r"missing .*test_list_800.txt; expected layout .*test_list_800"):
        load_reid_dataset("vehicleid", tmp_path, check_counts=False)


def test_bad_list_line(tmp_path):
    vehicle_tree(tmp_path, [("0001001", 1), ("0001002", 1)], [], 800)
    (tmp_path / V / "train_test_split/test_list_800.txt").write_text("x\n")
    with pytest.raises(UserError, match=r"test_list_800.txt line 1: 'x' is not 'image_name vehicle_id'"):
        load_reid_dataset("vehicleid", tmp_path, check_counts=False)
