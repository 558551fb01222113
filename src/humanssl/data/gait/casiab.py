"""CASIA-B (Yu, Tan, Tan, ICPR 2006): 124 subjects, 10 walks each, 11 views.

    <root>/001/nm-01/000/001-nm-01-000-001.png    raw (320x240) and GaitSet-pretreated (64x64)
    <root>/001/nm-01/000/000.pkl                   OpenGait-pretreated, one pickle per sequence

Walks: nm-01..06 (normal), bg-01..02 (carrying a bag), cl-01..02 (wearing a coat); views
000..180 in 18-degree steps. `root` may be the folder holding the subject folders, or its
parent when that holds `CASIA-B/` (or one of the usual names). Raw frames are refused with a
pointer to `humanssl gait-pretreat`; missing views (subject 005 and a few others in the real
data) and empty sequence folders give one counted warning each.
"""

from __future__ import annotations

from pathlib import Path

from .sequences import GaitSequence, checked_scan, existing_dir, scan_tree, subdirs

TITLE = "CASIA-B"
TYPES = ("nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06", "bg-01", "bg-02", "cl-01", "cl-02")
VIEWS = tuple(f"{a:03d}" for a in range(0, 181, 18))
NUM_SUBJECTS = 124
PATTERNS = (r"\d{3}", r"(nm|bg|cl)-\d{2}", r"\d{3}")
LAYOUT = ("<root>/<subject 001-124>/<nm-01..06|bg-01..02|cl-01..02>/<view 000..180>/*.png "
          "(pretreated 64x64 or 64x44 frames) or .../<view>/<view>.pkl (OpenGait)")
CANDIDATES = ("CASIA-B", "CASIA_B", "casia-b", "casiab", "CASIA-B-pkl", "output")


def find_root(root, title: str = TITLE, layout: str = LAYOUT, candidates=CANDIDATES, subject_digits: int = 3) -> Path:
    """The folder holding the subject folders: root itself or one of the usual children."""
    root = existing_dir(title, root, layout)
    for folder in [root] + [root / c for c in candidates]:
        if folder.is_dir() and any(s.isdigit() and len(s) == subject_digits for s in subdirs(folder)):
            return folder
    return root  # scan_tree then names what is missing


def load_casiab(root, views: tuple[str, ...] = VIEWS, check_size: bool = True) -> list[GaitSequence]:
    """Every sequence under `root`, sorted by (subject, type, view): PNG folders or pickles."""
    folder = find_root(root)
    sequences, empty = scan_tree(TITLE, folder, PATTERNS, LAYOUT)
    return checked_scan(TITLE, folder, sequences, empty, views, LAYOUT, check_size)

