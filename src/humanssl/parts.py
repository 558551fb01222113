"""`humanssl parts`: SOLIDER's pseudo part labels drawn over the images they come from.

What the pretraining sees (methods/solider.py, step 3): the teacher's last-stage tokens at
lambda = 1, clustered by `methods.part_labels.part_labels` (foreground by token norm, then
`num_parts` clusters numbered top to bottom). Each cell of the grid shows the image and, beside
it, the same image with every part's tokens tinted in that part's colour (background untinted).
An image whose foreground is not a strict majority of its tokens is one the pretraining skips;
its cell says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from PIL import Image, ImageDraw

from humanssl.errors import UserError
from humanssl.evaluate import gather_images, load_backbone, pick_device
from humanssl.methods.part_labels import part_labels

# Part 1 (top, roughly the head) .. part k; cycled past the end.
PART_COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (145, 30, 180),
                (245, 130, 48), (70, 240, 240), (240, 50, 230)]
ALPHA = 0.5
CAPTION = 14


def load_image(path: str) -> Image.Image:
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise UserError(f"image {path} does not exist") from None
    except Exception as exc:  # PIL raises many types for a bad file; all mean the same to the user
        raise UserError(f"image {path} cannot be read ({type(exc).__name__}: {exc}); expected a decodable image") from None


def overlay(image: Image.Image, labels: torch.Tensor, alpha: float = ALPHA) -> Image.Image:
    """`image` with label l >= 1 of the (h, w) token map tinted PART_COLOURS[l-1]; 0 left as is."""
    w, h = image.size
    up = torch.nn.functional.interpolate(labels[None, None].float(), size=(h, w), mode="nearest")[0, 0].long()
    colours = torch.tensor([(0, 0, 0)] + [PART_COLOURS[i % len(PART_COLOURS)] for i in range(int(up.max()))],
                           dtype=torch.float32)
    tint = colours[up]  # (H, W, 3)
    base = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(h, w, 3).float()
    mask = (up > 0).unsqueeze(-1).float() * alpha
    mixed = base * (1 - mask) + tint * mask
    return Image.frombytes("RGB", (w, h), mixed.round().clamp(0, 255).to(torch.uint8).numpy().tobytes())


@torch.no_grad()
def compute_parts(model, images: torch.Tensor, num_parts: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) normalised images -> (labels (B, h, w) in 0..num_parts, keep (B,)) on the CPU."""
    was_training = model.training
    model.eval()
    try:
        _, maps = model.forward_stages(images, 1.0)
    finally:
        model.train(was_training)
    labels, keep = part_labels(maps[-1], num_parts, generator=torch.Generator().manual_seed(seed))
    return labels.cpu(), keep.cpu()


def draw_grid(cells: list[tuple[Image.Image, Image.Image, str]], num_parts: int, columns: int) -> Image.Image:
    """Cells of (image, overlay, caption) side by side, `columns` cells a row, a legend on top."""
    w, h = cells[0][0].size
    cell_w, cell_h = 2 * w + 12, h + CAPTION + 8
    rows = (len(cells) + columns - 1) // columns
    legend = 22
    grid = Image.new("RGB", (max(columns * cell_w, 60 * (num_parts + 1)), legend + rows * cell_h), "white")
    draw = ImageDraw.Draw(grid)
    for p in range(num_parts):
        x = 6 + 60 * p
        draw.rectangle((x, 5, x + 12, 17), fill=PART_COLOURS[p % len(PART_COLOURS)])
        draw.text((x + 16, 5), f"part {p + 1}", fill="black")
    for i, (img, over, caption) in enumerate(cells):
        x, y = (i % columns) * cell_w, legend + (i // columns) * cell_h
        grid.paste(img, (x + 2, y))
        grid.paste(over, (x + 4 + w, y))
        draw.text((x + 2, y + h + 2), caption[: max(4, cell_w // 6)], fill="black")
    return grid


def run_parts(ckpt, inputs: list[str], output, *, num_parts: int = 3, max_images: int = 16, columns: int = 4,
              display_height: int = 192, backbone: str | None = None, part: str = "teacher",
              options: dict | None = None, size=None, mean=None, std=None, batch_size: int = 16, seed: int = 0,
              device="auto", echo: Callable = print) -> dict:
    output = Path(output)
    if output.suffix.lower() != ".png":
        raise UserError(f"-o {output}: expected a .png file name")
    if int(num_parts) != num_parts or num_parts < 1:
        raise UserError(f"--num-parts {num_parts}: expected an integer >= 1")
    if max_images < 1 or columns < 1 or batch_size < 1 or display_height < 16:
        raise UserError("--max-images, --columns and --batch-size must be >= 1, --display-height >= 16")
    loaded = load_backbone(ckpt, backbone, part=part, options=options, size=size, mean=mean, std=std)
    model = loaded.model
    if not getattr(model, "has_controller", False) or not hasattr(model, "forward_stages"):
        raise UserError(f"parts needs a SOLIDER Swin (swin_mini/tiny/small/base with the semantic controller); "
                        f"the checkpoint holds a {type(model).__name__} without one")
    paths = gather_images(inputs)
    if len(paths) > max_images:
        echo(f"{len(paths)} images given; drawing the first {max_images} (--max-images)")
        paths = paths[:max_images]
    dev = pick_device(device)
    model = model.to(dev)
    transform = loaded.transform()
    h, w = loaded.size
    shown = (max(int(round(display_height * w / h)), 8), display_height)
    cells, kept = [], 0
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        pictures = [load_image(p) for p in chunk]
        images = torch.stack([transform(img) for img in pictures]).to(dev)
        labels, keep = compute_parts(model, images, num_parts, seed)
        for path, img, lab, k in zip(chunk, pictures, labels, keep):
            shown_img = img.resize(shown, Image.BILINEAR)
            over = overlay(shown_img, lab)  # all background when not kept
            kept += int(k)
            caption = Path(path).name if k else f"{Path(path).name}: not kept"
            cells.append((shown_img, over, caption))
    grid = draw_grid(cells, num_parts, min(columns, len(cells)))
    output.parent.mkdir(parents=True, exist_ok=True)
    grid.save(output)
    tokens = tuple(labels.shape[1:])
    echo(f"part maps of {len(cells)} images ({kept} kept: foreground majority) from {loaded.name} "
         f"({loaded.source}), {num_parts} parts on a {tokens[0]}x{tokens[1]} token map: {output}")
    return {"output": str(output), "images": len(cells), "kept": kept, "token_map": tokens}
