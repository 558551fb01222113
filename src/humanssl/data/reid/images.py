"""A torch Dataset over re-id items: decoded image plus its labels."""

from __future__ import annotations

from typing import Callable, Sequence

from torch.utils.data import Dataset

from ...errors import UserError
from ..unlabeled import load_rgb
from .base import ReidItem


class ReidImages(Dataset):
    """Sample i = {"image", "pid", "camid", "viewid", "path", "index"}.

    Unlike pretraining sets, a labelled split never skips a bad file: one silently missing
    gallery image would change the benchmark, so an unreadable image stops with its name.
    """

    def __init__(self, items: Sequence, transform: Callable | None = None):
        self.items = [ReidItem(*it) for it in items]  # also accepts plain (path, pid, camid[, viewid]) tuples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        it = self.items[index]
        try:
            img = load_rgb(it.path)
        except FileNotFoundError:
            raise UserError(f"re-id image {it.path} does not exist") from None
        except Exception as exc:  # PIL raises many types for a bad file; all mean the same to the user
            raise UserError(
                f"re-id image {it.path} cannot be read ({type(exc).__name__}: {exc}); expected a decodable image"
            ) from None
        return {
            "image": self.transform(img) if self.transform is not None else img,
            "pid": it.pid,
            "camid": it.camid,
            "viewid": it.viewid,
            "path": it.path,
            "index": index,
        }
