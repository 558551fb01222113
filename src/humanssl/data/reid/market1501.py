"""Market-1501 (Zheng et al., ICCV 2015): 751 training ids, 750 test ids, 6 cameras.

    Market-1501-v15.09.15/bounding_box_train/0002_c1s1_000451_03.jpg   pid 2, camera 1
    Market-1501-v15.09.15/query/...   Market-1501-v15.09.15/bounding_box_test/...

pid -1 marks junk detections and is dropped from every split; pid 0 marks distractors and
stays in the gallery (the standard protocol). Cameras are 1-based in names, 0-based here.
"""

from __future__ import annotations

from .base import ReidDataset, assemble
from .layout import find_dataset_dir, parse_split_folders

PATTERN = r"(-?\d+)_c(\d)"
EXAMPLE = "0002_c1s1_000451_03.jpg"
FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
LAYOUT = "<root>/Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}/0002_c1s1_000451_03.jpg"


class Market1501:
    title = "Market-1501"
    candidates = ["Market-1501-v15.09.15", "market1501/Market-1501-v15.09.15", "market1501", "Market-1501", "."]

    def __init__(self, root, relabel: str = "official", pid2label: dict | None = None):
        self.root, self.relabel, self.pid2label = root, relabel, pid2label

    def load(self) -> ReidDataset:
        folder = find_dataset_dir(self.title, self.root, self.candidates, list(FOLDERS.values()), LAYOUT)
        splits, where = parse_split_folders(self.title, folder, FOLDERS, PATTERN, EXAMPLE, drop_junk=True)
        return assemble(self.title, folder, **splits, relabel=self.relabel, pid2label=self.pid2label, where=where)
