"""Silhouette pre-treatment (`humanssl gait-pretreat SRC DST`), after GaitSet's pretreatment.py
and OpenGait's datasets/pretreatment.py, which do the same per frame:

1. drop a near-empty frame (pixel sum <= 10000 on 0..255 values, i.e. under ~40 foreground
   pixels);
2. crop the rows from the first to the last foreground row;
3. resize to height 64 keeping the aspect (width = int(64 * w / h)), bicubic;
4. find the column where the cumulative column mass first exceeds half the total and centre
   the output on it, padding with zeros where the window leaves the image;
5. cut to 64x44 — the official tools write 64x64 and their loaders cut 10 columns per side
   later; `width=64` writes their 64x64 instead.

A sequence keeping fewer than 5 frames is reported (counted warning); one keeping none is
not written. Output: the input's `<subject>/<type>/<view>/` tree with one PNG per kept frame
(names kept), or OpenGait's `<view>.pkl` per sequence (`output="pickle"`). Inputs: any such
three-level tree (CASIA-B raw, OU-MVLP rearranged) or OU-MVLP as distributed
(`Silhouette_<view>-<seq>/<subject>/`, written out rearranged).

The resize is our own NumPy version of OpenCV's INTER_CUBIC (a = -0.75, half-pixel centres,
replicated border, no antialiasing), so no OpenCV is needed and workers never start torch.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from humanssl.errors import UserError

from .oumvlp import is_raw_layout, scan_raw
from .opengait_pickle import write_pickle_frames
from .sequences import GaitDataWarning, frame_files, read_frame, subdirs, warn_counted

MIN_SUM = 10000  # the official near-empty threshold, on 0..255 pixel values
MIN_FRAMES = 5  # sequences with fewer kept frames are reported
OUTPUTS = ("png", "pickle")
LAYOUTS = ("<SRC>/<subject>/<type>/<view>/*.png (CASIA-B raw, OU-MVLP rearranged) or "
           "<SRC>/Silhouette_<view>-<seq>/<subject>/*.png (OU-MVLP as distributed)")


# ----------------------------------------------------------------------------- one frame
def _cubic(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    t = np.abs(t)
    return np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                    np.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0))


def _cubic_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) interpolation weights along one axis."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    base = np.floor(src).astype(np.int64)
    frac = src - base
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    for k in (-1, 0, 1, 2):
        np.add.at(m, (rows, np.clip(base + k, 0, n_in - 1)), _cubic(frac - k))
    return m


def cubic_resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (h, w) -> uint8 (height, width), bicubic as OpenCV's INTER_CUBIC."""
    out = _cubic_matrix(img.shape[0], height) @ img.astype(np.float64) @ _cubic_matrix(img.shape[1], width).T
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def pretreat_frame(img: np.ndarray, height: int = 64, width: int = 44, min_sum: int = MIN_SUM) -> np.ndarray | None:
    """One raw silhouette (uint8 h x w, foreground > 0) -> uint8 (height, width), or None when
    the frame is near-empty or has no usable centre."""
    img = np.asarray(img)
    if img.ndim == 3:
        img = img[:, :, 0]
    if int(img.sum(dtype=np.int64)) <= min_sum:
        return None
    rows = np.flatnonzero(img.any(axis=1))
    img = img[rows[0]:rows[-1] + 1]
    new_w = int(height * img.shape[1] / img.shape[0])
    if new_w < 1:
        return None
    img = cubic_resize(img, height, new_w)
    mass = img.sum(axis=0, dtype=np.int64).cumsum()
    if mass[-1] == 0:
        return None
    centre = int(np.argmax(mass > mass[-1] / 2))
    left = centre - width // 2
    padded = np.pad(img, ((0, 0), (width, width)))
    return padded[:, left + width:left + 2 * width]


# ----------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class PretreatJob:
    subject: str
    seq_type: str
    view: str
    folder: str

    @property
    def name(self) -> str:
        return f"{self.subject}/{self.seq_type}/{self.view}"


def plan(src: Path) -> list[PretreatJob]:
    """One job per sequence folder of SRC (either input layout)."""
    if is_raw_layout(src):
        sequences, _ = scan_raw(src)
        return [PretreatJob(s.subject, s.seq_type, s.view, s.path) for s in sequences if not s.is_pickle]
    jobs = []
    for subject in subdirs(src):
        for seq_type in subdirs(src / subject):
            for view in subdirs(src / subject / seq_type):
                jobs.append(PretreatJob(subject, seq_type, view, str(src / subject / seq_type / view)))
    return jobs


