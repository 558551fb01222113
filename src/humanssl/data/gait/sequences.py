"""Gait sequences: what one sequence is, how its frames are read, and the torch Dataset.

A sequence is one walk of one subject seen from one view: a folder of PNG frames
(`<subject>/<type>/<view>/*.png`) or one OpenGait pickle (`<subject>/<type>/<view>/<view>.pkl`).
Frames come out as (frames, 64, 44) float tensors in [0, 1] (the PNG value / 255, channel 0 of
an RGB file, as GaitSet reads them). A 64x64 frame (GaitSet's and OpenGait's pretreated size)
loses 10 columns on each side, as both official loaders cut them; a 64x44 frame is kept.

Bad data never reaches the model: an unreadable or wrong-size frame is skipped and its path
travels in the sample's "failed_reads" (the trainer counts those and stops once they are more
than rare); a sequence with no usable frame at all is replaced by the next one.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from humanssl.data.collate import collate_samples
from humanssl.errors import UserError

from .opengait_pickle import read_pickle_frames
from .samplers import FrameSampling

HEIGHT, WIDTH = 64, 44
MAX_WARNINGS = 10  # distinct bad files warned about one by one (per process); the rest are counted


class GaitDataWarning(UserWarning):
    """Missing views, empty sequence folders, short or unreadable sequences (filterable on its own)."""


@dataclass(frozen=True)
class GaitSequence:
    """One walk: `path` is the frame folder, or the pickle file when it ends with .pkl."""

    subject: str  # as written on disk: "001" (CASIA-B), "00001" (OU-MVLP)
    seq_type: str  # "nm-01" ... (CASIA-B), "00" / "01" (OU-MVLP)
    view: str  # "000" ... "180"
    path: str
    num_frames: int  # frame files (PNG folder) or -1 when unknown until read (pickle)

    @property
    def is_pickle(self) -> bool:
        return self.path.endswith(".pkl")

    @property
    def name(self) -> str:
        return f"{self.subject}/{self.seq_type}/{self.view}"


# ----------------------------------------------------------------------------- reading frames
def is_png(name: str) -> bool:
    return name.lower().endswith(".png") and not name.startswith(".")


def frame_files(folder: str) -> list[str]:
    """PNG frames of a sequence folder, in name order (frame numbers are zero-padded)."""
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_file() and is_png(e.name))
    except OSError as exc:
        raise UserError(f"cannot list the sequence folder {folder} ({exc})") from None


def read_frame(path: str) -> np.ndarray:
    """One silhouette as uint8 (h, w): channel 0 of RGB, as GaitSet's loader takes it."""
    with Image.open(path) as img:
        img.load()
        if img.mode == "1":
            return np.asarray(img, dtype=np.uint8) * 255
        if img.mode not in ("L", "RGB", "RGBA", "I;16", "I"):
            img = img.convert("L")
        arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def cut_width(frame: np.ndarray, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray | None:
    """A pretreated frame at the model's size: square 64x64 loses 10 columns per side (the
    official cut, `w // 64 * 10`); 64x44 is kept; any other size gives None (wrong size)."""
    h, w = frame.shape[-2:]
    if h != height:
        return None
    if w == width:
        return frame
    if w == h and h % 64 == 0:
        cut = w // 64 * 10
        if w - 2 * cut == width:
            return frame[..., cut:w - cut]
    return None


def expected_sizes(height: int = HEIGHT, width: int = WIDTH) -> str:
    return f"{height}x{width} or {height}x{height} (height x width)"


# ----------------------------------------------------------------------------- scanning trees
def existing_dir(name: str, root, layout: str) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise UserError(f"{name}: dataset root {root} does not exist; expected layout {layout}")
    if not root.is_dir():
        raise UserError(f"{name}: dataset root {root} is not a folder; expected layout {layout}")
    return root


def subdirs(folder: Path | str) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def scan_tree(name: str, root: Path, patterns: tuple[str, str, str],
              layout: str) -> tuple[list[GaitSequence], list[str]]:
    """Sequences of a `<subject>/<type>/<view>/` tree whose folder names match `patterns`.

    Top-level entries that are not subject folders (a `partition/` folder, a README) are
    ignored; a type or view folder with an unexpected name means the wrong layout (or the
    wrong root) and is an error naming it. Returns (sequences, empty sequence folders).
    """
    subject_re, type_re, view_re = (re.compile(p) for p in patterns)
    sequences, empty = [], []
    subjects = [s for s in subdirs(root) if subject_re.fullmatch(s)]
    if not subjects:
        raise UserError(f"{name}: no subject folders in {root}; expected layout {layout}")
    for subject in subjects:
        for seq_type in subdirs(root / subject):
            if not type_re.fullmatch(seq_type):
                raise UserError(f"{name}: unexpected folder {root / subject / seq_type}; expected layout {layout}")
            for view in subdirs(root / subject / seq_type):
                folder = root / subject / seq_type / view
                if not view_re.fullmatch(view):
                    raise UserError(f"{name}: unexpected folder {folder}; expected layout {layout}")
                sequences.extend(sequences_in(folder, subject, seq_type, view, empty))
    return sequences, empty


def sequences_in(folder: Path, subject: str, seq_type: str, view: str, empty: list[str]) -> list[GaitSequence]:
    """The sequence stored in one view folder: its PNG frames, or its OpenGait pickle."""
    names = [e.name for e in os.scandir(folder) if e.is_file()]
    pickles = sorted(n for n in names if n.endswith(".pkl"))
    if pickles:
        chosen = f"{view}.pkl" if f"{view}.pkl" in pickles else pickles[0]
        if len(pickles) > 1 and chosen != f"{view}.pkl":
            raise UserError(f"{folder} holds several pickles ({', '.join(pickles)}); expected one, "
                            f"named {view}.pkl as OpenGait's pretreatment writes it")
        return [GaitSequence(subject, seq_type, view, str(folder / chosen), -1)]
    frames = sum(is_png(n) for n in names)
    if frames == 0:
        empty.append(str(folder))
        return []
    return [GaitSequence(subject, seq_type, view, str(folder), frames)]


def warn_counted(message: str, examples: list[str], total: int | None = None) -> None:
    if not examples:
        return
    total = len(examples) if total is None else total
    shown = ", ".join(examples[:5]) + (", ..." if len(examples) > 5 else "")
    warnings.warn(f"{message.format(n=len(examples), total=total)} (e.g. {shown})", GaitDataWarning, stacklevel=3)


def warn_missing_views(name: str, sequences: list[GaitSequence], views: Iterable[str]) -> list[str]:
    """Counted warning for (subject, type) walks that lack some of the expected views."""
    seen: dict[tuple[str, str], set[str]] = {}
    for s in sequences:
        seen.setdefault((s.subject, s.seq_type), set()).add(s.view)
    missing = [f"{subj}/{typ}/{v}" for (subj, typ), have in sorted(seen.items()) for v in views if v not in have]
    warn_counted(f"{name}: {{n}} sequences missing from {{total}} walks x views", missing, len(seen) * len(list(views)))
    return missing


def check_frame_size(name: str, sequences: list[GaitSequence], layout: str,
                     height: int = HEIGHT, width: int = WIDTH) -> None:
    """Look at the first frame of the first PNG sequence: raw silhouettes need pre-treatment."""
    first = next((s for s in sequences if not s.is_pickle), None)
    if first is None:
        return
    path = os.path.join(first.path, frame_files(first.path)[0])
    try:
        with Image.open(path) as img:
            w, h = img.size
    except Exception as exc:  # PIL raises many types; any means unreadable
        warnings.warn(f"{name}: cannot read {path} ({exc}); such frames are skipped", GaitDataWarning, stacklevel=3)
        return
    if cut_width(np.zeros((h, w), np.uint8), height, width) is None:
        raise UserError(
            f"{name}: frame {path} is {h}x{w} (height x width); expected pretreated frames of "
            f"{expected_sizes(height, width)}. Raw silhouettes need `humanssl gait-pretreat SRC DST` "
            f"first; expected layout {layout}"
        )


def checked_scan(name: str, folder, sequences: list[GaitSequence], empty: list[str], views: Iterable[str],
                 layout: str, check_size: bool) -> list[GaitSequence]:
    """What every loader does with a finished scan: refuse an empty result, warn once about empty
    folders and missing views, and make sure the frames are pre-treated."""
    if not sequences:
        raise UserError(f"{name}: every sequence folder under {folder} is empty; expected layout {layout}")
    warn_counted(f"{name}: {{n}} empty sequence folders skipped", empty)
    warn_missing_views(name, sequences, views)
    if check_size:
        check_frame_size(name, sequences, layout)
    return sequences


# ----------------------------------------------------------------------------- the Dataset
class GaitSequences(Dataset):
    """Sequences as samples: {"silhouettes": (s, 64, 44) float in [0, 1], "label": int,
    "subject", "seq_type", "view": str, "index": int, "failed_reads": [paths]}.

    `frames` picks which frames a sample holds: `FrameSampling("window", 30)` (training: a random
    window of 30 consecutive frames), "choices" (GaitSet's 30 random frames with replacement) or
    "all" (test; batch with `collate_packed`). Random picks use the global NumPy RNG, which the
    engine's `SeededDataset` seeds from (seed, epoch, index), so a sample does not depend on the
    worker that loads it. `labels` maps subject names to class numbers (default: sorted subjects
    of `sequences` numbered from 0).
    """

    def __init__(self, sequences: list[GaitSequence], frames: FrameSampling | str = "all",
                 labels: dict[str, int] | None = None, height: int = HEIGHT, width: int = WIDTH):
        if not sequences:
            raise UserError("a gait dataset needs at least one sequence; the split or folder selected none")
        self.sequences = list(sequences)
        self.frames = frames if isinstance(frames, FrameSampling) else FrameSampling(frames)
        subjects = sorted({s.subject for s in self.sequences})
        self.label_of = dict(labels) if labels is not None else {s: i for i, s in enumerate(subjects)}
        unknown = [s for s in subjects if s not in self.label_of]
        if unknown:
            raise UserError(f"subjects {', '.join(unknown[:5])} have no label in the given label map")
        self.height, self.width = height, width
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def labels(self) -> list[int]:
        """Class number of every sequence, in dataset order (for the P x M sampler)."""
        return [self.label_of[s.subject] for s in self.sequences]

    def __getitem__(self, index: int) -> dict:
        n = len(self.sequences)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} sequences")
        index %= n
        failed: list[str] = []
        for offset in range(n):
            seq = self.sequences[(index + offset) % n]
            frames = self.load(seq, failed)
            if frames is None:
                continue
            return {"silhouettes": torch.from_numpy(frames).float().div_(255.0), "label": self.label_of[seq.subject],
                    "subject": seq.subject, "seq_type": seq.seq_type, "view": seq.view, "index": index,
                    "failed_reads": failed}
        raise UserError(f"none of the {n} gait sequences could be read (e.g. {failed[0] if failed else '?'}); "
                        f"expected PNG frames or pickles of {expected_sizes(self.height, self.width)}")

    def load(self, seq: GaitSequence, failed: list[str]) -> np.ndarray | None:
        """The chosen frames of one sequence as uint8 (s, h, w), or None when none is usable."""
        if seq.is_pickle:
            try:
                stack = read_pickle_frames(seq.path)
            except UserError as exc:
                self._warn(seq.path, exc)
                failed.append(seq.path)
                return None
            stack = cut_width(stack, self.height, self.width)
            if stack is None or len(stack) == 0:
                self._warn(seq.path, f"frames are not {expected_sizes(self.height, self.width)}, or there are none")
                failed.append(seq.path)
                return None
            return stack[self.frames.indices(len(stack))]
        names = frame_files(seq.path)
        if not names:
            self._warn(seq.path, "the folder holds no PNG frames")
            failed.append(seq.path)
            return None
        picked = self.frames.indices(len(names))
        good: dict[int, np.ndarray] = {}
        for i in sorted(set(picked)):
            path = os.path.join(seq.path, names[i])
            try:
                frame = cut_width(read_frame(path), self.height, self.width)
            except Exception as exc:  # unreadable image: PIL raises many types
                frame, reason = None, exc
            else:
                reason = f"frame is not {expected_sizes(self.height, self.width)}"
            if frame is None:
                self._warn(path, reason)
                failed.append(path)
            else:
                good[i] = frame
        if not good:
            return None
        # A bad frame is replaced by the nearest good one, so a window keeps its length.
        usable = np.array(sorted(good))
        nearest = [int(usable[np.abs(usable - i).argmin()]) for i in picked]
        return np.stack([good[i] for i in nearest])

    def _warn(self, path: str, reason) -> None:
        if path in self._warned or len(self._warned) >= MAX_WARNINGS:
            return
        self._warned.add(path)
        warnings.warn(f"skipping {path}: {reason}", GaitDataWarning, stacklevel=4)


