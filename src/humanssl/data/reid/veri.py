"""VeRi-776 (Liu et al., ICME 2016): 576 training vehicles, 200 test vehicles, 20 cameras.

    VeRi/image_train/0001_c001_00016450_0.jpg   vehicle 1, camera 1
    VeRi/image_query/...   VeRi/image_test/...

View ids (0..7, the vehicle's orientation) come from two extra files, keypoint_train.txt and
keypoint_test.txt (one line per image: path, 40 keypoint coordinates, orientation last), which
CLIP-ReID ships under datasets/ and reads relative to the working directory. Here they are
looked for in `keypoint_dir` if given, else in the VeRi folder; without them every view is 0.
An image's view is looked up by file name, first in the train file, then in the test file. The
official loader silently drops images that have no entry; `missing_view` keeps that
("drop", default: the SIE view table has no row for them) or makes it an error ("error").
"""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from .base import ReidDataset, ReidItem, assemble
from .layout import find_dataset_dir, parse_split_folders, read_text_lines

PATTERN = r"(-?\d+)_c(\d+)"
EXAMPLE = "0001_c001_00016450_0.jpg"
FOLDERS = {"train": "image_train", "query": "image_query", "gallery": "image_test"}
VIEW_FILES = ("keypoint_train.txt", "keypoint_test.txt")
LAYOUT = "<root>/VeRi/{image_train,image_query,image_test}/0001_c001_00016450_0.jpg"


def read_view_file(title: str, path: Path) -> dict[str, int]:
    views = {}
    for number, line in read_text_lines(title, path):
        fields = line.split()
        try:
            views[Path(fields[0]).name] = int(fields[-1])
        except (ValueError, IndexError):
            raise UserError(
                f"{title}: {path} line {number} does not end in an integer view id; "
                "expected 'VeRi/image_train/<name>.jpg <keypoints ...> <view 0-7>'"
            ) from None
    return views


class VeRi776:
    title = "VeRi-776"
    candidates = ["VeRi", "veri", "VeRi-776", "."]

    def __init__(self, root, relabel: str = "official", pid2label: dict | None = None,
                 keypoint_dir=None, missing_view: str = "drop"):
        if missing_view not in ("drop", "error"):
            raise UserError(f"{self.title}: missing_view={missing_view!r} is not known; expected drop or error")
        self.root, self.relabel, self.pid2label = root, relabel, pid2label
        self.keypoint_dir, self.missing_view = keypoint_dir, missing_view

    def _view_maps(self, folder: Path) -> list[dict[str, int]] | None:
        if self.keypoint_dir is not None:
            where = Path(self.keypoint_dir).expanduser()
            for name in VIEW_FILES:
                if not (where / name).is_file():
                    raise UserError(
                        f"{self.title}: view file {where / name} is missing; expected {' and '.join(VIEW_FILES)} there"
                    )
        else:
            where = folder
            present = [name for name in VIEW_FILES if (where / name).is_file()]
            if not present:
                return None
            if len(present) == 1:
                missing = where / next(n for n in VIEW_FILES if n not in present)
                raise UserError(
                    f"{self.title}: found {where / present[0]} but not {missing}; expected both view files or neither"
                )
        return [read_view_file(self.title, where / name) for name in VIEW_FILES]

    def _attach_views(self, items: list[ReidItem], maps: list[dict[str, int]], dropped: list[str]) -> list[ReidItem]:
        out = []
        for it in items:
            name = Path(it.path).name
            view = next((m[name] for m in maps if name in m), None)
            if view is None:
                if self.missing_view == "error":
                    raise UserError(f"{self.title}: {it.path} has no entry in the view files {', '.join(VIEW_FILES)}")
                dropped.append(it.path)
                continue
            out.append(it._replace(viewid=view))
        return out

    def load(self) -> ReidDataset:
        folder = find_dataset_dir(self.title, self.root, self.candidates, list(FOLDERS.values()), LAYOUT)
        splits, where = parse_split_folders(self.title, folder, FOLDERS, PATTERN, EXAMPLE, drop_junk=True)
        maps = self._view_maps(folder)
        if maps is None:
            notes = [f"no view files ({', '.join(VIEW_FILES)}) in {folder}: every view id is 0"]
        else:
            dropped: list[str] = []
            splits = {split: self._attach_views(items, maps, dropped) for split, items in splits.items()}
            where_views = Path(self.keypoint_dir).expanduser() if self.keypoint_dir is not None else folder
            notes = [f"view ids from {where_views / VIEW_FILES[0]} and {VIEW_FILES[1]}"]
            notes += [f"{len(dropped)} images without a view annotation dropped"] if dropped else []
        return assemble(self.title, folder, **splits, relabel=self.relabel, pid2label=self.pid2label,
                        notes=notes, where=where)