# ----------------------------------------------------------------------------- one sequence
@dataclass
class JobResult:
    name: str
    kept: int = 0
    dropped: int = 0
    unreadable: list[str] = field(default_factory=list)


def pretreat_sequence(job: PretreatJob, dst: str, height: int, width: int, min_sum: int, output: str) -> JobResult:
    result = JobResult(job.name)
    kept, names = [], []
    for name in frame_files(job.folder):
        path = os.path.join(job.folder, name)
        try:
            raw = read_frame(path)
        except Exception:  # unreadable image: PIL raises many types
            result.unreadable.append(path)
            continue
        frame = pretreat_frame(raw, height, width, min_sum)
        if frame is None:
            result.dropped += 1
            continue
        kept.append(frame)
        names.append(name)
    result.kept = len(kept)
    if not kept:
        return result
    out = os.path.join(dst, job.subject, job.seq_type, job.view)
    if output == "pickle":
        write_pickle_frames(os.path.join(out, f"{job.view}.pkl"), np.stack(kept))
    else:
        os.makedirs(out, exist_ok=True)
        for name, frame in zip(names, kept):
            Image.fromarray(frame).save(os.path.join(out, os.path.splitext(name)[0] + ".png"))
    return result


# ----------------------------------------------------------------------------- the command
@dataclass
class PretreatReport:
    sequences: int = 0  # sequence folders found
    written: int = 0
    frames_kept: int = 0
    frames_dropped: int = 0  # near-empty or without a centre
    short: list[str] = field(default_factory=list)  # written, but fewer than MIN_FRAMES frames
    empty: list[str] = field(default_factory=list)  # no frame kept: not written
    unreadable: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.written} of {self.sequences} sequences written, {self.frames_kept} frames kept, "
                f"{self.frames_dropped} near-empty frames dropped, {len(self.short)} sequences with fewer "
                f"than {MIN_FRAMES} frames, {len(self.empty)} with none, {len(self.unreadable)} unreadable files")


def check_paths(src, dst) -> tuple[Path, Path]:
    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not src.is_dir():
        raise UserError(f"gait-pretreat: source {src} is not a folder; expected {LAYOUTS}")
    s, d = src.resolve(), dst.resolve()
    if d == s or s in d.parents:
        raise UserError(f"gait-pretreat: destination {dst} is inside the source {src}; expected a separate folder")
    return src, dst


def run_pretreat(src, dst, workers: int = 4, *, height: int = 64, width: int = 44, output: str = "png",
                 min_sum: int = MIN_SUM, progress: bool = True) -> PretreatReport:
    """Pre-treat every sequence of SRC into DST with `workers` processes (0 or 1: in this one)."""
    if output not in OUTPUTS:
        raise UserError(f"gait-pretreat: output {output!r} is not known; expected one of {', '.join(OUTPUTS)}")
    if height < 1 or not 1 <= width:
        raise UserError(f"gait-pretreat: height and width must be >= 1, got {height}x{width}")
    src, dst = check_paths(src, dst)
    jobs = plan(src)
    if not jobs:
        raise UserError(f"gait-pretreat: no sequence folders in {src}; expected {LAYOUTS}")
    dst.mkdir(parents=True, exist_ok=True)
    work = partial(pretreat_sequence, dst=str(dst), height=height, width=width, min_sum=min_sum, output=output)
    report = PretreatReport(sequences=len(jobs))
    bar = tqdm(total=len(jobs), desc="gait-pretreat", unit="seq", disable=not progress)
    try:
        if workers <= 1:
            results = map(work, jobs)
            _collect(report, results, bar)
        else:
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            with mp.get_context(method).Pool(workers) as pool:
                chunk = max(1, min(16, len(jobs) // (workers * 8)))
                _collect(report, pool.imap_unordered(work, jobs, chunksize=chunk), bar)
    finally:
        bar.close()
    report.short.sort()
    report.empty.sort()
    warn_counted(f"gait-pretreat: {{n}} sequences kept fewer than {MIN_FRAMES} frames", report.short)
    warn_counted("gait-pretreat: {n} sequences kept no frame and were not written", report.empty)
    warn_counted("gait-pretreat: {n} unreadable frames skipped", report.unreadable)
    return report


def _collect(report: PretreatReport, results, bar) -> None:
    for r in results:
        report.frames_kept += r.kept
        report.frames_dropped += r.dropped
        report.unreadable += r.unreadable
        if r.kept == 0:
            report.empty.append(r.name)
        else:
            report.written += 1
            if r.kept < MIN_FRAMES:
                report.short.append(r.name)
        bar.update(1)


__all__ = ["GaitDataWarning", "PretreatReport", "cubic_resize", "pretreat_frame", "run_pretreat"]
