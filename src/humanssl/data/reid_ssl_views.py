"""Re-id training images with two extra augmented views each (SVLL-ReID's visual self-supervision).

The views go through the training pipeline's geometry (resize, flip, pad + crop, normalise)
and then random erasing with the same probability (the official INPUT.RE_PROB drives both),
but always of one box covering a third of the image: occlusion is the change the two views
must agree across.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

from timm.data.random_erasing import RandomErasing
from torch.utils.data import Dataset
from torchvision import transforms as T

from humanssl.data.reid import ReidImages
from humanssl.data.reid_transforms import ReidTransformConfig, reid_train_transform

VIEW_ERASING_AREA = 1 / 3


def ssl_view_transform(cfg: ReidTransformConfig) -> T.Compose:
    steps = list(reid_train_transform(replace(cfg, erasing_prob=0.0)).transforms)
    if cfg.erasing_prob > 0:
        steps.append(RandomErasing(probability=cfg.erasing_prob, mode=cfg.erasing_mode, max_count=1,
                                   min_area=VIEW_ERASING_AREA, max_area=VIEW_ERASING_AREA, device="cpu"))
    return T.Compose(steps)


class ReidImagesWithViews(Dataset):
    """ReidImages' sample plus "views": [view 1, view 2], both from the same decoded image."""

    def __init__(self, items: Sequence, transform: Callable, view_transform: Callable, num_views: int = 2):
        self.images = ReidImages(items, None)
        self.transform, self.view_transform, self.num_views = transform, view_transform, num_views

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        sample = self.images[index]
        img = sample["image"]
        sample["image"] = self.transform(img)
        sample["views"] = [self.view_transform(img) for _ in range(self.num_views)]
        return sample
