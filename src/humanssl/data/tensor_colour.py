"""Photometric augmentations on a batch of images at once, each image with its own parameters.

They work on float tensors (B, 3, H, W) in [0, 1] on any device, so SOLIDER's multi-crop can
run on the GPU (`device_multicrop.py`) instead of costing ~29 ms per image on a CPU core. Each
follows the PIL / torchvision operation the official pipeline uses; where it differs, the
docstring says how.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# ITU-R 601-2 luma, as PIL's convert("L") and torchvision's rgb_to_grayscale.
LUMA = (0.299, 0.587, 0.114)


def grayscale(x: Tensor) -> Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luma."""
    r, g, b = x.unbind(1)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(1)


def per_image(v: Tensor) -> Tensor:
    return v.view(-1, 1, 1, 1)


def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    return (x * per_image(factor)).clamp(0.0, 1.0)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    # torchvision blends with the mean of the grayscale image, one mean per image.
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    return (mean + per_image(factor) * (x - mean)).clamp(0.0, 1.0)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    gray = grayscale(x)
    return (gray + per_image(factor) * (x - gray)).clamp(0.0, 1.0)


def rgb_to_hsv(x: Tensor) -> Tensor:
    r, g, b = x.unbind(1)
    v, _ = x.max(dim=1)
    c = v - x.min(dim=1).values
    s = torch.where(v > 0, c / v.clamp_min(1e-12), torch.zeros_like(v))
    safe = c.clamp_min(1e-12)
    h = torch.where(v == r, ((g - b) / safe) % 6.0,
                    torch.where(v == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    h = torch.where(c > 0, h / 6.0, torch.zeros_like(h))
    return torch.stack([h, s, v], dim=1)


def hsv_to_rgb(x: Tensor) -> Tensor:
    h, s, v = x.unbind(1)
    h6 = h * 6.0
    # Closed form of the six hue sectors: channel n (5 red, 3 green, 1 blue) loses v*s times a
    # tent of the hue distance, which avoids gathering from a table of sector arrangements.
    channels = [v - v * s * torch.clamp(torch.minimum((n + h6) % 6.0, 4.0 - (n + h6) % 6.0), 0.0, 1.0)
                for n in (5.0, 3.0, 1.0)]
    return torch.stack(channels, dim=1)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue by `shift` (fraction of the circle, in [-0.5, 0.5]) per image."""
    hsv = rgb_to_hsv(x)
    h = (hsv[:, 0] + shift.view(-1, 1, 1)) % 1.0
    return hsv_to_rgb(torch.stack([h, hsv[:, 1], hsv[:, 2]], dim=1))


def color_jitter(x: Tensor, strengths, prob: float, generator: torch.Generator | None = None) -> Tensor:
    """torchvision's ColorJitter(brightness, contrast, saturation, hue) applied with probability
    `prob`, each image with its own factors and its own random order of the four operations."""
    bright, contrast, sat, hue = strengths
    n, dev = x.shape[0], x.device

    def uniform(lo: float, hi: float) -> Tensor:
        return torch.rand(n, generator=generator, device=dev) * (hi - lo) + lo

    factors = [uniform(max(0.0, 1 - bright), 1 + bright), uniform(max(0.0, 1 - contrast), 1 + contrast),
               uniform(max(0.0, 1 - sat), 1 + sat), uniform(-hue, hue)]
    ops = [adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue]
    apply = torch.rand(n, generator=generator, device=dev) < prob
    order = torch.argsort(torch.rand(n, 4, generator=generator, device=dev), dim=1)
    out = x.clone()
    for position in range(4):
        for k in range(4):
            if strengths[k] <= 0:
                continue
            # only the images that apply op k at this position: 4 evaluations per image in all
            rows = torch.nonzero(apply & (order[:, position] == k)).flatten()
            if rows.numel():
                out[rows] = ops[k](out[rows], factors[k][rows])
    return out


def random_grayscale(x: Tensor, prob: float, generator: torch.Generator | None = None) -> Tensor:
    apply = torch.rand(x.shape[0], generator=generator, device=x.device) < prob
    return torch.where(per_image(apply), grayscale(x).expand_as(x), x)


def random_solarize(x: Tensor, prob: float, generator: torch.Generator | None = None) -> Tensor:
    """PIL's ImageOps.solarize at threshold 128: values of 128/255 and above are inverted."""
    apply = torch.rand(x.shape[0], generator=generator, device=x.device) < prob
    return torch.where(per_image(apply) & (x >= 128 / 255), 1.0 - x, x)


def random_gaussian_blur(x: Tensor, prob: float, sigma_range, generator: torch.Generator | None = None) -> Tensor:
    """PIL's GaussianBlur(radius=sigma), sigma uniform in `sigma_range`, with probability `prob`.

    A separable Gaussian cut at 3 sigma of the largest sigma, edges replicated (PIL extends the
    border pixels too). One grouped convolution blurs every image with its own sigma."""
    n, c, h, w = x.shape
    apply = torch.rand(n, generator=generator, device=x.device) < prob
    lo, hi = sigma_range
    sigma = torch.rand(n, generator=generator, device=x.device) * (hi - lo) + lo
    if not bool(apply.any()):
        return x
    radius = max(1, math.ceil(3 * hi))
    rows = torch.nonzero(apply).flatten()  # blur only the images that draw it
    k = rows.numel()
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-(t[None] ** 2) / (2 * sigma[rows, None].to(x.dtype) ** 2))
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (k*c, taps)
    y = x[rows].reshape(1, k * c, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), kernel[:, None, None, :], groups=k * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), kernel[:, None, :, None], groups=k * c)
    out = x.clone()
    out[rows] = y.view(k, c, h, w)
    return out
