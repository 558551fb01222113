"""Batch-hard triplet loss against a case worked out by hand."""

import math

import pytest
import torch

from humanssl.errors import UserError
from humanssl.losses.triplet import TripletLoss, batch_hard_triplet

# Points on a line (second coordinate 0), ids [0, 0, 1, 1]: 0, 1 | 3, 4.5
# hardest positive / negative per anchor: (1, 3), (1, 2), (1.5, 2), (1.5, 3.5)
FEATS = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [4.5, 0.0]])
LABELS = torch.tensor([0, 0, 1, 1])
GAPS = [1 - 3, 1 - 2, 1.5 - 2, 1.5 - 3.5]  # d_ap - d_an


def test_soft_margin_by_hand():
    expected = sum(math.log1p(math.exp(g)) for g in GAPS) / 4
    assert batch_hard_triplet(FEATS, LABELS) == pytest.approx(expected, abs=1e-5)
    assert TripletLoss()(FEATS, LABELS) == pytest.approx(expected, abs=1e-5)


def test_hard_margin_by_hand():
    # margin 1.2: max(0, gap + 1.2) = 0, 0.2, 0.7, 0
    assert batch_hard_triplet(FEATS, LABELS, margin=1.2) == pytest.approx(0.9 / 4, abs=1e-5)
    # margin 0.3: every anchor already satisfied
    assert batch_hard_triplet(FEATS, LABELS, margin=0.3) == 0.0


def test_anchors_without_positive_are_left_out():
    feats = torch.cat([FEATS, torch.tensor([[10.0, 0.0]])])
    labels = torch.cat([LABELS, torch.tensor([7])])  # a lone id: no positive for it
    # the lone point is far from everyone, so the other anchors' negatives do not change
    expected = sum(math.log1p(math.exp(g)) for g in GAPS) / 4
    assert batch_hard_triplet(feats, labels) == pytest.approx(expected, abs=1e-5)


def test_duplicate_images_keep_gradients_finite():
    # a PK batch can hold one image twice (ids with fewer than K images): distance 0
    feats = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0], [2.0, 0.0]], requires_grad=True)
    loss = batch_hard_triplet(feats, torch.tensor([0, 0, 1, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(feats.grad).all()


def test_loss_pulls_same_ids_together():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(8, 4, generator=g).requires_grad_(True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    opt = torch.optim.SGD([feats], lr=0.5)
    first = batch_hard_triplet(feats, labels).item()
    for _ in range(50):
        opt.zero_grad()
        batch_hard_triplet(feats, labels).backward()
        opt.step()
    assert batch_hard_triplet(feats, labels).item() < 0.5 * first


def test_bad_arguments():
    with pytest.raises(UserError, match="margin"):
        batch_hard_triplet(FEATS, LABELS, margin=-1.0)
    with pytest.raises(UserError, match="labels"):
        batch_hard_triplet(FEATS, LABELS[:3])
