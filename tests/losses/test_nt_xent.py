import numpy as np
import pytest
import torch
import torch.nn.functional as F

from humanssl.errors import UserError
from humanssl.losses.nt_xent import nt_xent_loss
from humanssl.losses.supcon import supcon_loss
from humanssl.losses.triplet import batch_hard_triplet
from tests.fixtures import conformance, needs_fixture


def loop_nt_xent(z1, z2, tau):
    z1, z2 = F.normalize(z1.double(), dim=1), F.normalize(z2.double(), dim=1)
    n, total = len(z1), 0.0
    for q, k in ((z1, z2), (z2, z1)):
        for i in range(n):
            pos = float(q[i] @ k[i]) / tau
            others = [float(q[i] @ k[j]) / tau for j in range(n)] + \
                     [float(q[i] @ q[j]) / tau for j in range(n) if j != i]
            total += -(pos - np.log(np.sum(np.exp(others))))
    return total / (2 * n)


@needs_fixture("svll_reid", "stage1_losses.npz")
def test_stage1_simclr_and_total_parity():
    f = np.load(conformance("svll_reid", "stage1_losses.npz"))
    t = {k: torch.from_numpy(f[k]) for k in f.files}
    ssl = nt_xent_loss(t["text_aug1_embed"], t["text_aug2_embed"], tau=0.1)
    torch.testing.assert_close(ssl, t["simclr_loss_tau01"], rtol=1e-5, atol=0)
    total = supcon_loss(t["image_features"], t["text_features"], t["labels"]) \
        + supcon_loss(t["text_features"], t["image_features"], t["labels"]) + 0.8 * ssl
    torch.testing.assert_close(total, t["stage1_total_ssl_w08"], rtol=1e-5, atol=0)


@needs_fixture("svll_reid", "stage2_losses.npz")
def test_stage2_terms_from_the_pieces():
    f = np.load(conformance("svll_reid", "stage2_losses.npz"))
    t = {k: torch.from_numpy(f[k]) for k in f.files}
    y = t["target"]
    w_id, w_tri, w_i2t, w_ssl, margin = f["weights"].tolist()
    torch.testing.assert_close(t["img_feature_proj"] @ t["text_features_all_ids"].T, t["i2t_logits"],
                               rtol=1e-4, atol=1e-4)
    id_loss = sum(F.cross_entropy(s, y, label_smoothing=0.1) for s in (t["cls_score"], t["cls_score_proj"]))
    tri = sum(batch_hard_triplet(x, y, margin) for x in (t["img_feature_last"], t["img_feature"],
                                                         t["img_feature_proj"]))
    i2t = F.cross_entropy(t["i2t_logits"], y, label_smoothing=0.1)
    ssl = nt_xent_loss(t["aug1_embed"], t["aug2_embed"], tau=0.1)
    for got, key in ((id_loss, "id_loss_sum"), (tri, "tri_loss_sum"), (i2t, "i2t_loss"), (ssl, "simclr_loss")):
        torch.testing.assert_close(got, t[key], rtol=1e-5, atol=0, msg=key)
    base = w_id * id_loss + w_tri * tri + w_i2t * i2t
    torch.testing.assert_close(base, t["total_loss_without_ssl"], rtol=1e-5, atol=0)
    torch.testing.assert_close(base + w_ssl * ssl, t["total_loss"], rtol=1e-5, atol=0)


def test_matches_a_loop_and_is_symmetric():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    for tau in (0.1, 0.5):
        assert nt_xent_loss(z1, z2, tau).item() == pytest.approx(loop_nt_xent(z1, z2, tau), rel=1e-5)
    torch.testing.assert_close(nt_xent_loss(z1, z2), nt_xent_loss(z2, z1))
    torch.testing.assert_close(nt_xent_loss(z1, z2), nt_xent_loss(3 * z1, 0.5 * z2))  # cosine only


def test_falls_when_views_agree():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(6, 16, generator=g)
    assert nt_xent_loss(z, z + 0.01 * torch.randn(6, 16, generator=g)) < nt_xent_loss(z, torch.randn(6, 16, generator=g))


def test_bad_shapes():
    with pytest.raises(UserError, match="nt-xent"):
        nt_xent_loss(torch.randn(4, 8), torch.randn(5, 8))
    with pytest.raises(UserError, match="tau"):
        nt_xent_loss(torch.randn(4, 8), torch.randn(4, 8), tau=0)
