"""A user's own multi-label set: a CSV of `path,labels` rows, labels separated by spaces or ';'.

    path,labels
    img/0001.jpg,person dog
    img/0002.jpg,car
Relative paths join `root` (default: the CSV's folder). Classes are the sorted union of the
names unless `classes` fixes them (and their order). A row without labels is a mistake here.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from humanssl.data.multilabel.base import MultiLabelImages
from humanssl.errors import UserError


class CSVMultiLabel(MultiLabelImages):
    def __init__(self, csv_file: str | os.PathLike, root: str | os.PathLike | None = None,
                 classes: Sequence[str] | None = None, transform: Callable | None = None):
        csv_file = Path(csv_file).expanduser()
        if not csv_file.is_file():
            raise UserError(f"label file {csv_file} does not exist; expected a CSV of path,labels rows")
        base = Path(root).expanduser() if root is not None else csv_file.parent
        rows: list[tuple[str, list[str]]] = []
        with open(csv_file, encoding="utf-8", newline="") as f:
            for number, row in enumerate(csv.reader(f), start=1):
                if not row or not row[0].strip() or row[0].startswith("#"):
                    continue
                if number == 1 and row[0].strip().lower() == "path":
                    continue
                names = re.split(r"[\s;]+", row[1].strip()) if len(row) > 1 else []
                names = [n for n in names if n]
                if not names:
                    raise UserError(f"{csv_file} line {number}: image {row[0]!r} has no labels; expected "
                                    "'path,label1 label2 ...' with at least one class name")
                rows.append((row[0].strip(), names))
        if not rows:
            raise UserError(f"{csv_file} has no rows; expected 'path,labels' lines")
        known = sorted({n for _, names in rows for n in names}) if classes is None else list(classes)
        column = {c: k for k, c in enumerate(known)}
        labels = np.zeros((len(rows), len(known)), dtype=np.float32)
        for r, (_, names) in enumerate(rows):
            for n in names:
                if n not in column:
                    raise UserError(f"{csv_file}: row {r + 1} names class {n!r}; expected one of {', '.join(known)}")
                labels[r, column[n]] = 1.0
        paths = [p if os.path.isabs(p) else str(base / p) for p, _ in rows]
        super().__init__(paths, labels, known, None, transform, source=f"label file {csv_file}")
