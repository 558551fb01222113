"""Ranking metrics: hand-worked cases, a loop reference, invariants and the official evaluator's numbers."""

import numpy as np
import pytest
import torch

from humanssl.errors import UserError
from humanssl.eval.reid import evaluate, evaluate_features
from tests.fixtures import conformance, needs_fixture

FIXTURE = ("svll_reid", "reid_eval_synthetic.npz")


def loop_reference(dist, qp, gp, qc, gc, max_rank):
    """Straightforward per-query evaluation written independently of the vectorised code."""
    cmc_sum = np.zeros(max_rank)
    aps, inps, valid = [], [], 0
    for i in range(len(qp)):
        order = sorted(range(len(gp)), key=lambda j: (dist[i][j], j))  # ties: gallery order
        kept = [j for j in order if not (gp[j] == qp[i] and gc[j] == qc[i])]
        hits = [gp[j] == qp[i] for j in kept]
        if not any(hits):
            continue
        valid += 1
        first = hits.index(True)
        cmc_sum[first:] += 1
        found, precisions = 0, []
        for r, h in enumerate(hits, start=1):
            if h:
                found += 1
                precisions.append(found / r)
        aps.append(sum(precisions) / found)
        last = max(r for r, h in enumerate(hits, start=1) if h)
        inps.append(found / last)
    return cmc_sum / valid, float(np.mean(aps)), float(np.mean(inps)), valid


def test_hand_worked_case():
    # one query (pid 1, cam 1); gallery in distance order: [pid1 cam1 (removed), pid2, pid1 cam2, pid3, pid1 cam3]
    dist = torch.tensor([[0.0, 0.1, 0.2, 0.3, 0.4]])
    r = evaluate(dist, [1], [1, 2, 1, 3, 1], [1], [1, 2, 2, 2, 3], max_rank=4)
    # kept ranking: pid2, pid1, pid3, pid1 -> matches at ranks 2 and 4
    assert r.cmc.tolist() == [0.0, 1.0, 1.0, 1.0]
    assert r.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert r.mINP == pytest.approx(2 / 4)


def test_ties_keep_gallery_order():
    dist = torch.zeros(1, 3)
    r = evaluate(dist, [5], [7, 5, 5], [0], [1, 1, 1], max_rank=3)
    assert r.cmc.tolist() == [0.0, 1.0, 1.0]
    assert r.mAP == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_query_without_valid_match_is_skipped_and_counted():
    dist = torch.rand(2, 3)
    # query 0: its only same-pid gallery item has the same camera -> skipped
    r = evaluate(dist, [1, 2], [1, 2, 3], [0, 0], [0, 1, 1], max_rank=3)
    assert r.num_skipped_queries == 1 and r.num_valid_queries == 1
    with pytest.raises(UserError, match="no query has a correct match"):
        evaluate(dist[:1], [1], [1, 2, 3], [0], [0, 1, 1])


def test_perfect_distances_give_map_one():
    g = torch.arange(20) % 5
    q = torch.arange(5)
    dist = (q[:, None] != g[None, :]).float()
    r = evaluate(dist, q, g, torch.zeros(5), torch.ones(20), max_rank=10)
    assert r.mAP == pytest.approx(1.0) and r.rank1 == 1.0 and r.mINP == pytest.approx(1.0)


def test_matches_loop_reference_with_ties_and_junk_and_chunking():
    rng = np.random.default_rng(0)
    qp, gp = rng.integers(0, 6, 17), rng.integers(0, 6, 40)
    qc, gc = rng.integers(0, 3, 17), rng.integers(0, 3, 40)
    dist = rng.integers(0, 5, (17, 40)).astype(np.float32)  # many ties
    cmc, mAP, mINP, valid = loop_reference(dist, qp, gp, qc, gc, 10)
    r = evaluate(torch.from_numpy(dist), qp, gp, qc, gc, max_rank=10, chunk=4)
    assert r.num_valid_queries == valid
    np.testing.assert_allclose(r.cmc.numpy(), cmc, atol=1e-12)
    assert r.mAP == pytest.approx(mAP, abs=1e-12) and r.mINP == pytest.approx(mINP, abs=1e-12)


def test_permuting_the_gallery_changes_nothing_without_ties():
    rng = np.random.default_rng(1)
    dist = torch.from_numpy(rng.random((9, 30)))
    qp, gp = rng.integers(0, 4, 9), rng.integers(0, 4, 30)
    qc, gc = rng.integers(0, 2, 9), rng.integers(0, 2, 30)
    perm = rng.permutation(30)
    a = evaluate(dist, qp, gp, qc, gc, max_rank=10)
    b = evaluate(dist[:, perm], qp, gp[perm], qc, gc[perm], max_rank=10)
    assert a.mAP == pytest.approx(b.mAP) and torch.allclose(a.cmc, b.cmc)


def test_features_path_equals_distance_path():
    rng = np.random.default_rng(2)
    qf, gf = rng.standard_normal((7, 8)), rng.standard_normal((25, 8))
    qp, gp = rng.integers(0, 3, 7), rng.integers(0, 3, 25)
    qc, gc = rng.integers(0, 2, 7), rng.integers(0, 2, 25)
    qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    a = evaluate(torch.from_numpy(1 - qn @ gn.T), qp, gp, qc, gc, max_rank=5)
    b = evaluate_features(qf, gf, qp, gp, qc, gc, metric="cosine", max_rank=5, chunk=3)
    assert a.mAP == pytest.approx(b.mAP, abs=1e-6)


@needs_fixture(*FIXTURE)
def test_equals_official_evaluator_on_fixture():
    d = np.load(conformance(*FIXTURE))
    r = evaluate(torch.from_numpy(d["distmat"]), d["q_pids"], d["g_pids"], d["q_camids"], d["g_camids"], max_rank=50)
    np.testing.assert_allclose(r.cmc.numpy(), d["cmc"], atol=1e-6)
    assert r.mAP == pytest.approx(float(d["mAP"]), abs=1e-6)
    # the official evaluator L2-normalises, then ranks by squared Euclidean distance
    qn = torch.nn.functional.normalize(torch.from_numpy(d["query_feat"]), dim=1)
    gn = torch.nn.functional.normalize(torch.from_numpy(d["gallery_feat"]), dim=1)
    f = evaluate_features(qn, gn, d["q_pids"], d["g_pids"], d["q_camids"],
                          d["g_camids"], metric="euclidean", max_rank=50)
    assert f.mAP == pytest.approx(float(d["mAP"]), abs=1e-6)
