"""MSMT17 (Wei et al., CVPR 2018): 1,041 training ids, 3,060 test ids, 15 cameras.

Both releases hold list files of "relative/path pid" lines; only the image folders differ:

    V1:  MSMT17/{train,test}/0000/0000_000_01_0303morning_0015_0.jpg + list_{train,val,query,gallery}.txt
    V2:  MSMT17_V2/{mask_train_v2,mask_test_v2}/...  + the same four lists (faces blurred)

The ids in the lists are used as given (train and val ids already run 0..1040), and the camera
is the third '_' field of the name (01..15, made 0-based). Train and val are merged for
training, as the CLIP-ReID/SVLL-ReID loaders do (torchreid keeps val out unless `combineall`).
"""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from .base import ReidDataset, ReidItem, assemble
from .layout import existing_root, find_dataset_dir, path_under, read_text_lines

LISTS = {"train": "list_train.txt", "val": "list_val.txt", "query": "list_query.txt", "gallery": "list_gallery.txt"}
VERSIONS = {
    "v1": {
        "folders": ("train", "test"),
        "candidates": ["MSMT17", "MSMT17_V1", "msmt17/MSMT17_V1", "msmt17", "."],
        "layout": "<root>/MSMT17/{train,test}/0000/0000_000_01_0303morning_0015_0.jpg and "
        "<root>/MSMT17/list_{train,val,query,gallery}.txt",
    },
    "v2": {
        "folders": ("mask_train_v2", "mask_test_v2"),
        "candidates": ["MSMT17_V2", "msmt17/MSMT17_V2", "MSMT17", "msmt17", "."],
        "layout": "<root>/MSMT17_V2/{mask_train_v2,mask_test_v2}/0000/0000_000_01_0303morning_0015_0.jpg and "
        "<root>/MSMT17_V2/list_{train,val,query,gallery}.txt",
    },
}
LINE_EXAMPLE = "0000/0000_000_01_0303morning_0015_0.jpg 0"


def parse_list(title: str, list_path: Path, image_folder: Path) -> list[ReidItem]:
    items = []
    for number, line in read_text_lines(title, list_path):
        fields = line.split()
        where = f"{title}: {list_path} line {number}"
        if len(fields) != 2:
            raise UserError(f"{where}: {line!r} is not 'relative/path pid'; expected lines like {LINE_EXAMPLE!r}")
        rel, pid_text = fields
        name_fields = Path(rel).name.split("_")
        try:
            pid = int(pid_text)
            camera = int(name_fields[2])
        except (ValueError, IndexError):
            raise UserError(
                f"{where}: cannot read the id and camera of {line!r}; expected lines like {LINE_EXAMPLE!r}"
            ) from None
        if camera < 1:
            raise UserError(f"{where}: camera {camera} is not 1-based; expected lines like {LINE_EXAMPLE!r}")
        items.append(ReidItem(path_under(image_folder, rel), pid, camera - 1, 0))
    if not items:
        raise UserError(f"{title}: list file {list_path} holds no entries; expected lines like {LINE_EXAMPLE!r}")
    return items


class MSMT17:
    title = "MSMT17"

    def __init__(
        self, root, version: str = "auto", relabel: str = "official", pid2label: dict | None = None,
        merge_val: bool = True,
    ):
        if version not in ("auto", *VERSIONS):
            raise UserError(f"{self.title}: version={version!r} is not known; expected auto, v1 or v2")
        self.root, self.version, self.relabel, self.pid2label = root, version, relabel, pid2label
        self.merge_val = merge_val

    def _version(self) -> str:
        """The release asked for; with "auto", V1 where its image folders are found, else V2."""
        if self.version != "auto":
            return self.version
        root = existing_root(self.title, self.root)

        def present(v: str) -> bool:
            spec = VERSIONS[v]
            return any((root / rel / spec["folders"][0]).is_dir() for rel in spec["candidates"])

        return "v2" if present("v2") and not present("v1") else "v1"

    def load(self) -> ReidDataset:
        version = self._version()
        title, spec = f"{self.title} ({version.upper()})", VERSIONS[version]
        parts = [*spec["folders"], *LISTS.values()]
        folder = find_dataset_dir(title, self.root, spec["candidates"], parts, spec["layout"])
        train_dir, test_dir = (folder / f for f in spec["folders"])
        train = parse_list(title, folder / LISTS["train"], train_dir)
        if self.merge_val:
            train += parse_list(title, folder / LISTS["val"], train_dir)
        query = parse_list(title, folder / LISTS["query"], test_dir)
        gallery = parse_list(title, folder / LISTS["gallery"], test_dir)
        where = {s: str(folder / LISTS[s]) for s in ("train", "query", "gallery")}
        return assemble(title, folder, train, query, gallery, relabel=self.relabel, pid2label=self.pid2label,
                        where=where)
