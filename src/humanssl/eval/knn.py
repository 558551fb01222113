"""Nearest-neighbour re-id evaluation of a backbone: cosine retrieval, mAP and rank-1.

Used before and after pretraining as a cheap monitor of representation quality, and with
raw pixels as the "no learning" baseline a pretrained model must beat.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from humanssl.errors import UserError
from humanssl.eval.features import extract_features
from humanssl.eval.reid import evaluate_features


def labels(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """pids and camids of a labelled set, read from its items (no image is decoded)."""
    items = getattr(dataset, "items", None)
    if items is None:
        raise UserError(f"kNN re-id needs a labelled set with .items (pid, camid), got {type(dataset).__name__}")
    return torch.tensor([int(it.pid) for it in items]), torch.tensor([int(it.camid) for it in items])


def extract(model: nn.Module | None, dataset: Dataset, device: torch.device, batch_size: int = 64,
            num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """L2-normalised features (or centred raw pixels when `model` is None), pids and camids."""
    pids, camids = labels(dataset)  # first: a set without labels is refused before any image is read
    return extract_features(model, dataset, device, batch_size, num_workers=num_workers), pids, camids


def knn_reid(model: nn.Module | None, query: Dataset, gallery: Dataset, device: torch.device,
             batch_size: int = 64) -> dict:
    """{'mAP': %, 'R1': %} of cosine retrieval; `model=None` retrieves on raw pixels."""
    qf, qp, qc = extract(model, query, device, batch_size)
    gf, gp, gc = extract(model, gallery, device, batch_size)
    result = evaluate_features(qf, gf, qp, gp, qc, gc, metric="cosine")
    return {"mAP": 100.0 * result.mAP, "R1": 100.0 * result.rank1}


class AtSemanticWeight(nn.Module):
    """A SOLIDER Swin seen through one fixed semantic weight: forward gives its pooled feature at
    that lambda, so kNN can compare checkpoints at the lambda a task uses."""

    def __init__(self, swin: nn.Module, semantic_weight: float):
        super().__init__()
        self.swin, self.semantic_weight = swin, float(semantic_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.swin.forward_stages(x, self.semantic_weight)[0]


# SOLIDER's report: lambda 0.2 (its re-id setting, appearance-leaning) and 1.0 (pure semantics).
REPORTED_SEMANTIC_WEIGHTS = (0.2, 1.0)


def knn_scores(model: nn.Module, name: str, query: Dataset, gallery: Dataset, device: torch.device,
               batch_size: int = 64) -> dict[str, dict]:
    """{name: score} for a plain backbone; {"name (lambda 0.2)": ..., "name (lambda 1.0)": ...}
    for a Swin with SOLIDER's semantic controller."""
    if not getattr(model, "has_controller", False):
        return {name: knn_reid(model, query, gallery, device, batch_size)}
    return {f"{name} (lambda {lam:.1f})": knn_reid(AtSemanticWeight(model, lam), query, gallery, device, batch_size)
            for lam in REPORTED_SEMANTIC_WEIGHTS}
