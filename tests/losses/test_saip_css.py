"""SAIP's CSS loss: BCE of the reference-patch logits against the nearest-down-sampled paste mask."""

import math

import pytest
import torch

from humanssl.losses.saip_css import css_loss


def test_zero_logits_cost_log_two():
    mask = torch.zeros(3, 224, 224)
    mask[:, 10:138, 20:84] = 1
    assert css_loss(torch.zeros(3, 14, 14), mask).item() == pytest.approx(math.log(2.0))


def test_value_worked_out_by_hand():
    # 4x4 mask whose top-left 2x2 is on -> 2x2 target [[1, 0], [0, 0]]
    mask = torch.zeros(1, 4, 4)
    mask[0, :2, :2] = 1
    logits = torch.tensor([[[2.0, -1.0], [0.5, 0.0]]])

    def softplus(x):
        return math.log1p(math.exp(x))

    # BCE-with-logits: softplus(-x) for a 1 target, softplus(x) for a 0 target
    expected = (softplus(-2.0) + softplus(-1.0) + softplus(0.5) + softplus(0.0)) / 4
    assert css_loss(logits, mask).item() == pytest.approx(expected, rel=1e-6)


def test_nearest_down_sampling_reads_the_first_pixel_of_each_cell():
    # the official nearest resize 224 -> 14 reads pixel 16 i: a patch covering rows 8..23 is on
    # in cell row 1 only (pixel 16), not in row 0 (pixel 0)
    mask = torch.zeros(1, 224, 224)
    mask[0, 8:24, 0:16] = 1
    logits = torch.full((1, 14, 14), -30.0)
    logits[0, 1, 0] = 30.0  # confident and right only if the target is cell (1, 0)
    assert css_loss(logits, mask).item() < 1e-10


def test_gradients_reach_the_logits_only():
    logits = torch.randn(2, 3, 3, requires_grad=True)
    mask = torch.rand(2, 6, 6).round().requires_grad_(True)
    css_loss(logits, mask).backward()
    assert logits.grad.abs().sum() > 0 and mask.grad is None


def test_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="expected logits"):
        css_loss(torch.zeros(2, 1, 3, 3), torch.zeros(2, 6, 6))
