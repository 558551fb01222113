"""Multi-label classification sets: PASCAL VOC, COCO 2014, a user CSV and the synthetic scenes.

Every sample is {"image", "labels" (float 0/1 per class), "difficult" (bool per class), "index"};
`build_multilabel` picks the source by name for configs and commands.
"""

from __future__ import annotations

from typing import Callable

from humanssl.data.multilabel.base import MultiLabelImages
from humanssl.data.multilabel.coco import COCOMultiLabel, read_coco_labels
from humanssl.data.multilabel.csv_list import CSVMultiLabel
from humanssl.data.multilabel.voc import VOC_CLASSES, VOCMultiLabel, read_voc_labels
from humanssl.data.synthetic_scenes import SCENE_CLASSES, SyntheticScenes, SyntheticScenesDataset
from humanssl.errors import UserError

SOURCES = ("voc2007", "voc2012", "coco2014", "csv", "synthetic")


def build_multilabel(source: str, root: str | None, split: str, transform: Callable | None = None, *,
                     seed: int = 0, num_images: int = 256, image_size: tuple[int, int] = (128, 128)):
    """`split`: VOC train/val/trainval/test, COCO train2014/val2014, synthetic train/test (disjoint
    scene indices), ignored for csv (`root` is then the CSV file)."""
    if source == "synthetic":
        if split not in ("train", "test"):
            raise UserError(f"synthetic multi-label split {split!r}: expected train or test")
        world = SyntheticScenes(seed=seed, image_size=tuple(image_size))
        first = 0 if split == "train" else 1 << 24  # far apart: test scenes never repeat train ones
        return SyntheticScenesDataset(world, num_images, transform, first_index=first)
    if source not in SOURCES:
        raise UserError(f"multi-label data source {source!r}: expected one of {', '.join(SOURCES)}")
    if root is None:
        raise UserError(f"multi-label data source {source} needs a root folder (or the CSV file for csv)")
    if source.startswith("voc"):
        return VOCMultiLabel(root, split, year=source[3:], transform=transform)
    if source == "coco2014":
        return COCOMultiLabel(root, split, transform=transform)
    return CSVMultiLabel(root, transform=transform)


__all__ = [
    "COCOMultiLabel", "CSVMultiLabel", "MultiLabelImages", "SCENE_CLASSES", "SOURCES", "SyntheticScenes",
    "SyntheticScenesDataset", "VOCMultiLabel", "VOC_CLASSES", "build_multilabel", "read_coco_labels",
    "read_voc_labels",
]
