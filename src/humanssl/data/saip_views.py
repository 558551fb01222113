"""SAIP's views of one person image (notes/solider_saip.md §2.2).

* global view 1 and 2, and the local crops: the DINO multi-crop of `transforms.py` (official
  sizes 256x128 and 128x64; the official `--local_crops_number 8` counts the region image
  below as its 8th "local", so `crops.local_number` is 7 here);
* the region image: global view 1 shrunk to the local-crop size (nearest, on the normalised
  tensor, as officially);
* the multi-person reference (224x224): a background picture cropped, flipped, jittered,
  blurred (p 0.1) and solarised (p 0.2), into which two person patches are alpha-blended
  (0.7 person, 0.3 background): the LAST local crop (its place is `roi_mask`) and the region
  image (`inst_mask`), the second to the right of the first so they never overlap.

Backgrounds come from a folder (`saip_views.background_root`, any image source) or, by default,
from the built-in synthetic street scenes, so the method runs with no data at all.

`SaipViews(img)` returns {"image": [global 1, global 2, local 1..N], "region", "reference",
"inst_mask", "roi_mask"}; `ssprl_views.ViewsDataset` lifts those keys into the sample and
`collate_samples` batches them. Random draws use Python's `random` and torch's global generator
only (the engine seeds both per sample).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

from humanssl.data.synthetic_scenes import SyntheticScenes
from humanssl.data.transforms import MultiCropConfig, MultiCropTransform, RandomGaussianBlur, RandomSolarize
from humanssl.errors import UserError


@dataclass
class SaipViewsConfig:
    """The reference image; the person views are `crops` (MultiCropConfig). Sizes are (H, W)."""

    reference_size: tuple[int, int] = (224, 224)
    reference_scale: tuple[float, float] = (0.2, 1.0)
    reference_aspect: tuple[float, float] = (0.75, 4 / 3)  # width / height
    reference_blur_prob: float = 0.1
    reference_solarize_prob: float = 0.2
    paste_alpha: float = 0.7  # weight of the person patch where it is pasted
    # a folder of background pictures (any depth); null: procedural synthetic scenes
    background_root: str | None = None
    procedural_backgrounds: int = 1000  # distinct synthetic scenes drawn from when no folder is given

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                setattr(self, f.name, tuple(value))

        def fail(name, expected):
            raise UserError(f"saip_views.{name}={getattr(self, name)!r}: expected {expected}")

        size = self.reference_size
        if len(size) != 2 or any(int(s) != s or s < 16 for s in size):
            fail("reference_size", "(height, width), integers >= 16")
        lo, hi = self.reference_scale
        if not 0 < lo <= hi <= 1:
            fail("reference_scale", "(min, max) area fractions, 0 < min <= max <= 1")
        lo, hi = self.reference_aspect
        if not 0 < lo <= hi:
            fail("reference_aspect", "(min, max) width/height ratios, 0 < min <= max")
        for name in ("reference_blur_prob", "reference_solarize_prob", "paste_alpha"):
            if not 0 <= getattr(self, name) <= 1:
                fail(name, "a number in [0, 1]")
        if int(self.procedural_backgrounds) != self.procedural_backgrounds or self.procedural_backgrounds < 1:
            fail("procedural_backgrounds", "an integer >= 1")


class SaipViews:
    """PIL person image -> the SAIP views (see the module docstring)."""

    def __init__(self, crops: MultiCropConfig | None = None, cfg: SaipViewsConfig | None = None,
                 background_seed: int = 0):
        self.crops = crops = crops if crops is not None else MultiCropConfig(local_number=7)
        self.cfg = cfg = cfg if cfg is not None else SaipViewsConfig()
        if int(crops.local_number) < 1:
            raise UserError(f"crops.local_number={crops.local_number}: SAIP needs at least one local crop "
                            "(the last one is pasted into the reference image)")
        self.patch_size = ph, pw = int(crops.local_size[0]), int(crops.local_size[1])
        rh, rw = self.ref_size = int(cfg.reference_size[0]), int(cfg.reference_size[1])
        # Room for two side-by-side patches with the official margins (see paste_positions).
        if rh < ph + 2 or rw < 2 * pw + 2:
            raise UserError(
                f"saip_views.reference_size={list(cfg.reference_size)} cannot hold two {ph}x{pw} person patches "
                f"(crops.local_size) side by side; expected height >= {ph + 2} and width >= {2 * pw + 2}")
        self.person_views = MultiCropTransform(crops)
        self.reference_view = self._reference_transform()
        self.backgrounds = _backgrounds(cfg, background_seed)

    def _reference_transform(self) -> T.Compose:
        c, v = self.crops, self.cfg
        return T.Compose([
            T.RandomResizedCrop(self.ref_size, scale=v.reference_scale, ratio=v.reference_aspect,
                                interpolation=T.InterpolationMode.BICUBIC),
            T.RandomHorizontalFlip(c.flip_prob),
            T.RandomApply([T.ColorJitter(*c.jitter)], p=c.jitter_prob),
            T.RandomGrayscale(c.grayscale_prob),
            RandomGaussianBlur(v.reference_blur_prob, c.blur_radius),
            RandomSolarize(v.reference_solarize_prob),
            T.ToTensor(),
            T.Normalize(c.mean, c.std),
        ])

    def __call__(self, img: Image.Image) -> dict:
        views = self.person_views(img)
        region = F.interpolate(views[0][None], size=self.patch_size, mode="nearest")[0]
        background = self.backgrounds(random.randrange(len(self.backgrounds)))
        reference = self.reference_view(background)
        (r1, c1), (r2, c2) = paste_positions(self.ref_size, self.patch_size)
        reference, roi_mask = paste(reference, views[-1], r1, c1, self.cfg.paste_alpha)
        reference, inst_mask = paste(reference, region, r2, c2, self.cfg.paste_alpha)
        return {"image": views, "region": region, "reference": reference,
                "inst_mask": inst_mask, "roi_mask": roi_mask}

    def __repr__(self):
        return f"{type(self).__name__}(crops={self.crops}, cfg={self.cfg})"


def paste_positions(ref_size: tuple[int, int], patch_size: tuple[int, int]) -> list[tuple[int, int]]:
    """Top-left corners of the two patches. The official ranges: rows 0 .. H - h - 2 for both;
    the first patch's column 0 .. W - 2w - 2, the second's from the first one's right edge to
    W - w - 2 (for 224 and 64: 0..94, then up to 158). So the second lies right of the first."""
    (rh, rw), (ph, pw) = ref_size, patch_size
    r1 = random.randrange(0, rh - ph - 1)
    c1 = random.randrange(0, rw - 2 * pw - 1)
    r2 = random.randrange(0, rh - ph - 1)
    c2 = random.randrange(c1 + pw, rw - pw - 1)
    return [(r1, c1), (r2, c2)]


def paste(reference: torch.Tensor, patch: torch.Tensor, row: int, col: int, alpha: float):
    """Blend `patch` into `reference` at (row, col); returns the image and the 0/1 (H, W) mask of
    the pasted area. Blending normalised tensors equals blending pixels (normalising is affine)."""
    h, w = patch.shape[-2:]
    out = reference.clone()
    window = out[:, row:row + h, col:col + w]
    out[:, row:row + h, col:col + w] = alpha * patch + (1 - alpha) * window
    mask = torch.zeros(reference.shape[-2:])
    mask[row:row + h, col:col + w] = 1.0
    return out, mask


class _FolderBackgrounds:
    def __init__(self, root: str):
        from humanssl.data.unlabeled import ImageFolderDataset

        try:  # checks the folder; unreadable files are later skipped with a warning
            self.images = ImageFolderDataset(root)
        except UserError as err:
            raise UserError(f"saip_views.background_root: {err}") from None

    def __len__(self) -> int:
        return len(self.images)

    def __call__(self, i: int) -> Image.Image:
        return self.images[i]["image"]


class _SceneBackgrounds:
    """Synthetic street scenes with people and objects in them: a multi-person picture, as the
    official LUPerson/ImageNet sources often are. Rendered at the reference size."""

    def __init__(self, count: int, seed: int, size: tuple[int, int]):
        self.count = int(count)
        self.world = SyntheticScenes(seed=seed, image_size=size)

    def __len__(self) -> int:
        return self.count

    def __call__(self, i: int) -> Image.Image:
        return self.world.render(i)[0]


def _backgrounds(cfg: SaipViewsConfig, seed: int):
    if cfg.background_root is not None:
        return _FolderBackgrounds(cfg.background_root)
    return _SceneBackgrounds(cfg.procedural_backgrounds, seed, (cfg.reference_size[0], cfg.reference_size[1]))
