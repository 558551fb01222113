"""The one labelled-image dataset every multi-label source becomes: paths plus a label matrix.

A sample is {"image", "labels" (float 0/1 per class), "difficult" (bool per class), "index"}.
"difficult" marks VOC's 0 entries: the class is neither a positive nor a negative for that image,
and `eval.multilabel` leaves the pair out of the class's AP, as the VOC protocol does.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from humanssl.data.unlabeled import PathTable, load_rgb
from humanssl.errors import UserError


class MultiLabelImages(Dataset):
    def __init__(self, paths: Sequence[str], labels: np.ndarray, classes: Sequence[str],
                 difficult: np.ndarray | None = None, transform: Callable | None = None, source: str = ""):
        labels = np.asarray(labels, dtype=np.float32)
        if labels.shape != (len(paths), len(classes)):
            raise UserError(f"{source}: labels of shape {labels.shape}, expected (images, classes) = "
                            f"({len(paths)}, {len(classes)})")
        if not len(paths):
            raise UserError(f"{source}: no images; expected at least one labelled image")
        self.difficult = (np.zeros(labels.shape, dtype=bool) if difficult is None
                          else np.asarray(difficult, dtype=bool))
        if not (labels[~self.difficult] > 0).any():
            raise UserError(f"{source}: none of its {len(paths)} images has a positive label; expected "
                            "images labelled with at least one class")
        self.paths = PathTable(paths)
        self.labels, self.classes = labels, list(classes)
        self.transform, self.source = transform, source

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        try:
            img = load_rgb(path)
        except Exception as exc:  # a labelled test set must not silently lose images
            raise UserError(f"{self.source}: cannot read image {path} ({type(exc).__name__}: {exc}); "
                            "expected a decodable image file") from exc
        image = self.transform(img) if self.transform is not None else img
        return {"image": image, "labels": torch.from_numpy(self.labels[index].copy()),
                "difficult": torch.from_numpy(self.difficult[index].copy()), "index": index}
