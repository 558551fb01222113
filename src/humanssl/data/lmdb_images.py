"""Unlabeled images stored in an LMDB, the form LUPerson is distributed in.

LUPerson's release (DengpanFu/LUPerson) is a folder such as ``lup/lmdb_300_30`` holding
``lmdb/`` (the database: keys are ASCII names like ``00_01_0002_00000017``, values the encoded
JPEG bytes) and ``keys.pkl`` (the key order: a pickled list of keys, or a dict whose ``keys`` entry
is that list). Accepted here as ``root``:
  * that folder (``lmdb/`` + ``keys.pkl`` or ``keys.txt``, one key per line);
  * the database folder itself (``data.mdb`` inside); its keys are then read once, in byte order.

``keys.pkl`` is read with an unpickler that only rebuilds lists, dicts, strings and numbers, so a
doctored file cannot run code. The ``lmdb`` package is optional (``pip install lmdb``).

A sample is ``{"image", "index", "failed_reads"}`` as in `humanssl.data.unlabeled`: a value that
does not decode is skipped for the next key, and reported, never fatal on its own.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
from pathlib import Path
from typing import Callable

from PIL import Image
from torch.utils.data import Dataset

from humanssl.data.unlabeled import MAX_WARNINGS, PathTable, UnreadableImageWarning
from humanssl.errors import UserError

DATA_FILE = "data.mdb"

# One read-only environment per database and process: py-lmdb refuses to open one twice in a
# process, and an environment must not cross a fork (each DataLoader worker opens its own).
_ENVS: dict[tuple[str, int], object] = {}


def import_lmdb():
    try:
        import lmdb
    except ImportError:
        raise UserError("reading LMDB image data (data.source=lmdb) needs the lmdb package: pip install lmdb") from None
    return lmdb


class _KeysOnly(pickle.Unpickler):
    """Lists, dicts, strings, bytes and numbers need no globals; anything else is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_keys_file(path: Path) -> list[str]:
    if path.suffix == ".txt":
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    try:
        with open(path, "rb") as f:
            data = _KeysOnly(f).load()
    except Exception as exc:  # noqa: BLE001 - every failure means "not a key list we can read"
        raise UserError(f"cannot read the key list {path}: {exc}; expected a pickled list of keys "
                        "(or a dict with a 'keys' list), or use keys.txt with one key per line") from None
    if isinstance(data, dict):
        data = data.get("keys")
    if not isinstance(data, (list, tuple)) or not all(isinstance(k, (str, bytes)) for k in data):
        raise UserError(f"{path} does not hold a list of keys (strings); expected LUPerson's keys.pkl")
    return [k.decode("ascii") if isinstance(k, bytes) else k for k in data]


def locate(root: Path) -> tuple[Path, Path | None]:
    """(database folder, key file or None) for a LUPerson folder or a bare database folder."""
    if not root.exists():
        raise UserError(f"LMDB data {root} does not exist; expected a folder holding lmdb/ and keys.pkl "
                        f"(LUPerson's layout) or an LMDB folder with {DATA_FILE}")
    if root.is_dir() and (root / DATA_FILE).is_file():
        return root, None
    if root.is_dir() and (root / "lmdb" / DATA_FILE).is_file():
        for name in ("keys.pkl", "keys.txt"):
            if (root / name).is_file():
                return root / "lmdb", root / name
        return root / "lmdb", None
    hint = ""
    if root.is_dir() and any(p.suffix.lower() in (".jpg", ".jpeg", ".png") for p in root.iterdir()):
        hint = " (it holds image files: use data.source=folder)"
    raise UserError(f"{root} is neither an LMDB folder (with {DATA_FILE}) nor a LUPerson folder with "
                    f"lmdb/{DATA_FILE} and keys.pkl{hint}")


class LMDBImageDataset(Dataset):
    def __init__(self, root: str | os.PathLike, transform: Callable | None = None):
        lmdb = import_lmdb()
        root = Path(root).expanduser()
        self.db_path, key_file = locate(root)
        if key_file is not None:
            keys = read_keys_file(key_file)
        else:
            with self._open(lmdb).begin() as txn:
                keys = [k.decode("utf-8", "surrogateescape") for k in txn.cursor().iternext(values=False)]
            _ENVS.pop((str(self.db_path), os.getpid())).close()  # workers open their own
        if not keys:
            raise UserError(f"LMDB data {root} holds no images")
        self.keys = PathTable(keys)  # shared by DataLoader workers instead of copied
        self.transform = transform
        self.source = f"LMDB {root}"
        self._warned: set[str] = set()

    def _open(self, lmdb):
        key = (str(self.db_path), os.getpid())
        if key not in _ENVS:
            for inherited in [k for k in _ENVS if k[0] == key[0]]:
                # the parent's handle, copied by fork: release it, or lmdb refuses to open the path
                _ENVS.pop(inherited).close()
            try:
                _ENVS[key] = lmdb.open(str(self.db_path), readonly=True, lock=False, readahead=False,
                                       meminit=False, max_readers=512)
            except lmdb.Error as exc:
                raise UserError(f"cannot open the LMDB {self.db_path}: {exc}") from None
        return _ENVS[key]

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict:
        n = len(self.keys)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        index %= n
        failed: list[str] = []
        env = self._open(import_lmdb())
        for offset in range(n):
            key = self.keys[(index + offset) % n]
            try:
                with env.begin(buffers=False) as txn:
                    value = txn.get(key.encode("utf-8", "surrogateescape"))
                if value is None:
                    raise KeyError("key not in the database")
                with Image.open(io.BytesIO(value)) as img:
                    img.load()
                    img = img.convert("RGB")
            except Exception as exc:  # noqa: BLE001 - PIL raises many types; all mean "unreadable"
                failed.append(key)
                self._warn(key, exc)
                continue
            image = self.transform(img) if self.transform is not None else img
            return {"image": image, "index": index, "failed_reads": failed}
        raise UserError(f"{self.source}: none of its {n} images could be decoded (e.g. key {failed[0]})")

    def _warn(self, key: str, exc: Exception) -> None:
        if key in self._warned or len(self._warned) > MAX_WARNINGS:
            return
        self._warned.add(key)
        message = (f"more than {MAX_WARNINGS} unreadable images in {self.source}; no further warnings"
                   if len(self._warned) > MAX_WARNINGS else
                   f"skipping unreadable image {key} in {self.source} ({type(exc).__name__}: {exc})")
        warnings.warn(message, UnreadableImageWarning, stacklevel=3)
