"""A user's own re-identification set, described by one CSV file.

    path,pid,camid[,split][,viewid]
    images/0001_a.jpg,1,0,train
    /abs/path/b.png,7,2,query

`camid` (and `viewid`) are 0-based and used as written; relative paths are resolved against
the CSV's folder. Without a `split` column every row is a training image. Any split may be
empty (a set only for evaluation has no train rows), but not all of them.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ...errors import UserError
from .base import SPLITS, ReidDataset, ReidItem, assemble

REQUIRED = ("path", "pid", "camid")
OPTIONAL = ("split", "viewid")


class CsvReid:
    title = "CSV re-id set"

    def __init__(self, root, relabel: str = "official", pid2label: dict | None = None, check_files: bool = True):
        self.csv_path = Path(root).expanduser()
        self.relabel, self.pid2label, self.check_files = relabel, pid2label, check_files

    def _rows(self) -> tuple[list[str], list[tuple[int, dict]]]:
        path = self.csv_path
        if not path.is_file():
            raise UserError(
                f"{self.title}: {path} is not a file; expected a CSV with header {','.join(REQUIRED)}[,split]"
            )
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                header = [h.strip() for h in (reader.fieldnames or [])]
                reader.fieldnames = header
                rows = [(number, row) for number, row in enumerate(reader, start=2)]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise UserError(f"{self.title}: cannot read {path} ({exc}); expected a UTF-8 CSV file") from None
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise UserError(
                f"{self.title}: {path} has no column {', '.join(missing)} (header: {','.join(header) or 'empty'}); "
                f"expected the header {','.join(REQUIRED)} with optional {', '.join(OPTIONAL)}"
            )
        return header, rows

    def _item(self, number: int, row: dict, has_view: bool) -> ReidItem:
        where = f"{self.title}: {self.csv_path} line {number}"
        rel = (row.get("path") or "").strip()
        if not rel:
            raise UserError(f"{where}: empty path; expected an image path")
        values = {}
        for column in ("pid", "camid") + (("viewid",) if has_view else ()):
            text = (row.get(column) or "").strip()
            try:
                values[column] = int(text)
            except ValueError:
                raise UserError(f"{where}: {column} {text!r} is not an integer") from None
        if values["camid"] < 0 or values.get("viewid", 0) < 0:
            raise UserError(
                f"{where}: camid and viewid must be >= 0 (0-based), got {values['camid']}, {values.get('viewid', 0)}"
            )
        path = Path(rel).expanduser()
        path = path if path.is_absolute() else self.csv_path.parent / path
        return ReidItem(str(path), values["pid"], values["camid"], values.get("viewid", 0))

    def load(self) -> ReidDataset:
        header, rows = self._rows()
        if not rows:
            raise UserError(f"{self.title}: {self.csv_path} has a header but no rows; expected one row per image")
        has_split, has_view = "split" in header, "viewid" in header
        splits: dict[str, list[ReidItem]] = {s: [] for s in SPLITS}
        for number, row in rows:
            split = (row.get("split") or "").strip().lower() if has_split else "train"
            if split not in splits:
                raise UserError(
                    f"{self.title}: {self.csv_path} line {number}: split {split!r} is not one of {', '.join(SPLITS)}"
                )
            splits[split].append(self._item(number, row, has_view))
        if self.check_files:
            self._check_files([it for items in splits.values() for it in items])
        return assemble(self.title, self.csv_path, **splits, relabel=self.relabel, pid2label=self.pid2label, require=())

    def _check_files(self, items: list[ReidItem]) -> None:
        # One early message beats a failure hours into training; a relative-path mistake
        # usually makes every file missing, so the first few are enough to show it.
        missing = [it.path for it in items if not Path(it.path).is_file()]
        if missing:
            raise UserError(
                f"{self.title}: {len(missing)} of {len(items)} images listed in {self.csv_path} do not exist, "
                f"e.g. {missing[0]}; relative paths are resolved against the CSV's folder {self.csv_path.parent}"
            )
