"""OU-MVLP (Takemura et al., 2018): 10,307 subjects, 14 views, two walks (00, 01) each.

    <root>/Silhouette_000-00/00001/0001.png     as distributed (one folder per view and walk)
    <root>/00001/00/000/0001.png                rearranged (OpenGait's rearrange_OUMVLP.py)
    <root>/00001/00/000/000.pkl                 OpenGait-pretreated

Views 000-090 and 180-270 in 15-degree steps. Both PNG layouts are read; the distributed
silhouettes are raw and must go through `humanssl gait-pretreat` (which also rearranges them)
before training.
"""

from __future__ import annotations

import re

from humanssl.errors import UserError

from .casiab import find_root
from .sequences import GaitSequence, checked_scan, existing_dir, scan_tree, sequences_in, subdirs

TITLE = "OU-MVLP"
VIEWS = tuple(f"{a:03d}" for a in (*range(0, 91, 15), *range(180, 271, 15)))
SEQS = ("00", "01")
NUM_SUBJECTS = 10307
RAW_DIR = re.compile(r"Silhouette_(\d{3})-(\d{2})")
PATTERNS = (r"\d{5}", r"\d{2}", r"\d{3}")
LAYOUT = ("<root>/Silhouette_<view>-<seq>/<subject 00001-10307>/*.png (as distributed) or "
          "<root>/<subject>/<seq 00|01>/<view>/*.png or .../<view>/<view>.pkl (rearranged / pretreated)")
CANDIDATES = ("OUMVLP", "OU-MVLP", "OUMVLP_rearranged", "OUMVLP-pkl")


def is_raw_layout(root) -> bool:
    return any(RAW_DIR.fullmatch(d) for d in subdirs(root))


def scan_raw(root) -> tuple[list[GaitSequence], list[str]]:
    """Sequences of the distributed layout, named as in the rearranged one."""
    sequences, empty = [], []
    for top in subdirs(root):
        match = RAW_DIR.fullmatch(top)
        if match is None:
            continue
        view, seq = match.groups()
        for subject in subdirs(root / top):
            if not re.fullmatch(PATTERNS[0], subject):
                raise UserError(f"{TITLE}: unexpected folder {root / top / subject}; expected layout {LAYOUT}")
            sequences += sequences_in(root / top / subject, subject, seq, view, empty)
    sequences.sort(key=lambda s: (s.subject, s.seq_type, s.view))
    return sequences, empty


def load_oumvlp(root, views: tuple[str, ...] = VIEWS, check_size: bool = True) -> list[GaitSequence]:
    """Every sequence under `root`, sorted by (subject, seq, view), from either layout."""
    folder = existing_dir(TITLE, root, LAYOUT)
    if is_raw_layout(folder):
        sequences, empty = scan_raw(folder)
    else:
        folder = find_root(folder, TITLE, LAYOUT, CANDIDATES, subject_digits=5)
        sequences, empty = scan_tree(TITLE, folder, PATTERNS, LAYOUT)
    return checked_scan(TITLE, folder, sequences, empty, views, LAYOUT, check_size)
