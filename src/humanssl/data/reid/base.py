"""Plain data types of the re-identification datasets: an item, and the parsed dataset.

Every loader in this package ends by calling `assemble`, which relabels the training ids and
counts what each split holds; the loaders themselves only find folders and parse names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

from ...errors import UserError

SPLITS = ("train", "query", "gallery")
RELABEL_ORDERS = ("official", "sorted")


class ReidItem(NamedTuple):
    """One image. In `train`, `pid` is already the training label (0..num_train_pids-1), as in
    the official loaders; in query/gallery it is the dataset's own id (0 = distractor)."""

    path: str
    pid: int
    camid: int  # 0-based
    viewid: int = 0  # viewpoint (VeRi) or track id where the dataset has one, else 0


@dataclass(frozen=True)
class SplitStats:
    ids: int
    images: int
    cameras: int
    views: int


def split_stats(items: Iterable[ReidItem]) -> SplitStats:
    items = list(items)
    return SplitStats(
        ids=len({it.pid for it in items}),
        images=len(items),
        cameras=len({it.camid for it in items}),
        views=len({it.viewid for it in items}),
    )


@dataclass
class ReidDataset:
    """A parsed dataset: the three item lists and the id -> training label mapping.

    `pid2label` travels with every checkpoint, so classifier (and prompt) rows can be matched
    to identities again whatever order a loader relabelled them in.
    """

    name: str
    root: str
    train: list[ReidItem]
    query: list[ReidItem]
    gallery: list[ReidItem]
    pid2label: dict[int, int]
    notes: list[str] = field(default_factory=list)  # e.g. images dropped, how views were found

    def stats(self, split: str) -> SplitStats:
        if split not in SPLITS:
            raise UserError(f"{self.name}: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return split_stats(getattr(self, split))

    # The counts the official loaders expose: distinct values, not max+1 (a model sizes its
    # classifier by num_train_pids; camera/view counts size the SIE table).
    @property
    def num_train_pids(self) -> int:
        return len(self.pid2label)

    @property
    def num_train_imgs(self) -> int:
        return len(self.train)

    @property
    def num_train_cams(self) -> int:
        return self.stats("train").cameras

    @property
    def num_train_views(self) -> int:
        return self.stats("train").views

    @property
    def label2pid(self) -> dict[int, int]:
        return {label: pid for pid, label in self.pid2label.items()}

    def summary(self) -> str:
        """The statistics table the usual loaders print."""
        rule = "  " + "-" * 50
        lines = [f"{self.name} ({self.root})", rule, "  subset   |   # ids | # images | # cameras | # views", rule]
        for split in SPLITS:
            s = self.stats(split)
            lines.append(f"  {split:<8} | {s.ids:7d} | {s.images:8d} | {s.cameras:9d} | {s.views:7d}")
        lines.append(rule)
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def official_label_order(pids: Iterable[int]) -> list[int]:
    """Distinct ids in the order the official loaders number them.

    They build `set()` by adding ids in file order and enumerate the set, so labels follow
    CPython's hash-table slot order: ascending while every id is below the table size (real
    Market-1501, VeRi, VehicleID), scrambled otherwise (DukeMTMC-reID ids go up to 7140).
    Ints hash to themselves, so this is the same in every CPython process; we insert in sorted
    file-name order, where the official code uses the file system's listing order for Duke
    and VeRi — pass the checkpoint's own `pid2label` where that differs.
    """
    container: set[int] = set()
    for pid in pids:
        container.add(pid)
    return list(container)


def make_pid2label(pids_in_file_order: list[int], relabel: str = "official") -> dict[int, int]:
    if relabel == "official":
        order = official_label_order(pids_in_file_order)
    elif relabel == "sorted":
        order = sorted(set(pids_in_file_order))
    else:
        raise UserError(f"relabel={relabel!r} is not known; expected one of {', '.join(RELABEL_ORDERS)}")
    return {pid: label for label, pid in enumerate(order)}


def check_pid2label(name: str, given: dict, train_pids: set[int]) -> dict[int, int]:
    """A mapping supplied by the user (from a checkpoint): must label every training id, 0..N-1."""
    try:
        mapping = {int(k): int(v) for k, v in dict(given).items()}
    except (TypeError, ValueError):
        raise UserError(f"{name}: pid2label must map integer ids to integer labels") from None
    missing = sorted(train_pids - mapping.keys())
    if missing:
        raise UserError(
            f"{name}: the given pid2label has no label for training ids {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}; expected a mapping saved with a model trained on this dataset"
        )
    if sorted(mapping.values()) != list(range(len(mapping))):
        raise UserError(f"{name}: the given pid2label's labels are not 0..{len(mapping) - 1}, each once")
    return mapping


def assemble(
    name: str,
    root: str,
    train: list[ReidItem],
    query: list[ReidItem],
    gallery: list[ReidItem],
    relabel: str = "official",
    pid2label: dict | None = None,
    notes: list[str] | None = None,
    require: tuple[str, ...] = SPLITS,
    where: dict[str, str] | None = None,
) -> ReidDataset:
    """Relabel the training ids (train items arrive with raw ids) and build the dataset.

    `require` names the splits that must not be empty; `where` says for each split which
    folder or file it came from, for the message.
    """
    if relabel not in RELABEL_ORDERS:
        raise UserError(f"{name}: relabel={relabel!r} is not known; expected one of {', '.join(RELABEL_ORDERS)}")
    for split, items in (("train", train), ("query", query), ("gallery", gallery)):
        if split in require and not items:
            source = f" (from {where[split]})" if where and split in where else ""
            raise UserError(f"{name}: the {split} split is empty{source}; expected at least one labelled image")
    if pid2label is None:
        mapping = make_pid2label([it.pid for it in train], relabel)
    else:
        mapping = check_pid2label(name, pid2label, {it.pid for it in train})
    train = [it._replace(pid=mapping[it.pid]) for it in train]
    return ReidDataset(name, str(root), train, list(query), list(gallery), mapping, list(notes or []))
