"""A user CSV: columns, splits, relative paths, errors."""

import pytest

from humanssl.data.reid import load_reid_dataset
from humanssl.errors import UserError

from .helpers import touch


def test_splits_paths_and_relabel(tmp_path):
    touch(tmp_path / "data", "imgs/a.jpg", "imgs/b.jpg", "imgs/c.jpg", "imgs/d.jpg")
    other = tmp_path / "elsewhere.png"
    other.touch()
    csv_path = tmp_path / "data" / "set.csv"
    csv_path.write_text(
        "path,pid,camid,split,viewid\n"
        "imgs/a.jpg,40,0,train,2\n"
        "imgs/b.jpg,12,1,Train,0\n"
        f"{other},40,3,train,1\n"
        "imgs/c.jpg,5,0,query,0\n"
        "imgs/d.jpg,5,1,gallery,0\n"
    )
    ds = load_reid_dataset("csv", csv_path)
    data = tmp_path / "data"
    assert [it.path for it in ds.train] == [str(data / "imgs/a.jpg"), str(data / "imgs/b.jpg"), str(other)]
    assert ds.pid2label == {40: 0, 12: 1}
    assert [tuple(it[1:]) for it in ds.train] == [(0, 0, 2), (1, 1, 0), (0, 3, 1)]
    assert [(it.pid, it.camid) for it in ds.query + ds.gallery] == [(5, 0), (5, 1)]


def test_without_split_column_everything_is_train(tmp_path):
    touch(tmp_path, "a.jpg", "b.jpg")
    # A byte-order mark and spaces after commas, as spreadsheets write them.
    (tmp_path / "s.csv").write_text("\ufeffpath, pid, camid\na.jpg,3,0\nb.jpg,4,1\n")
    ds = load_reid_dataset("csv", tmp_path / "s.csv")
    assert (len(ds.train), len(ds.query), len(ds.gallery), ds.num_train_cams) == (2, 0, 0, 2)


@pytest.mark.parametrize("text, message", [
    ("path,pid\na.jpg,1\n", "has no column camid"),
    ("path,pid,camid\n", "has a header but no rows"),
    ("path,pid,camid\na.jpg,one,0\n", r"line 2: pid 'one' is not an integer"),
    ("path,pid,camid\na.jpg,1,-1\n", "line 2: camid and viewid must be >= 0"),
    ("path,pid,camid,split\na.jpg,1,0,val\n", "line 2: split 'val' is not one of train, query, gallery"),
    ("path,pid,camid\nmissing.jpg,1,0\n", r"1 of 1 images listed in .* do not exist, e.g. .*missing.jpg"),
])
def test_errors(tmp_path, text, message):
    touch(tmp_path, "a.jpg")
    (tmp_path / "s.csv").write_text(text)
    with pytest.raises(UserError, match=message):
        load_reid_dataset("csv", tmp_path / "s.csv")


def test_missing_csv(tmp_path):
    with pytest.raises(UserError, match="is not a file; expected a CSV with header path,pid,camid"):
        load_reid_dataset("csv", tmp_path / "none.csv")
