"""Fake dataset trees with the real file names, for the loader tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from humanssl.data.reid import ReidItem
from tests.fixtures import conformance

PARSING = ("svll_reid", "dataset_parsing.json")


def parsing_fixture() -> dict:
    return json.loads(conformance(*PARSING).read_text())


def touch(root: Path, *rels: str) -> None:
    """Empty files: the loaders parse names and never open images."""
    for rel in rels:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def write_image(path: Path, value: int = 128, size=(4, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path)
    return path


def rows(items: list[ReidItem], root: Path) -> list[list]:
    """Items as the fixture stores them: sorted [path relative to root, pid, camid, viewid]."""
    return sorted([Path(it.path).relative_to(root).as_posix(), it.pid, it.camid, it.viewid] for it in items)


def tree_from_fixture(root: Path, entry: dict) -> None:
    touch(root, *(row[0] for split in ("train", "query", "gallery") for row in entry[split]))
