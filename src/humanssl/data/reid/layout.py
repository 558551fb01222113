"""Finding a dataset's folder under the user's root and turning file names into items.

A user may point `root` at the folder that holds the dataset (what the official code calls
DATASETS.ROOT_DIR), at the dataset's own folder, or at one of the other usual nestings; each
loader lists those candidates and the parts the real layout has.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

from ...errors import UserError
from ..unlabeled import is_image_file
from .base import ReidItem


def existing_root(name: str, root) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise UserError(f"{name}: dataset root {root} does not exist; expected the folder that holds the dataset")
    if not root.is_dir():
        raise UserError(f"{name}: dataset root {root} is not a folder; expected the folder that holds the dataset")
    return root


def find_dataset_dir(name: str, root, candidates: list[str], parts: list[str], layout: str) -> Path:
    """The first candidate (relative to root; "." is root itself) that has every one of `parts`.

    When none has them all, the message names what is missing in the candidate that came
    closest, and the layout that was expected.
    """
    root = existing_root(name, root)
    best: tuple[int, Path] | None = None
    for rel in candidates:
        folder = root / rel
        if not folder.is_dir():
            continue
        found = sum((folder / part).exists() for part in parts)
        if found == len(parts):
            return folder
        if best is None or found > best[0]:
            best = (found, folder)
    if best is None or best[0] == 0:
        looked = ", ".join(str(root / c) for c in candidates)
        raise UserError(f"{name}: no dataset folder found (looked in {looked}); expected layout {layout}")
    missing = [str(best[1] / part) for part in parts if not (best[1] / part).exists()]
    raise UserError(f"{name}: missing {', '.join(missing)}; expected layout {layout}")


def list_images(name: str, folder: Path, split: str) -> list[Path]:
    """Image files directly in `folder`, in sorted name order (the same on every machine)."""
    if not folder.is_dir():
        raise UserError(f"{name}: {split} folder {folder} is missing")
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and is_image_file(p.name))
    if not files:
        raise UserError(f"{name}: {split} folder {folder} holds no images; expected the dataset's image files")
    return files


def name_parser(name: str, pattern: str, example: str) -> Callable[[Path], tuple[int, int]]:
    """(pid, camera number as written) from the start of a file name, e.g. 0002_c1s1_... -> (2, 1)."""
    regex = re.compile(pattern)

    def parse(path: Path) -> tuple[int, int]:
        match = regex.match(path.name)
        if match is None:
            raise UserError(f"{name}: cannot parse the file name {path}; expected names like {example}")
        return int(match.group(1)), int(match.group(2))

    return parse


def parse_folder(
    name: str,
    folder: Path,
    split: str,
    parse: Callable[[Path], tuple[int, int]],
    example: str,
    drop_junk: bool,
    viewid: int = 0,
) -> list[ReidItem]:
    """Items of one Market-style folder: pid and 1-based camera from the name, camera made 0-based.

    Junk images (pid -1, Market's bad detections) are dropped where the official loader drops
    them; distractors (pid 0) are kept.
    """
    items = []
    for path in list_images(name, folder, split):
        pid, camera = parse(path)
        if drop_junk and pid == -1:
            continue
        if camera < 1:
            raise UserError(f"{name}: camera {camera} in {path} is not 1-based; expected names like {example}")
        items.append(ReidItem(str(path), pid, camera - 1, viewid))
    return items


def read_text_lines(name: str, path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of a list file with their 1-based numbers."""
    if not path.is_file():
        raise UserError(f"{name}: list file {path} is missing")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{name}: cannot read list file {path} ({exc}); expected a UTF-8 text file") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def path_under(folder: Path, rel: str) -> str:
    return os.path.join(str(folder), rel)


def parse_split_folders(
    name: str, folder: Path, folders: dict[str, str], pattern: str, example: str, drop_junk: bool, viewid: int = 0,
) -> tuple[dict[str, list[ReidItem]], dict[str, str]]:
    """The three Market-style folders of one dataset: the items of each split, and for each
    split the folder it came from (for messages)."""
    parse = name_parser(name, pattern, example)
    splits = {
        split: parse_folder(name, folder / sub, split, parse, example, drop_junk=drop_junk, viewid=viewid)
        for split, sub in folders.items()
    }
    return splits, {split: str(folder / sub) for split, sub in folders.items()}
