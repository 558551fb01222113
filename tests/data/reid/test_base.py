"""The relabelling order, the dataset counts and the summary table."""

import pytest

from humanssl.data.reid import ReidItem, make_pid2label, official_label_order
from humanssl.data.reid.base import assemble
from humanssl.errors import UserError


def test_official_order_is_cpython_set_order():
    # Small ids land in their own hash slots (ascending); 2049 collides with 1 in an 8-slot
    # table and takes the next slot, 4096 and 7140 wrap around: labels follow the slots.
    assert official_label_order([1, 1, 5, 2049, 4096, 7140]) == [4096, 1, 2049, 7140, 5]
    assert official_label_order([2, 7, 1500]) == [2, 1500, 7]
    assert official_label_order(list(range(751))) == list(range(751))  # real Market: ascending


def test_sorted_relabel_and_unknown_order():
    assert make_pid2label([7140, 1, 5, 1], "sorted") == {1: 0, 5: 1, 7140: 2}
    with pytest.raises(UserError, match="relabel='random'"):
        make_pid2label([1], "random")


def items(*spec):
    return [ReidItem(f"/x/{i}.jpg", pid, cam, view) for i, (pid, cam, view) in enumerate(spec)]


def test_assemble_relabels_train_only_and_counts():
    train = items((7, 0, 0), (2, 1, 0), (7, 3, 1), (1500, 0, 0))
    query = items((3, 0, 0))
    gallery = items((3, 1, 0), (0, 2, 0), (9, 2, 0))
    ds = assemble("toy", "/x", train, query, gallery)
    assert ds.pid2label == {2: 0, 1500: 1, 7: 2}
    assert [it.pid for it in ds.train] == [2, 0, 2, 1]
    assert [it.pid for it in ds.gallery] == [3, 0, 9]  # test ids untouched
    assert (ds.num_train_pids, ds.num_train_imgs, ds.num_train_cams, ds.num_train_views) == (3, 4, 3, 2)
    g = ds.stats("gallery")
    assert (g.ids, g.images, g.cameras, g.views) == (3, 3, 2, 1)
    assert ds.label2pid == {0: 2, 1: 1500, 2: 7}
    table = ds.summary().splitlines()
    assert table[0] == "toy (/x)"
    cells = [[c.strip() for c in line.split("|")] for line in table[4:7]]
    assert cells == [["train", "3", "4", "3", "2"], ["query", "1", "1", "1", "1"], ["gallery", "3", "3", "2", "1"]]


def test_given_pid2label_is_used_and_checked():
    train = items((7, 0, 0), (2, 1, 0))
    ds = assemble("toy", "/x", train, items((1, 0, 0)), items((1, 1, 0)), pid2label={"7": "0", "2": "1"})
    assert [it.pid for it in ds.train] == [0, 1]
    with pytest.raises(UserError, match=r"no label for training ids \[2\]"):
        assemble("toy", "/x", train, items((1, 0, 0)), items((1, 1, 0)), pid2label={7: 0})
    with pytest.raises(UserError, match="not 0..1"):
        assemble("toy", "/x", train, items((1, 0, 0)), items((1, 1, 0)), pid2label={7: 0, 2: 5})


def test_empty_required_split_names_its_source():
    with pytest.raises(UserError, match=r"toy: the query split is empty \(from /data/q\)"):
        assemble("toy", "/x", items((1, 0, 0)), [], items((1, 1, 0)), where={"query": "/data/q"})
