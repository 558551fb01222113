"""SAIP's CSR loss: per-patch-normalised pixel loss on the removed patches of the rescaled view."""

import math

import numpy as np
import pytest
import torch

from humanssl.losses.saip_csr import csr_loss, patchify
from humanssl.methods.saip import rescale
from humanssl.models.saip_vit import saip_vit_mini
from tests.fixtures import conformance, needs_fixture

IO = ("saip", "mini_saipvit_io.npz")


def test_patchify_orders_rows_then_columns_then_channels():
    c, h, w = 3, 4, 6
    img = torch.arange(c * h * w, dtype=torch.float32).view(1, c, h, w)
    out = patchify(img, (2, 3))
    assert out.shape == (1, 2 * 2, 2 * 3 * 3)
    for patch in range(4):
        gy, gx = divmod(patch, 2)
        for py in range(2):
            for px in range(3):
                for ch in range(3):
                    assert out[0, patch, (py * 3 + px) * 3 + ch] == img[0, ch, gy * 2 + py, gx * 3 + px]


def test_patchify_drops_a_border_narrower_than_a_patch():
    assert patchify(torch.zeros(2, 3, 112, 56), (16, 16)).shape == (2, 7 * 3, 768)


def test_raw_pixel_loss_worked_out_by_hand():
    # two 1x1-channel patches side by side: values 1 and 3; prediction 0; only patch 1 scored
    img = torch.tensor([[[[1.0, 1.0, 3.0, 3.0]]]])
    pred = torch.zeros(1, 2, 2)
    assert csr_loss(pred, img, torch.tensor([[0.0, 1.0]]), (1, 2), norm_pix=False).item() == pytest.approx(9.0)
    assert csr_loss(pred, img, torch.tensor([[1.0, 1.0]]), (1, 2), norm_pix=False).item() == pytest.approx(5.0)


def test_per_patch_normalisation_worked_out_by_hand():
    # patch (0, 2): mean 1, unbiased variance 2 -> target (-1, 1) / sqrt(2 + 1e-6); pred 0 -> loss 1/2
    img = torch.tensor([[[[0.0, 2.0]]]])
    loss = csr_loss(torch.zeros(1, 1, 2), img, torch.ones(1, 1), (1, 2), norm_pix=True)
    assert loss.item() == pytest.approx(1 / (2 + 1e-6), rel=1e-6)
    # a flat patch normalises to 0, not NaN
    flat = csr_loss(torch.zeros(1, 1, 2), torch.full((1, 1, 1, 2), 5.0), torch.ones(1, 1), (1, 2))
    assert flat.item() == pytest.approx(0.0)


def test_gradients_reach_the_scored_predictions_only():
    img = torch.randn(2, 3, 32, 16, requires_grad=True)
    pred = torch.randn(2, 2, 16 * 16 * 3, requires_grad=True)
    mask = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    csr_loss(pred, img, mask, (16, 16)).backward()
    assert img.grad is None
    assert pred.grad[0, 1].abs().sum() == 0 and pred.grad[1, 0].abs().sum() == 0
    assert pred.grad[0, 0].abs().sum() > 0 and pred.grad[1, 1].abs().sum() > 0


def test_nothing_to_score_gives_zero():
    assert csr_loss(torch.ones(1, 2, 3), torch.zeros(1, 3, 1, 2), torch.zeros(1, 2), (1, 1)).item() == 0.0


@needs_fixture(*IO)
def test_official_csr_view_and_loss_mask():
    """Global view x1.25 nearest is the fixture's 320x160 input; with the recorded noise the
    up-sampled anchor mask removes 146 patches while 150 were not encoded: 4 unseen, unscored."""
    with np.load(conformance(*IO)) as z:
        io = {k: torch.from_numpy(z[k]) for k in z.files}
    view = rescale(io["input_256x128"][:1], 1.25)
    assert torch.equal(view, io["input_320x160"])
    model = saip_vit_mini().eval()
    with torch.no_grad():
        out = model.forward_features(view, 0.75, with_anchor_mask=True, get_intermediate_only=True,
                                     noise=io["masked__anchor_noise"], ids_shuffle=io["masked__ids_shuffle"])
    removed = out.mask[1]
    torch.testing.assert_close(removed, io["masked__removed_mask"])
    encoded = out.outs[0].shape[1] - 1
    assert encoded == 50 and int(removed.sum()) == 146 and 200 - encoded - int(removed.sum()) == 4
    # a prediction equal to the normalised target on the scored patches gives 0, whatever the rest
    target = patchify(view, (16, 16))
    target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    pred = torch.where(removed[..., None] > 0, target, torch.full_like(target, 7.0))
    assert csr_loss(pred, view, removed, (16, 16)).item() == pytest.approx(0.0, abs=1e-10)
    assert csr_loss(pred, view, torch.ones_like(removed), (16, 16)).item() > 1.0
    assert not math.isnan(csr_loss(pred, view, removed, (16, 16)).item())
