import numpy as np
import pytest
import torch

from humanssl.errors import UserError
from humanssl.losses.supcon import supcon_loss
from tests.fixtures import conformance, needs_fixture


def loop_supcon(a, b, la, lb, t=1.0):
    total = 0.0
    for i in range(len(a)):
        logits = [float(a[i] @ b[j]) / t for j in range(len(b))]
        lse = np.log(np.sum(np.exp(np.array(logits) - max(logits)))) + max(logits)
        pos = [logits[j] - lse for j in range(len(b)) if lb[j] == la[i]]
        total += sum(pos) / len(pos)
    return -total / len(a)


@needs_fixture("svll_reid", "stage1_losses.npz")
def test_stage1_supcon_parity():
    f = np.load(conformance("svll_reid", "stage1_losses.npz"))
    img, txt, y = (torch.from_numpy(f[k]) for k in ("image_features", "text_features", "labels"))
    torch.testing.assert_close(supcon_loss(img, txt, y), torch.tensor(f["loss_i2t"]), rtol=1e-5, atol=0)
    torch.testing.assert_close(supcon_loss(txt, img, y), torch.tensor(f["loss_t2i"]), rtol=1e-5, atol=0)


def test_matches_a_loop_with_two_label_sets_and_temperature():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 5, generator=g), torch.randn(9, 5, generator=g)
    la, lb = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([0, 0, 1, 1, 2, 2, 0, 1, 2])
    for t in (1.0, 0.5):
        expected = loop_supcon(a.double(), b.double(), la, lb, t)
        assert supcon_loss(a, b, la, lb, temperature=t).item() == pytest.approx(expected, rel=1e-5)


def test_no_normalisation_scale_matters_and_loss_falls_when_aligned():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(4, 8, generator=g)
    y = torch.arange(4)
    assert supcon_loss(a, a, y).item() > supcon_loss(3 * a, 3 * a, y).item()  # raw dot products, no cosine
    assert supcon_loss(10 * a, 10 * a, y).item() < 1e-3


def test_bad_shapes():
    with pytest.raises(UserError, match="supcon"):
        supcon_loss(torch.randn(4, 8), torch.randn(4, 7), torch.arange(4))
    with pytest.raises(UserError, match="temperature"):
        supcon_loss(torch.randn(4, 8), torch.randn(4, 8), torch.arange(4), temperature=0)
