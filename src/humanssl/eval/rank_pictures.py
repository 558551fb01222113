"""Pictures of ranked retrieval results: one PNG per query, the query then its top gallery images.

A correct match (same identity) gets a green frame, a wrong one a red frame; the query has a
grey frame. Gallery entries the protocol ignores for that query (same identity seen by the
query's own camera, junk boxes) are left out, so the picture shows the ranking that is scored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image, ImageDraw

from humanssl.errors import UserError

GREEN, RED, GREY, BACKGROUND = (40, 180, 60), (220, 40, 40), (128, 128, 128), (255, 255, 255)


def _tile(path: str, size: tuple[int, int], colour, border: int) -> Image.Image:
    h, w = size
    try:
        with Image.open(path) as img:
            img = img.convert("RGB").resize((w, h), Image.BILINEAR)
    except Exception as exc:  # noqa: BLE001 - any decoding failure means the same to a user
        raise UserError(f"cannot read image {path} for the rank picture ({type(exc).__name__}: {exc})") from None
    tile = Image.new("RGB", (w + 2 * border, h + 2 * border), colour)
    tile.paste(img, (border, border))
    return tile


def safe_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem)[:60]


def save_rank_pictures(out_dir, distances: torch.Tensor, query: Sequence, gallery: Sequence, *,
                       top_k: int = 10, use_cameras: bool = True, junk_pid: int | None = -1,
                       tile_size: tuple[int, int] = (128, 64), border: int = 4) -> list[Path]:
    """One PNG per row of `distances` (queries x gallery, smaller = closer) in `out_dir`.

    `query` / `gallery` are re-id items with `.path`, `.pid` and `.camid` (row i of
    `distances` is query[i]). Returns the written files.
    """
    distances = torch.as_tensor(distances).float().cpu()
    if distances.dim() != 2 or distances.shape[1] != len(gallery) or distances.shape[0] > len(query):
        raise UserError(f"rank pictures: distances of shape {tuple(distances.shape)} do not fit "
                        f"{len(query)} queries and {len(gallery)} gallery images")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    g_pids = torch.tensor([g.pid for g in gallery])
    g_cams = torch.tensor([g.camid for g in gallery])
    gap = 3 * border
    written = []
    for i in range(distances.shape[0]):
        q = query[i]
        ignore = (g_pids == q.pid) & (g_cams == q.camid) if use_cameras else torch.zeros_like(g_pids, dtype=torch.bool)
        if junk_pid is not None:
            ignore |= g_pids == junk_pid
        row = distances[i].masked_fill(ignore, float("inf"))
        order = torch.sort(row, stable=True).indices[: min(top_k, int((~ignore).sum()))]
        tiles = [_tile(q.path, tile_size, GREY, border)]
        tiles += [_tile(gallery[j].path, tile_size, GREEN if gallery[j].pid == q.pid else RED, border)
                  for j in order.tolist()]
        tw, th = tiles[0].size
        canvas = Image.new("RGB", (len(tiles) * tw + (len(tiles) - 1) * border + gap, th + 2 * border), BACKGROUND)
        x = 0
        for n, tile in enumerate(tiles):
            canvas.paste(tile, (x, border))
            x += tw + (gap + border if n == 0 else border)
        draw = ImageDraw.Draw(canvas)
        draw.line([(tw + gap // 2 + border // 2, 0), (tw + gap // 2 + border // 2, canvas.size[1])], fill=(0, 0, 0))
        path = out_dir / f"query_{i:04d}_{safe_name(q.path)}.png"
        canvas.save(path)
        written.append(path)
    return written
