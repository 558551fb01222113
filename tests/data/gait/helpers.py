"""Tiny fake gait trees: PNG frames with a filled rectangle as the silhouette."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def blob(h: int = 48, w: int = 36, box=(8, 40, 12, 24), value: int = 255) -> np.ndarray:
    """A (h, w) uint8 frame, zero except rows box[0]:box[1], columns box[2]:box[3]."""
    img = np.zeros((h, w), np.uint8)
    img[box[0]:box[1], box[2]:box[3]] = value
    return img


def write_frames(folder: Path, frames, prefix: str = "f") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames, start=1):
        Image.fromarray(np.asarray(frame, np.uint8)).save(folder / f"{prefix}-{i:03d}.png")
    return folder


def pretreated(n: int, value: int = 255, size=(64, 44)) -> list[np.ndarray]:
    """n pretreated-size frames, frame i marked by i+1 foreground rows (so order is visible)."""
    out = []
    for i in range(n):
        img = np.zeros(size, np.uint8)
        img[: i + 1, :] = value
        out.append(img)
    return out
