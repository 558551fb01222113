"""DukeMTMC-reID (Ristani et al. 2016; Zheng et al. 2017): 702 training ids, 8 cameras.

    dukemtmcreid/DukeMTMC-reID/bounding_box_train/0005_c2_f0046985.jpg   pid 5, camera 2
    dukemtmcreid/DukeMTMC-reID/{query,bounding_box_test}/...

Duke has no junk images, and the official loader filters none. Its ids run up to 7140, so the
official set-order relabelling is not ascending here (see `base.official_label_order`).
"""

from __future__ import annotations

from .base import ReidDataset, assemble
from .layout import find_dataset_dir, parse_split_folders

PATTERN = r"(-?\d+)_c(\d)"
EXAMPLE = "0005_c2_f0046985.jpg"
FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


def load_duke_style(title: str, folder, relabel: str, pid2label: dict | None, viewid: int) -> ReidDataset:
    """Shared by DukeMTMC-reID and Occluded-Duke, which differ only in folder and view id."""
    splits, where = parse_split_folders(title, folder, FOLDERS, PATTERN, EXAMPLE, drop_junk=False, viewid=viewid)
    return assemble(title, folder, **splits, relabel=relabel, pid2label=pid2label, where=where)


class DukeMTMCreID:
    title = "DukeMTMC-reID"
    candidates = ["dukemtmcreid/DukeMTMC-reID", "dukemtmc-reid/DukeMTMC-reID", "DukeMTMC-reID", "."]
    layout = "<root>/dukemtmcreid/DukeMTMC-reID/{bounding_box_train,query,bounding_box_test}/0005_c2_f0046985.jpg"

    def __init__(self, root, relabel: str = "official", pid2label: dict | None = None):
        self.root, self.relabel, self.pid2label = root, relabel, pid2label

    def load(self) -> ReidDataset:
        folder = find_dataset_dir(self.title, self.root, self.candidates, list(FOLDERS.values()), self.layout)
        return load_duke_style(self.title, folder, self.relabel, self.pid2label, viewid=0)
