"""BYOL regression loss: the axis the cosine runs along and the pairing of views."""

import torch
import torch.nn.functional as F

from humanssl.losses.byol import regression_loss, symmetric_byol_loss


def test_cosine_along_the_strip_axis_is_one_value_per_sample_and_channel():
    torch.manual_seed(0)
    p, t = torch.randn(2, 31, 8), torch.randn(2, 31, 8)
    per = regression_loss(p, t, dim=1)
    assert per.shape == (2, 8)
    expected = 1 - (p * t).sum(1) / (p.norm(dim=1) * t.norm(dim=1))
    torch.testing.assert_close(per, expected, rtol=1e-5, atol=1e-6)
    # a positive scale on one sample's channel leaves the strip-axis cosine unchanged, but not BYOL's
    scaled = t.clone()
    scaled[0, :, 3] *= 5.0
    torch.testing.assert_close(regression_loss(p, scaled, dim=1), per)
    assert not torch.allclose(regression_loss(p, scaled, dim=-1), regression_loss(p, t, dim=-1))


def test_each_prediction_regresses_the_other_views_target_and_targets_get_no_gradient():
    torch.manual_seed(0)
    p1 = torch.randn(3, 5, 4, requires_grad=True)
    p2 = torch.randn(3, 5, 4)
    t1 = torch.randn(3, 5, 4, requires_grad=True)
    loss = symmetric_byol_loss(p1, p2, t1, p1.detach().clone(), dim=-1)
    # p1 against its own copy contributes 0; only p2 vs t1 remains
    expected = (1 - F.cosine_similarity(p2, t1, dim=-1)).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert t1.grad is None
