"""Features of a labelled image set for retrieval: one batched, no-grad pass of a backbone
(or the raw pixels, the no-learning baseline), shared by `humanssl evaluate`, fine-tuning and
the kNN monitor of pretraining."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from humanssl.data.collate import collate_samples
from humanssl.errors import UserError


@torch.no_grad()
def extract_features(model: nn.Module | None, dataset, device: torch.device, batch_size: int = 128,
                     flip: bool = False, num_workers: int = 0, progress: bool = False, desc: str = "features"):
    """(N, D) float32 features on the CPU, L2-normalised; `model=None`: raw pixels, each image
    vector centred, the no-learning baseline."""
    if len(dataset) == 0:
        raise UserError(f"no images to extract {desc} from")
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_samples)
    was_training = model.training if model is not None else False
    if model is not None:
        model.eval()
    out = []
    try:
        for batch in tqdm(loader, desc=desc, disable=not progress, dynamic_ncols=True):
            images = batch["image"].to(device)
            if model is None:
                f = images.flatten(1).float()
                f = f - f.mean(1, keepdim=True)
            else:
                side = side_information(model, batch, device)
                f = _pooled(model(images, **side)).float()
                if flip:
                    f = f + _pooled(model(images.flip(3), **side)).float()
            out.append(torch.nn.functional.normalize(f, dim=1).cpu())
    finally:
        if model is not None:
            model.train(was_training)
    return torch.cat(out)


def _pooled(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def side_information(model: nn.Module, batch: dict, device) -> dict:
    """Camera and view ids for models that embed them at test time (CLIP-ReID's SIE)."""
    if not getattr(model, "uses_side_information", False):
        return {}
    return {"camid": batch["camid"].to(device), "viewid": batch["viewid"].to(device)}
