"""CUHK03-NP (Zhong et al., CVPR 2017 "new protocol" of CUHK03): 767 training ids, 700 test ids.

    cuhk03-np/detected/{bounding_box_train,query,bounding_box_test}/0001_c1_1.png
    cuhk03-np/labeled/...                                  (same, hand-drawn boxes)

Market-style names, two cameras per person; `subset` picks the detected (default, the
harder and more reported one) or the labeled boxes.
"""

from __future__ import annotations

from ...errors import UserError
from .base import ReidDataset, assemble
from .layout import find_dataset_dir, parse_split_folders

PATTERN = r"(-?\d+)_c(\d)"
EXAMPLE = "0001_c1_1.png"
FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
SUBSETS = ("detected", "labeled")


class CUHK03NP:
    title = "CUHK03-NP"

    def __init__(self, root, subset: str = "detected", relabel: str = "official", pid2label: dict | None = None):
        if subset not in SUBSETS:
            raise UserError(f"{self.title}: subset={subset!r} is not known; expected one of {', '.join(SUBSETS)}")
        self.root, self.subset, self.relabel, self.pid2label = root, subset, relabel, pid2label

    def load(self) -> ReidDataset:
        s = self.subset
        title = f"{self.title} ({s})"
        layout = f"<root>/cuhk03-np/{s}/{{bounding_box_train,query,bounding_box_test}}/{EXAMPLE}"
        candidates = [f"cuhk03-np/{s}", f"cuhk03np/{s}", f"CUHK03-NP/{s}", s, "."]
        folder = find_dataset_dir(title, self.root, candidates, list(FOLDERS.values()), layout)
        splits, where = parse_split_folders(title, folder, FOLDERS, PATTERN, EXAMPLE, drop_junk=True)
        return assemble(title, folder, **splits, relabel=self.relabel, pid2label=self.pid2label, where=where)
