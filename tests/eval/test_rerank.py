"""k-reciprocal re-ranking against a plain-numpy implementation written from the paper's
definitions (Zhong et al., CVPR 2017) with the released code's conventions, one item at a time."""

import numpy as np
import pytest
import torch

from humanssl.errors import UserError
from humanssl.eval.reid import evaluate
from humanssl.eval.rerank import re_rank


def k_reciprocal_numpy(qf, gf, k1, k2, lam):
    """Dense, loop-based reference. Distances in float64 from the same float32 features."""
    x = np.concatenate([qf, gf]).astype(np.float64)
    n, nq = len(x), len(qf)
    sq_dist = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    orig = sq_dist / sq_dist.max(axis=1, keepdims=True)       # each row over its largest entry
    ranking = [list(np.argsort(orig[i], kind="stable")) for i in range(n)]

    def nearest(i, k):
        return ranking[i][:k + 1]

    def reciprocal(i, k):
        return [j for j in nearest(i, k) if i in nearest(j, k)]

    half = int(np.around(k1 / 2))
    v = np.zeros((n, n))
    for i in range(n):
        r = reciprocal(i, k1)
        expanded = set(r)
        for c in r:
            rc = reciprocal(c, half)
            if len(set(rc) & set(r)) > 2 / 3 * len(rc):
                expanded |= set(rc)
        idx = sorted(expanded)
        w = np.exp(-orig[i, idx])
        v[i, idx] = w / w.sum()
    if k2 > 1:
        v = np.stack([v[ranking[i][:k2]].mean(axis=0) for i in range(n)])
    final = np.zeros((nq, n - nq))
    for i in range(nq):
        for j in range(nq, n):
            shared = np.minimum(v[i], v[j]).sum()
            union = np.maximum(v[i], v[j]).sum()
            final[i, j - nq] = (1 - shared / union) * (1 - lam) + orig[i, j] * lam
    return final


def clustered(seed, ids, per_id, dim, spread):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(ids, dim, generator=g)
    labels = torch.arange(ids).repeat_interleave(per_id)
    feats = centres[labels] + spread * torch.randn(len(labels), dim, generator=g)
    return torch.nn.functional.normalize(feats, dim=1), labels


def test_equals_numpy_reference_on_a_small_random_case():
    g = torch.Generator().manual_seed(0)
    qf, gf = torch.randn(12, 8, generator=g), torch.randn(30, 8, generator=g)
    ref = k_reciprocal_numpy(qf.numpy(), gf.numpy(), k1=6, k2=3, lam=0.3)
    for chunk in (None, 5):
        out = re_rank(qf, gf, k1=6, k2=3, lambda_value=0.3, chunk=chunk)
        assert out.shape == (12, 30) and out.dtype == torch.float32
        np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)


@pytest.mark.parametrize("k1,k2,lam", [(5, 1, 0.3), (9, 4, 0.0), (20, 6, 0.3)])
def test_equals_numpy_reference_on_clustered_data(k1, k2, lam):
    # clusters make the expansion and the 2/3 rule fire (odd k1: round half to even);
    # k2 = 1 skips query expansion, lambda 0 leaves the Jaccard part alone
    feats, _ = clustered(1, ids=8, per_id=6, dim=16, spread=0.6)
    perm = torch.randperm(48, generator=torch.Generator().manual_seed(2))
    qf, gf = feats[perm[:10]], feats[perm[10:]]
    ref = k_reciprocal_numpy(qf.numpy(), gf.numpy(), k1, k2, lam)
    np.testing.assert_allclose(re_rank(qf, gf, k1, k2, lam, chunk=7).numpy(), ref, atol=1e-5)


def test_small_work_spans_give_the_same_result(monkeypatch):
    # the sparse steps walk their work in spans; many tiny spans must change nothing
    import functools

    import humanssl.eval.rerank as rr
    feats, _ = clustered(5, ids=6, per_id=5, dim=8, spread=0.5)
    qf, gf = feats[:7], feats[7:]
    whole = re_rank(qf, gf, k1=5, k2=3)
    monkeypatch.setattr(rr, "_query_expand", functools.partial(rr._query_expand, budget=9))
    pieces = re_rank(qf, gf, k1=5, k2=3, chunk=2)
    np.testing.assert_allclose(pieces.numpy(), whole.numpy(), atol=1e-6)
    np.testing.assert_allclose(whole.numpy(), k_reciprocal_numpy(qf.numpy(), gf.numpy(), 5, 3, 0.3), atol=1e-5)


def test_lambda_one_is_the_normalised_original_distance():
    g = torch.Generator().manual_seed(3)
    qf, gf = torch.randn(4, 5, generator=g), torch.randn(9, 5, generator=g)
    x = torch.cat([qf, gf]).double()
    d = torch.cdist(x, x).pow(2)
    expected = (d / d.amax(1, keepdim=True))[:4, 4:]
    np.testing.assert_allclose(re_rank(qf, gf, k1=3, k2=2, lambda_value=1.0).numpy(), expected.numpy(), atol=1e-6)


def test_re_ranking_improves_map_on_clustered_data():
    # each identity seen by two cameras with a camera-specific shift: plain distances confuse
    # neighbours across identities, shared neighbourhoods do not
    g = torch.Generator().manual_seed(4)
    ids, per_cam, dim = 30, 4, 32
    centres = torch.randn(ids, dim, generator=g)
    cam_shift = 0.6 * torch.randn(2, dim, generator=g)
    feats, pids, cams = [], [], []
    for cam in range(2):
        f = centres.repeat_interleave(per_cam, 0) + cam_shift[cam] + 0.9 * torch.randn(ids * per_cam, dim, generator=g)
        feats.append(f)
        pids.append(torch.arange(ids).repeat_interleave(per_cam))
        cams.append(torch.full((ids * per_cam,), cam))
    feats = torch.nn.functional.normalize(torch.cat(feats), dim=1)
    pids, cams = torch.cat(pids), torch.cat(cams)
    q = torch.arange(len(pids)) % per_cam == 0  # one query per identity and camera
    qf, gf = feats[q], feats[~q]
    plain = evaluate(torch.cdist(qf, gf).pow(2), pids[q], pids[~q], cams[q], cams[~q])
    rr = evaluate(re_rank(qf, gf, k1=6, k2=3), pids[q], pids[~q], cams[q], cams[~q])
    assert rr.mAP > plain.mAP + 0.1, (plain.mAP, rr.mAP)  # 0.47 -> 0.62 here


def test_user_mistakes():
    with pytest.raises(UserError, match="dimension"):
        re_rank(torch.randn(3, 4), torch.randn(5, 6))
    with pytest.raises(UserError, match="2-D"):
        re_rank(torch.randn(3), torch.randn(5, 3))
    with pytest.raises(UserError, match="lambda_value"):
        re_rank(torch.randn(3, 4), torch.randn(5, 4), lambda_value=1.5)
    with pytest.raises(UserError, match="distinct"):
        re_rank(torch.ones(3, 4), torch.ones(5, 4))
