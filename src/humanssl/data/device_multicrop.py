"""SOLIDER's multi-crop augmentation on a whole batch at once, on the batch's device.

`MultiCropTransform` (transforms.py) runs per image in PIL on CPU workers: about 29 ms per
image per core for 2 + 8 crops, which caps a 16-core host near 550 img/s, below what the GPU
step can take. Here the data loader only decodes each image to a fixed-size uint8 canvas
(`CanvasTransform`); the trainer moves the batch to the device and `DeviceMultiCrop` turns it
into the same list of crops: [global 1, global 2, local 1 .. local N], normalised.

Same recipe, same random choices per image (crop box as torchvision samples it, flip, jitter
with its own factors and order, grayscale, blur, solarisation), with two documented
differences: crops are taken from the canvas (the image resized to `canvas_size`) rather than
from the original file, which only matters for images far from the canvas' aspect ratio; and
resampling is bicubic without PIL's antialiasing filter when a crop is shrunk.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .tensor_colour import color_jitter, random_gaussian_blur, random_grayscale, random_solarize
from .transforms import MultiCropConfig

ATTEMPTS = 10  # torchvision's RandomResizedCrop tries 10 boxes before its centre fallback


def sample_boxes(n: int, height: int, width: int, scale, ratio, generator=None, device=None) -> Tensor:
    """(n, 4) crop boxes (top, left, h, w) in pixels, drawn as torchvision's RandomResizedCrop
    draws them: area fraction uniform in `scale`, log aspect (w / h) uniform in `ratio`, the
    first of 10 draws that fits, else the centre crop clamped to the aspect range."""
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    u = torch.rand(n, ATTEMPTS, 4, generator=generator, device=device)
    target = area * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[..., 1])
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.argmax(fits.int(), dim=1)  # index of the first fitting draw (0 if none fits)
    pick = first[:, None]
    w, h = w.gather(1, pick)[:, 0], h.gather(1, pick)[:, 0]
    top = torch.floor(u[..., 2].gather(1, pick)[:, 0] * (height - h + 1))
    left = torch.floor(u[..., 3].gather(1, pick)[:, 0] * (width - w + 1))
    fallback = ~fits.any(dim=1)
    if bool(fallback.any()):
        in_ratio = width / height
        if in_ratio < ratio[0]:
            fw, fh = width, round(width / ratio[0])
        elif in_ratio > ratio[1]:
            fw, fh = round(height * ratio[1]), height
        else:
            fw, fh = width, height
        w = torch.where(fallback, torch.full_like(w, fw), w)
        h = torch.where(fallback, torch.full_like(h, fh), h)
        top = torch.where(fallback, torch.full_like(top, (height - fh) // 2), top)
        left = torch.where(fallback, torch.full_like(left, (width - fw) // 2), left)
    return torch.stack([top, left, h, w], dim=1)


def crop_resize(images: Tensor, boxes: Tensor, size, flip: Tensor | None = None) -> Tensor:
    """Each image's box resized (bicubic) to `size` = (H, W), mirrored where `flip`; one
    `grid_sample` for the whole batch. images float (n, C, H, W), boxes (n, 4) from sample_boxes."""
    n, c, height, width = images.shape
    top, left, h, w = boxes.to(images.dtype).unbind(1)
    sx, sy = w / width, h / height
    # Output pixel centres map onto the box like a resize with half-pixel centres.
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = sx if flip is None else torch.where(flip, -sx, sx)
    theta[:, 0, 2] = (2 * left + w) / width - 1
    theta[:, 1, 1] = sy
    theta[:, 1, 2] = (2 * top + h) / height - 1
    grid = F.affine_grid(theta, [n, c, *size], align_corners=False)
    out = F.grid_sample(images, grid, mode="bicubic", padding_mode="border", align_corners=False)
    return out.clamp(0.0, 1.0)


class DeviceMultiCrop:
    """Batch of uint8 canvases (B, 3, H, W) on any device -> the multi-crop list of crops."""

    def __init__(self, cfg: MultiCropConfig | None = None, generator: torch.Generator | None = None):
        self.cfg = cfg if cfg is not None else MultiCropConfig()
        self.generator = generator  # None: the device's global RNG, which checkpoints save
        self.mean = torch.tensor(self.cfg.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(self.cfg.std).view(1, 3, 1, 1)

    def __call__(self, batch: dict) -> dict:
        """Replaces batch["image"] (the canvases) by the list of crops."""
        images = batch["image"]
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        cfg = self.cfg
        blur1, blur2, blur_local = cfg.blur_probs
        crops = [
            self.view(x, cfg.global_size, cfg.global_scale, blur1, 0.0),
            self.view(x, cfg.global_size, cfg.global_scale, blur2, cfg.solarize_prob),
        ]
        if cfg.local_number > 0:  # all local crops in one pass
            many = x.repeat(cfg.local_number, 1, 1, 1)
            crops.extend(self.view(many, cfg.local_size, cfg.local_scale, blur_local, 0.0).chunk(cfg.local_number))
        return {**batch, "image": crops}

    def view(self, x: Tensor, size, scale, blur_prob: float, solarize_prob: float) -> Tensor:
        cfg, g, n = self.cfg, self.generator, x.shape[0]
        boxes = sample_boxes(n, x.shape[2], x.shape[3], scale, cfg.aspect, g, x.device)
        flip = torch.rand(n, generator=g, device=x.device) < cfg.flip_prob
        y = crop_resize(x, boxes, tuple(size), flip)
        y = color_jitter(y, cfg.jitter, cfg.jitter_prob, g)
        y = random_grayscale(y, cfg.grayscale_prob, g)
        y = random_gaussian_blur(y, blur_prob, cfg.blur_radius, g)
        if solarize_prob > 0:
            y = random_solarize(y, solarize_prob, g)
        return (y - self.mean.to(y.device)) / self.std.to(y.device)


class CanvasTransform:
    """What the data loader does when the crops are made on the device: PIL image -> uint8
    (3, H, W) tensor at the canvas size (bicubic), so a batch stacks into one tensor."""

    def __init__(self, size):
        self.size = (int(size[0]), int(size[1]))

    def __call__(self, img: Image.Image) -> Tensor:
        img = img.convert("RGB")
        if img.size != (self.size[1], self.size[0]):
            img = img.resize((self.size[1], self.size[0]), Image.BICUBIC)
        return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous()
