"""Small PNG charts drawn with Pillow, so a run's picture needs no plotting library."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def training_summary(path: str | Path, steps: list[int], losses: list[float],
                     bars: dict[str, float], title: str = "") -> None:
    """Left: the loss curve. Right: one bar per named score (e.g. kNN mAP before / after)."""
    img = Image.new("RGB", (900, 360), "white")
    draw = ImageDraw.Draw(img)
    draw.text((20, 8), title, fill="black")
    line_chart(draw, (50, 40, 560, 320), steps, losses, "loss")
    bar_chart(draw, (620, 40, 880, 320), bars, "kNN mAP (%)")
    img.save(path)


def line_chart(draw: ImageDraw.ImageDraw, box, xs, ys, label: str) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline="black")
    draw.text((x0, y0 - 14), label, fill="black")
    if len(xs) < 2:
        return
    lo, hi = min(ys), max(ys)
    span = (hi - lo) or 1.0
    sx = lambda x: x0 + (x - xs[0]) / ((xs[-1] - xs[0]) or 1) * (x1 - x0)  # noqa: E731
    sy = lambda y: y1 - (y - lo) / span * (y1 - y0)  # noqa: E731
    draw.line([(sx(x), sy(y)) for x, y in zip(xs, ys)], fill=COLOURS[0], width=2)
    draw.text((x0 - 45, y0), f"{hi:.3g}", fill="black")
    draw.text((x0 - 45, y1 - 10), f"{lo:.3g}", fill="black")
    draw.text((x0, y1 + 4), f"step {xs[0]}", fill="black")
    draw.text((x1 - 60, y1 + 4), f"step {xs[-1]}", fill="black")


def bar_chart(draw: ImageDraw.ImageDraw, box, bars: dict[str, float], label: str) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline="black")
    draw.text((x0, y0 - 14), label, fill="black")
    if not bars:
        return
    top = max(max(bars.values()), 1e-9)
    width = (x1 - x0) / len(bars)
    for i, (name, value) in enumerate(bars.items()):
        left = x0 + i * width + 8
        height = value / top * (y1 - y0 - 30)
        draw.rectangle((left, y1 - height, left + width - 16, y1), fill=COLOURS[i % len(COLOURS)])
        draw.text((left, y1 - height - 12), f"{value:.1f}", fill="black")
        draw.text((left, y1 + 4), name[:12], fill="black")
