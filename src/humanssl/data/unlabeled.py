"""Unlabeled image datasets for pretraining: every image in a folder tree, or a list file.

A sample is ``{"image": ..., "index": int, "failed_reads": [paths]}``. A file that cannot be
decoded never stops a multi-day run: it is skipped, the next index is served in its place
(deterministically, so every worker count and every resumed run sees the same images) and the
skipped path travels with the sample, so the trainer can count failures and abort through
``collate.ReadFailureMonitor`` once they stop being rare.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from humanssl.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# Past this many distinct unreadable files a dataset (per process) stops warning one by one;
# the failures are still reported in every sample's "failed_reads".
MAX_WARNINGS = 10


class UnreadableImageWarning(UserWarning):
    """An image file could not be decoded and was skipped (filterable on its own)."""


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _accepted() -> str:
    return ", ".join(IMAGE_EXTENSIONS) + " (any case)"


def load_rgb(path: str) -> Image.Image:
    """Decode fully now, so a truncated file fails here rather than later inside a transform."""
    with Image.open(path) as img:
        img.load()
        return img.convert("RGB")


class PathTable:
    """Read-only list of strings kept in two numpy arrays.

    A Python list of millions of str objects is copied into every DataLoader worker bit by bit,
    because reading an item touches its reference count; numpy buffers stay shared.
    """

    def __init__(self, paths: Iterable[str]):
        encoded = [p.encode("utf-8", "surrogateescape") for p in paths]
        lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
        self._offsets = np.concatenate(([0], np.cumsum(lengths)))
        self._buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        start, end = self._offsets[i], self._offsets[i + 1]
        return self._buffer[start:end].tobytes().decode("utf-8", "surrogateescape")

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class _UnlabeledImages(Dataset):
    """Reading, skipping and reporting; subclasses only decide which paths exist."""

    def __init__(self, paths: list[str], transform: Callable | None, source: str):
        self.paths = PathTable(paths)
        self.transform = transform
        self.source = source  # the folder or list file, for messages
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        n = len(self.paths)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        index %= n
        failed: list[str] = []
        for offset in range(n):
            path = self.paths[(index + offset) % n]
            try:
                img = load_rgb(path)
            except Exception as exc:  # PIL raises many types; any of them means "unreadable"
                failed.append(path)
                self._warn(path, exc)
                continue
            # The transform runs once, after a good read, so skipped files draw no random
            # numbers and the crops of later samples do not depend on which files failed.
            image = self.transform(img) if self.transform is not None else img
            return {"image": image, "index": index, "failed_reads": failed}
        raise UserError(
            f"{self.source}: none of its {n} images could be read "
            f"(e.g. {failed[0]}); expected decodable images ({_accepted()})"
        )

    def _warn(self, path: str, exc: Exception) -> None:
        if path in self._warned or len(self._warned) > MAX_WARNINGS:
            return
        self._warned.add(path)
        if len(self._warned) > MAX_WARNINGS:
            message = (
                f"more than {MAX_WARNINGS} unreadable images under {self.source}; "
                "no further warnings, they are still skipped and counted"
            )
        else:
            message = f"skipping unreadable image {path} ({type(exc).__name__}: {exc})"
        warnings.warn(message, UnreadableImageWarning, stacklevel=3)


def find_images(root: Path) -> list[str]:
    """Image files under ``root``, recursively, symlinks followed, hidden entries ignored.

    Hidden names are skipped because copies from macOS carry ``._name.jpg`` resource forks,
    which would otherwise show up as thousands of unreadable images. Paths are sorted as
    '/'-joined relative strings so the order is the same on every machine.
    """
    found: list[tuple[str, str]] = []
    seen_dirs: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen_dirs:  # a symlink loop or a second link to the same folder
            dirs[:] = []
            continue
        seen_dirs.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel_folder = os.path.relpath(folder, root)
        for name in files:
            if name.startswith(".") or not is_image_file(name):
                continue
            rel = name if rel_folder == "." else os.path.join(rel_folder, name)
            found.append((rel.replace(os.sep, "/"), os.path.join(folder, name)))
    found.sort()
    return [full for _, full in found]


class ImageFolderDataset(_UnlabeledImages):
    """Every image under ``root`` (any depth, class sub-folders or none), in sorted path order."""

    def __init__(self, root: str | os.PathLike, transform: Callable | None = None):
        root = Path(root).expanduser()
        if not root.exists():
            raise UserError(f"image folder {root} does not exist; expected a folder of images")
        if not root.is_dir():
            raise UserError(f"{root} is not a folder; expected a folder of images")
        paths = find_images(root)
        if not paths:
            raise UserError(
                f"image folder {root} holds no images; expected files ending in {_accepted()}, "
                "at any depth"
            )
        super().__init__(paths, transform, source=f"image folder {root}")
        self.root = root


def read_image_list(list_file: Path, root: Path) -> list[str]:
    """One path per line; blank lines and '#' comments skipped; relative paths join ``root``."""
    paths = []
    with open(list_file, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            # A listed non-image is almost always a wrong file (a CSV, a label list), so it is
            # reported by line instead of turning into millions of unreadable images.
            if not is_image_file(entry):
                raise UserError(
                    f"{list_file} line {number}: {entry!r} is not an image path; "
                    f"expected one path per line ending in {_accepted()}"
                )
            path = Path(entry).expanduser()
            paths.append(str(path if path.is_absolute() else root / path))
    return paths


class ImageListDataset(_UnlabeledImages):
    """The images named in a text file, in file order.

    Relative entries are resolved against ``root`` if given, else the list file's folder. Entries
    are not checked for existence up front (millions of stat calls on a network disk); a
    missing file is skipped and reported like a corrupt one.
    """

    def __init__(
        self,
        list_file: str | os.PathLike,
        root: str | os.PathLike | None = None,
        transform: Callable | None = None,
    ):
        list_file = Path(list_file).expanduser()
        if not list_file.is_file():
            raise UserError(
                f"image list {list_file} does not exist or is not a file; "
                "expected a text file with one image path per line"
            )
        base = Path(root).expanduser() if root is not None else list_file.parent
        if root is not None and not base.is_dir():
            raise UserError(f"image root {base} (for list {list_file}) is not a folder")
        paths = read_image_list(list_file, base)
        if not paths:
            raise UserError(
                f"image list {list_file} names no images; expected one path per line ending in "
                f"{_accepted()} (blank lines and '#' comments are skipped)"
            )
        super().__init__(paths, transform, source=f"image list {list_file}")
        self.list_file = list_file
        self.root = base
