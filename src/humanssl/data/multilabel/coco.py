"""COCO 2014 image-level labels (80 classes) from `annotations/instances_<split>.json`.

The label of an image is the set of categories of its instance annotations (crowd ones
included); classes are ordered by category id. Images with no annotation stay in the set with
all-zero labels (about 1% of COCO), so the test set is the whole split.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from humanssl.data.multilabel.base import MultiLabelImages
from humanssl.errors import UserError


def read_coco_labels(ann_file: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """(file names, labels images x classes, class names) from an instances JSON."""
    try:
        with open(ann_file, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise UserError(f"cannot read COCO annotation file {ann_file} ({exc}); expected "
                        "annotations/instances_<split>.json") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"COCO annotation file {ann_file} is not valid JSON ({exc})") from exc
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise UserError(f"COCO annotation file {ann_file} has no {key!r} list; expected an instances JSON "
                            "with 'images', 'annotations' and 'categories' (captions/keypoints files will not do)")
    categories = sorted(data["categories"], key=lambda c: c["id"])
    column = {c["id"]: k for k, c in enumerate(categories)}
    row = {im["id"]: r for r, im in enumerate(data["images"])}
    labels = np.zeros((len(row), len(column)), dtype=np.float32)
    for ann in data["annotations"]:
        try:
            labels[row[ann["image_id"]], column[ann["category_id"]]] = 1.0
        except KeyError as exc:
            raise UserError(f"COCO annotation file {ann_file}: annotation {ann.get('id')} refers to unknown "
                            f"image or category {exc}; expected ids listed in 'images' and 'categories'") from exc
    return [im["file_name"] for im in data["images"]], labels, [c["name"] for c in categories]


class COCOMultiLabel(MultiLabelImages):
    def __init__(self, root: str | os.PathLike, split: str = "val2014", ann_file: str | os.PathLike | None = None,
                 transform: Callable | None = None):
        root = Path(root).expanduser()
        ann = Path(ann_file).expanduser() if ann_file is not None else root / "annotations" / f"instances_{split}.json"
        if not ann.is_file():
            raise UserError(f"COCO annotation file {ann} does not exist; expected <root>/annotations/"
                            f"instances_{split}.json (or pass ann_file)")
        names, labels, classes = read_coco_labels(ann)
        images = root / split
        if not images.is_dir():
            raise UserError(f"COCO image folder {images} does not exist; expected <root>/{split}/<file_name>")
        super().__init__([str(images / n) for n in names], labels, classes, None, transform,
                         source=f"COCO {ann}")
