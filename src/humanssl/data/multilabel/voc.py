"""PASCAL VOC 2007 / 2012 image-level labels from the standard VOCdevkit layout.

    <root>/ImageSets/Main/<class>_<split>.txt   one "<image id> <1|-1|0>" per line, 20 classes
    <root>/JPEGImages/<image id>.jpg
`root` is the year folder (VOCdevkit/VOC2007) or VOCdevkit itself with `year` given. In the
files 1 is a positive, -1 a negative and 0 "difficult": neither, excluded from that class's AP
(labels 0, difficult True here). Splits: train, val, trainval, test (2007 only).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from humanssl.data.multilabel.base import MultiLabelImages
from humanssl.errors import UserError

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)
VOC_SPLITS = ("train", "val", "trainval", "test")


def voc_year_folder(root: str | os.PathLike, year: str | int | None = None) -> Path:
    root = Path(root).expanduser()
    if year is not None and (root / f"VOC{year}").is_dir():
        root = root / f"VOC{year}"
    if not (root / "ImageSets" / "Main").is_dir():
        hint = f" (or a VOCdevkit folder holding VOC{year})" if year is not None else ""
        raise UserError(f"VOC folder {root} has no ImageSets/Main; expected a VOCdevkit year folder such as "
                        f"VOCdevkit/VOC2007{hint} with ImageSets/Main/<class>_<split>.txt and JPEGImages/")
    return root


def read_class_file(path: Path) -> dict[str, int]:
    """{image id: 1, -1 or 0} from one <class>_<split>.txt."""
    entries = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("1", "-1", "0"):
                raise UserError(f"{path} line {number}: {line.strip()!r}; expected '<image id> <1|-1|0>'")
            entries[parts[0]] = int(parts[1])
    return entries


def read_voc_labels(root: Path, split: str, classes=VOC_CLASSES) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Image ids (in the first class file's order), labels and difficult masks (ids x classes)."""
    if split not in VOC_SPLITS:
        raise UserError(f"VOC split {split!r}: expected one of {', '.join(VOC_SPLITS)}")
    main = root / "ImageSets" / "Main"
    files = [main / f"{c}_{split}.txt" for c in classes]
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise UserError(f"VOC class file {missing[0]} is missing ({len(missing)} of {len(files)} missing); "
                        f"expected ImageSets/Main/<class>_{split}.txt for each of the {len(classes)} classes")
    per_class = [read_class_file(p) for p in files]
    ids = list(per_class[0])
    if not ids:
        raise UserError(f"VOC class file {files[0]} lists no images; expected '<image id> <1|-1|0>' lines")
    values = np.zeros((len(ids), len(classes)), dtype=np.int8)
    for c, (path, entries) in enumerate(zip(files, per_class)):
        if entries.keys() != per_class[0].keys():
            odd = sorted(set(entries) ^ set(per_class[0]))[:3]
            raise UserError(f"VOC class file {path} lists other images than {files[0]} (e.g. {', '.join(odd)}); "
                            f"expected every class file of split {split} to label the same images")
        values[:, c] = [entries[i] for i in ids]
    return ids, (values == 1).astype(np.float32), values == 0


class VOCMultiLabel(MultiLabelImages):
    def __init__(self, root: str | os.PathLike, split: str = "trainval", year: str | int | None = None,
                 transform: Callable | None = None):
        folder = voc_year_folder(root, year)
        ids, labels, difficult = read_voc_labels(folder, split)
        images = folder / "JPEGImages"
        if not images.is_dir():
            raise UserError(f"VOC folder {folder} has no JPEGImages/; expected JPEGImages/<image id>.jpg")
        paths = [str(images / f"{i}.jpg") for i in ids]
        absent = [p for p in paths[:1] + paths[-1:] if not os.path.isfile(p)]  # two stats, not 10,000
        if absent:
            raise UserError(f"VOC image {absent[0]} (listed in ImageSets/Main/*_{split}.txt) does not exist; "
                            "expected JPEGImages/<image id>.jpg")
        super().__init__(paths, labels, VOC_CLASSES, difficult, transform, source=f"VOC {folder} {split}")
        self.ids = ids
