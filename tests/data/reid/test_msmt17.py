"""MSMT17 V1 and V2: list files, train+val merge, camera field, layout errors."""

import pytest

from humanssl.data.reid import load_reid_dataset
from humanssl.errors import UserError
from tests.fixtures import needs_fixture

from .helpers import PARSING, parsing_fixture, rows

LISTS = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")


def write_lists(folder, train, val, query, gallery):
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in zip(LISTS, (train, val, query, gallery)):
        (folder / name).write_text("".join(f"{rel} {pid}\n" for rel, pid in lines))


def list_lines(entry_rows, prefix):
    return [(row[0].removeprefix(prefix), row[1]) for row in entry_rows]


@needs_fixture(*PARSING)
def test_v1_matches_official_parsing(tmp_path):
    entry = parsing_fixture()["msmt17"]
    folder = tmp_path / "MSMT17"
    train = list_lines(entry["train"], "MSMT17/train/")
    val = [line for line in train if line[1] == 2]  # val images of train ids, merged back in
    write_lists(folder, [line for line in train if line[1] != 2], val,
                list_lines(entry["query"], "MSMT17/test/"), list_lines(entry["gallery"], "MSMT17/test/"))
    (folder / "train").mkdir()
    (folder / "test").mkdir()
    ds = load_reid_dataset("msmt17", tmp_path)
    assert ds.name == "MSMT17 (V1)"
    for split in ("train", "query", "gallery"):
        assert rows(getattr(ds, split), tmp_path) == entry[split], split
    assert (ds.num_train_pids, ds.num_train_cams) == (entry["num_train_pids"], entry["num_train_cams"])
    assert ds.pid2label == {0: 0, 1: 1, 2: 2}  # ids used as given


def v2_tree(root):
    folder = root / "MSMT17_V2"
    write_lists(folder, [("0000/0000_000_01_0303morning_0015_0.jpg", 0), ("0001/0001_000_15_0303noon_0011_0.jpg", 1)],
                [("0001/0001_001_03_0303noon_0012_0.jpg", 1)],
                [("0000/0000_000_02_0113morning_0003_0.jpg", 0)],
                [("0000/0000_001_07_0113morning_0004_2.jpg", 0), ("0003/0003_003_14_0113noon_0171_0.jpg", 3)])
    (folder / "mask_train_v2").mkdir()
    (folder / "mask_test_v2").mkdir()
    return folder


def test_v2_layout_and_val_merge_switch(tmp_path):
    folder = v2_tree(tmp_path)
    ds = load_reid_dataset("msmt17", tmp_path)
    assert ds.name == "MSMT17 (V2)" and ds.root == str(folder)
    assert [it.path for it in ds.train][0] == str(folder / "mask_train_v2/0000/0000_000_01_0303morning_0015_0.jpg")
    assert sorted(it.camid for it in ds.train) == [0, 2, 14]
    assert [it.path.startswith(str(folder / "mask_test_v2")) for it in ds.gallery] == [True, True]
    assert len(load_reid_dataset("msmt17", tmp_path, merge_val=False).train) == 2
    expected = r"MSMT17 \(V1\): no dataset folder found .*expected layout <root>/MSMT17/\{train,test\}"
    with pytest.raises(UserError, match=expected):
        load_reid_dataset("msmt17", tmp_path, version="v1")


def test_missing_list_file_and_bad_lines(tmp_path):
    folder = v2_tree(tmp_path)
    (folder / "list_val.txt").unlink()
    with pytest.raises(UserError, match=rf"missing {folder / 'list_val.txt'}; expected layout <root>/MSMT17_V2"):
        load_reid_dataset("msmt17", tmp_path)
    (folder / "list_val.txt").write_text("0001/0001_001_03_0303noon_0012_0.jpg\n")
    with pytest.raises(UserError, match=r"list_val.txt line 1: .* is not 'relative/path pid'"):
        load_reid_dataset("msmt17", tmp_path)
    (folder / "list_val.txt").write_text("\n0001/0001.jpg 1\n")
    with pytest.raises(UserError, match="list_val.txt line 2: cannot read the id and camera"):
        load_reid_dataset("msmt17", tmp_path)
    (folder / "list_val.txt").write_text("\n")
    with pytest.raises(UserError, match="list_val.txt holds no entries"):
        load_reid_dataset("msmt17", tmp_path)
    with pytest.raises(UserError, match="version='v3'"):
        load_reid_dataset("msmt17", tmp_path, version="v3")