# ----------------------------------------------------------------------------- batching
def collate_clips(samples: list[dict]) -> dict:
    """Fixed-length clips (training): silhouettes (n, s, h, w), label (n,), strings as lists."""
    return collate_samples(samples)


def collate_packed(samples: list[dict]) -> dict:
    """Whole sequences of different lengths (test), packed as GaitSet's test mode does: the
    frames of all samples one after another in ONE batch row, silhouettes (1, total, h, w), and
    `batch_frame` the list of their frame counts (the models pool each segment on its own)."""
    if not samples:
        raise ValueError("collate_packed needs at least one sample")
    clips = [s["silhouettes"] for s in samples]
    sizes = {tuple(c.shape[1:]) for c in clips}
    if len(sizes) > 1:
        raise UserError(f"cannot pack sequences with different frame sizes {sorted(sizes)}; expected one size")
    rest = collate_samples([{k: v for k, v in s.items() if k != "silhouettes"} for s in samples])
    rest["silhouettes"] = torch.cat(clips, 0).unsqueeze(0)
    rest["batch_frame"] = [int(c.shape[0]) for c in clips]
    return rest


def unpack(silhouettes: torch.Tensor, batch_frame: list[int]) -> list[torch.Tensor]:
    """Inverse of the packing: the (s_i, h, w) sequences of a packed batch."""
    return list(silhouettes[0].split(list(batch_frame), 0))


__all__ = ["GaitDataWarning", "GaitSequence", "GaitSequences", "collate_clips", "collate_packed", "cut_width",
           "frame_files", "read_frame", "scan_tree", "unpack"]
