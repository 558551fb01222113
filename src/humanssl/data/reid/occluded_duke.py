"""Occluded-Duke (Miao et al., ICCV 2019): DukeMTMC-reID re-split so that queries are occluded.

    dukemtmcreid/Occluded_Duke/{bounding_box_train,query,bounding_box_test}/0005_c2_f0046985.jpg

Names and parsing as DukeMTMC-reID. The official loader gives every image view id 1 (a constant
with no meaning); we give 0 like every other dataset without views, and `official_view_ids=True`
restores the 1 for parity with official code that reads it.
"""

from __future__ import annotations

from .base import ReidDataset
from .dukemtmc import FOLDERS, load_duke_style
from .layout import find_dataset_dir


class OccludedDuke:
    title = "Occluded-Duke"
    candidates = ["dukemtmcreid/Occluded_Duke", "Occluded_Duke", "."]
    layout = "<root>/dukemtmcreid/Occluded_Duke/{bounding_box_train,query,bounding_box_test}/0005_c2_f0046985.jpg"

    def __init__(self, root, relabel: str = "official", pid2label: dict | None = None, official_view_ids: bool = False):
        self.root, self.relabel, self.pid2label = root, relabel, pid2label
        self.viewid = 1 if official_view_ids else 0

    def load(self) -> ReidDataset:
        folder = find_dataset_dir(self.title, self.root, self.candidates, list(FOLDERS.values()), self.layout)
        return load_duke_style(self.title, folder, self.relabel, self.pid2label, viewid=self.viewid)
