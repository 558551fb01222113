"""GaitSet's per-part triplet loss against the official fixture and a brute-force oracle."""

import itertools

import numpy as np
import pytest
import torch

from humanssl.losses.gait_triplet import PartTripletLoss, part_triplet_stats
from tests.fixtures import conformance, needs_fixture

FIX = ("gaitset", "gait_triplet.npz")


@needs_fixture(*FIX)
def test_per_part_statistics_and_losses_match_official():
    ref = np.load(conformance(*FIX))
    feature, label = torch.from_numpy(ref["feature"]), torch.from_numpy(ref["label"])
    stats = part_triplet_stats(feature, label, float(ref["margin"]))
    for name in stats._fields:
        np.testing.assert_allclose(getattr(stats, name).numpy(), ref[name], rtol=1e-5, atol=1e-6, err_msg=name)
    full = PartTripletLoss(0.2, "full")(feature, label)
    hard = PartTripletLoss(0.2, "hard")(feature, label[0])  # one label row is shared by all parts
    np.testing.assert_allclose(full.item(), ref["loss_full"], rtol=1e-5)
    np.testing.assert_allclose(hard.item(), ref["loss_hard"], rtol=1e-5)


def brute_force(feature: np.ndarray, label: np.ndarray, margin: float):
    full, hard = [], []
    for part in feature.astype(np.float64):
        d = np.sqrt(((part[:, None] - part[None]) ** 2).sum(-1))
        terms, hards = [], []
        for a in range(len(label)):
            pos = [j for j in range(len(label)) if label[j] == label[a]]
            neg = [k for k in range(len(label)) if label[k] != label[a]]
            terms += [max(margin + d[a, j] - d[a, k], 0.0) for j, k in itertools.product(pos, neg)]
            hards.append(max(margin + max(d[a, pos]) - min(d[a, neg]), 0.0))
        nonzero = [t for t in terms if t != 0]
        full.append(sum(nonzero) / len(nonzero) if nonzero else 0.0)
        hard.append(np.mean(hards))
    return np.array(full), np.array(hard)


def test_unbalanced_batch_equals_brute_force():
    rng = np.random.default_rng(0)
    feature = rng.normal(size=(3, 7, 4)).astype(np.float32)
    label = np.array([0, 0, 0, 1, 2, 2, 1])  # 3, 2 and 2 samples per identity
    stats = part_triplet_stats(torch.from_numpy(feature), torch.from_numpy(label), 0.3)
    full, hard = brute_force(feature, label, 0.3)
    np.testing.assert_allclose(stats.full_loss_metric_mean.numpy(), full, rtol=1e-5)
    np.testing.assert_allclose(stats.hard_loss_metric_mean.numpy(), hard, rtol=1e-5)


def test_well_separated_identities_give_zero_loss_and_gradients_are_finite():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    feature = (centres.repeat_interleave(3, 0) + 0.01 * torch.randn(6, 2)).unsqueeze(0).repeat(2, 1, 1)
    label = torch.tensor([0, 0, 0, 1, 1, 1])
    stats = part_triplet_stats(feature, label)
    assert torch.all(stats.full_loss_num == 0) and torch.all(stats.full_loss_metric_mean == 0)

    mixed = torch.randn(2, 6, 3, requires_grad=True)
    loss = PartTripletLoss()(mixed, label)
    loss.backward()
    assert loss > 0 and torch.isfinite(mixed.grad).all()


def test_bad_mode_and_shapes_are_rejected():
    with pytest.raises(ValueError):
        PartTripletLoss(hard_or_full="semi")
    with pytest.raises(ValueError):
        part_triplet_stats(torch.zeros(2, 4, 3), torch.zeros(5))
