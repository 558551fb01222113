import json

import numpy as np
import pytest
from PIL import Image

from humanssl.data.multilabel import (
    VOC_CLASSES, COCOMultiLabel, CSVMultiLabel, VOCMultiLabel, build_multilabel,
)
from humanssl.errors import UserError

IDS = ["000005", "000007", "000009"]


def make_voc(root, split="trainval", skip=None):
    year = root / "VOCdevkit" / "VOC2007"
    (year / "ImageSets" / "Main").mkdir(parents=True)
    (year / "JPEGImages").mkdir()
    for i in IDS:
        Image.new("RGB", (8, 6), (1, 2, 3)).save(year / "JPEGImages" / f"{i}.jpg")
    for c, name in enumerate(VOC_CLASSES):
        if name == skip:
            continue
        # image k is positive for class k, image 2 "difficult" for class 1, else negative
        rows = []
        for k, i in enumerate(IDS):
            value = 1 if c == k else (0 if (k == 2 and c == 1) else -1)
            rows.append(f"{i} {value:>2}")
        (year / "ImageSets" / "Main" / f"{name}_{split}.txt").write_text("\n".join(rows) + "\n")
    return year


def test_voc_labels_and_difficult(tmp_path):
    make_voc(tmp_path)
    ds = VOCMultiLabel(tmp_path / "VOCdevkit", "trainval", year=2007)
    assert len(ds) == 3 and ds.classes == list(VOC_CLASSES) and ds.ids == IDS
    assert np.array_equal(np.argwhere(ds.labels), [[0, 0], [1, 1], [2, 2]])
    assert np.argwhere(ds.difficult).tolist() == [[2, 1]]
    s = ds[1]
    assert s["labels"][1] == 1 and s["labels"].sum() == 1 and s["image"].size == (8, 6)
    assert s["difficult"].sum() == 0 and ds[2]["difficult"][1]


def test_voc_missing_class_file_is_named(tmp_path):
    make_voc(tmp_path, skip="dog")
    with pytest.raises(UserError, match=r"dog_trainval\.txt"):
        VOCMultiLabel(tmp_path / "VOCdevkit" / "VOC2007", "trainval")
    with pytest.raises(UserError, match="ImageSets/Main"):
        VOCMultiLabel(tmp_path, "trainval")
    with pytest.raises(UserError, match="split"):
        VOCMultiLabel(tmp_path / "VOCdevkit" / "VOC2007", "testing")


def test_voc_class_files_must_agree(tmp_path):
    year = make_voc(tmp_path)
    (year / "ImageSets" / "Main" / "cat_trainval.txt").write_text("000005 1\n")
    with pytest.raises(UserError, match=r"cat_trainval\.txt"):
        VOCMultiLabel(year, "trainval")


def write_coco(root, data):
    (root / "annotations").mkdir(parents=True)
    (root / "val2014").mkdir()
    path = root / "annotations" / "instances_val2014.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_labels(tmp_path):
    data = {
        "images": [{"id": 10, "file_name": "a.jpg"}, {"id": 11, "file_name": "b.jpg"}, {"id": 12, "file_name": "c.jpg"}],
        "categories": [{"id": 3, "name": "car"}, {"id": 1, "name": "person"}, {"id": 2, "name": "bicycle"}],
        "annotations": [{"id": 1, "image_id": 10, "category_id": 3}, {"id": 2, "image_id": 10, "category_id": 3},
                        {"id": 3, "image_id": 11, "category_id": 1}, {"id": 4, "image_id": 11, "category_id": 2}],
    }
    write_coco(tmp_path, data)
    ds = COCOMultiLabel(tmp_path, "val2014")
    assert ds.classes == ["person", "bicycle", "car"]  # by category id
    assert ds.labels.tolist() == [[0, 0, 1], [1, 1, 0], [0, 0, 0]]  # c.jpg: no annotation, kept
    assert ds.paths[1].endswith("val2014/b.jpg")


def test_coco_json_without_annotations_is_named(tmp_path):
    path = write_coco(tmp_path, {"images": [{"id": 1, "file_name": "a.jpg"}], "categories": []})
    with pytest.raises(UserError, match=r"instances_val2014\.json.*'annotations'"):
        COCOMultiLabel(tmp_path, "val2014")
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}],
                                "categories": [{"id": 1, "name": "x"}], "annotations": []}))
    with pytest.raises(UserError, match="positive label"):  # images, but none labelled
        COCOMultiLabel(tmp_path, "val2014")
    with pytest.raises(UserError, match=r"instances_train2014\.json"):
        COCOMultiLabel(tmp_path, "train2014")


def test_csv_labels_and_rows_without_labels(tmp_path):
    good = tmp_path / "labels.csv"
    good.write_text("path,labels\nimg/1.jpg,dog cat\nimg/2.jpg,cat\n")
    ds = CSVMultiLabel(good)
    assert ds.classes == ["cat", "dog"] and ds.labels.tolist() == [[1, 1], [1, 0]]
    assert ds.paths[0] == str(tmp_path / "img" / "1.jpg")
    bad = tmp_path / "bad.csv"
    bad.write_text("img/1.jpg,dog\nimg/2.jpg,\n")
    with pytest.raises(UserError, match=r"bad\.csv line 2.*no labels"):
        CSVMultiLabel(bad)


def test_unreadable_image_is_named(tmp_path):
    year = make_voc(tmp_path)
    (year / "JPEGImages" / "000007.jpg").write_bytes(b"not a jpeg")
    ds = VOCMultiLabel(year, "trainval")
    with pytest.raises(UserError, match="000007.jpg"):
        ds[1]


def test_build_synthetic_splits_are_disjoint():
    train = build_multilabel("synthetic", None, "train", num_images=4, image_size=(32, 32))
    test = build_multilabel("synthetic", None, "test", num_images=4, image_size=(32, 32))
    assert train.first_index != test.first_index
    assert not np.array_equal(np.asarray(train[0]["image"]), np.asarray(test[0]["image"]))
    with pytest.raises(UserError, match="source"):
        build_multilabel("imagenet", "/x", "train")
