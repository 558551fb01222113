"""Protocol details of the ranking metrics: junk, distractors, cameras, ties, errors, invariants.

The oracle is a per-query loop written from the protocol's definition (kept separate from the
vectorised code on purpose); hand-worked cases pin the conventions down.
"""

import numpy as np
import pytest
import torch

import humanssl.eval.reid as reid
from humanssl.errors import UserError
from humanssl.eval.reid import evaluate, evaluate_features


def protocol_loop(dist, qp, gp, qc, gc, max_rank, use_cameras=True, junk_pid=-1):
    """(cmc, mAP, mINP, valid, skipped) by the definition, one query at a time."""
    cmc_sum, aps, inps, valid, skipped = np.zeros(max_rank), [], [], 0, 0
    for i in range(len(qp)):
        order = sorted(range(len(gp)), key=lambda j: (dist[i][j], j))
        kept = [j for j in order
                if not (junk_pid is not None and gp[j] == junk_pid)
                and not (use_cameras and gp[j] == qp[i] and gc[j] == qc[i])]
        hits = [gp[j] == qp[i] for j in kept]
        if not any(hits):
            skipped += 1
            continue
        valid += 1
        ranks = [r for r, h in enumerate(hits, start=1) if h]
        cmc_sum[ranks[0] - 1:] += 1
        aps.append(np.mean([(n + 1) / r for n, r in enumerate(ranks)]))
        inps.append(len(ranks) / ranks[-1])
    return cmc_sum / valid, float(np.mean(aps)), float(np.mean(inps)), valid, skipped


def assert_same(r, ref, max_rank):
    cmc, mAP, mINP, valid, skipped = ref
    assert (r.num_valid_queries, r.num_skipped_queries) == (valid, skipped)
    np.testing.assert_allclose(r.cmc.numpy(), cmc[:max_rank], atol=1e-12)
    assert r.mAP == pytest.approx(mAP, abs=1e-12)
    assert r.mINP == pytest.approx(mINP, abs=1e-12)


def random_problem(seed, nq=23, ng=61, ids=7, cams=3):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, ids, nq), rng.integers(0, ids, ng),
            rng.integers(0, cams, nq), rng.integers(0, cams, ng), rng)


# ------------------------------------------------------------------ hand-worked conventions


def test_tied_wrong_entry_later_in_gallery_order_ranks_after_the_match():
    # all distances equal: the gallery order [pid5, pid7, pid5] is the ranking
    r = evaluate(torch.zeros(1, 3), [5], [5, 7, 5], [0], [1, 1, 1], max_rank=3)
    assert r.cmc.tolist() == [1.0, 1.0, 1.0]
    assert r.mAP == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert r.mINP == pytest.approx(2 / 3)


def test_tie_only_between_correct_entries_does_not_matter():
    # two matches at the same distance, the wrong entry strictly between others
    dist = torch.tensor([[0.5, 0.5, 0.2, 0.9]])
    r = evaluate(dist, [3], [3, 3, 8, 8], [0], [1, 2, 1, 1], max_rank=4)
    # ranking: pid8 (0.2), pid3, pid3, pid8 -> matches at ranks 2 and 3
    assert r.mAP == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert r.cmc.tolist() == [0.0, 1.0, 1.0, 1.0]


def test_junk_pid_minus_one_is_removed_from_every_ranking():
    # closest entry is junk (-1); then pid 2 (wrong), then the match
    dist = torch.tensor([[0.1, 0.2, 0.3]])
    r = evaluate(dist, [1], [-1, 2, 1], [0], [1, 1, 1], max_rank=2)
    assert r.cmc.tolist() == [0.0, 1.0] and r.mAP == pytest.approx(1 / 2)
    # junk_pid=None: -1 is an ordinary wrong identity and pushes the match to rank 3
    r = evaluate(dist, [1], [-1, 2, 1], [0], [1, 1, 1], max_rank=3, junk_pid=None)
    assert r.cmc.tolist() == [0.0, 0.0, 1.0] and r.mAP == pytest.approx(1 / 3)


def test_distractor_pid_zero_is_an_ordinary_identity():
    dist = torch.tensor([[0.1, 0.2], [0.3, 0.4]])
    # query pid 1: the distractor (pid 0) outranks its match; query pid 0 (MSMT17 has a real
    # identity 0) matches the gallery's pid 0 at rank 1
    r = evaluate(dist, [1, 0], [0, 1], [0, 0], [1, 1], max_rank=2)
    assert r.num_valid_queries == 2
    assert r.mAP == pytest.approx((1 / 2 + 1) / 2)
    assert r.cmc.tolist() == [0.5, 1.0]


def test_same_camera_rule_and_no_camera_mode():
    dist = torch.tensor([[0.1, 0.2, 0.3]])
    gp, gc = [4, 9, 4], [0, 0, 1]
    # query pid 4 seen by camera 0: the same-camera match is removed, the other is at rank 2
    r = evaluate(dist, [4], gp, [0], gc, max_rank=2)
    assert r.mAP == pytest.approx(1 / 2) and r.mINP == pytest.approx(1 / 2)
    # VehicleID style: no camera rule, camera ids may be omitted
    r = evaluate(dist, [4], gp, max_rank=3, use_cameras=False)
    assert r.mAP == pytest.approx((1 / 1 + 2 / 3) / 2) and r.cmc.tolist() == [1.0, 1.0, 1.0]
    assert r.mINP == pytest.approx(2 / 3)


def test_all_junk_gallery_and_no_valid_query_raise_clear_errors():
    with pytest.raises(UserError, match="gallery is empty"):
        evaluate(torch.rand(2, 3), [1, 2], [-1, -1, -1], [0, 0], [1, 1, 1])
    # every match is seen by the query's own camera
    with pytest.raises(UserError, match="no query has a correct match"):
        evaluate(torch.rand(2, 3), [1, 2], [1, 2, 5], [0, 1], [0, 1, 1])


def test_user_mistakes_name_the_argument():
    d = torch.rand(3, 4)
    with pytest.raises(UserError, match="g_pids"):
        evaluate(d, [1, 2, 3], [1, 2, 3], [0, 0, 0], [1, 1, 1, 1])
    with pytest.raises(UserError, match="q_camids"):
        evaluate(d, [1, 2, 3], [1, 2, 3, 4], [0, 0], [1, 1, 1, 1])
    with pytest.raises(UserError, match="camera ids are needed"):
        evaluate(d, [1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(UserError, match="2-D"):
        evaluate(torch.rand(3), [1, 2, 3], [1], [0, 0, 0], [1])
    with pytest.raises(UserError, match="NaN"):
        evaluate(torch.tensor([[0.1, float("nan")]]), [1], [1, 2], [0], [1, 1])
    with pytest.raises(UserError, match="dimension"):
        evaluate_features(torch.rand(3, 5), torch.rand(4, 6), [1, 2, 3], [1, 2, 3, 4], [0] * 3, [1] * 4)
    with pytest.raises(UserError, match="metric"):
        evaluate_features(torch.rand(3, 5), torch.rand(4, 5), [1, 2, 3], [1, 2, 3, 4], [0] * 3, [1] * 4,
                          metric="manhattan")


# ------------------------------------------------------------------ against the definition


@pytest.mark.parametrize("use_cameras,junk_pid", [(True, -1), (False, -1), (True, None)])
def test_continuous_distances_match_the_definition(use_cameras, junk_pid):
    qp, gp, qc, gc, rng = random_problem(3)
    gp[[4, 17, 30]] = -1  # some junk
    dist = rng.random((len(qp), len(gp)))
    ref = protocol_loop(dist, qp, gp, qc, gc, 20, use_cameras, junk_pid)
    for chunk in (None, 1, 5):
        r = evaluate(torch.from_numpy(dist), qp, gp, qc, gc, max_rank=20, chunk=chunk,
                     use_cameras=use_cameras, junk_pid=junk_pid)
        assert_same(r, ref, 20)


def test_ties_are_counted_one_by_one_only_where_they_occur(monkeypatch):
    qp, gp, qc, gc, rng = random_problem(4)
    dist = rng.random((len(qp), len(gp))).astype(np.float32)
    # copy a correct entry's distance onto a wrong entry in rows 2 and 9, before and after it
    for row in (2, 9):
        match = [j for j in range(len(gp)) if gp[j] == qp[row] and gc[j] != qc[row]]
        wrong = [j for j in range(len(gp)) if gp[j] != qp[row]]
        dist[row, wrong[0]] = dist[row, match[0]]
        dist[row, wrong[-1]] = dist[row, match[-1]]
    seen = []
    original = reid._tied_wrong_before

    def spy(d, b, value, *rest):
        seen.extend(value.tolist())
        return original(d, b, value, *rest)

    monkeypatch.setattr(reid, "_tied_wrong_before", spy)
    r = evaluate(torch.from_numpy(dist), qp, gp, qc, gc, max_rank=15, chunk=7)
    tied_values = {float(dist[row, j]) for row in (2, 9) for j in range(len(gp))
                   if gp[j] == qp[row] and gc[j] != qc[row]
                   and any(dist[row, w] == dist[row, j] and gp[w] != qp[row] for w in range(len(gp)))}
    assert sorted(set(seen)) == sorted(tied_values) and len(tied_values) >= 2
    assert_same(r, protocol_loop(dist, qp, gp, qc, gc, 15), 15)


def test_heavy_ties_and_infinities_match_the_definition():
    qp, gp, qc, gc, rng = random_problem(5, nq=19, ng=45)
    dist = rng.integers(0, 4, (19, 45)).astype(np.float64)
    dist[rng.random(dist.shape) < 0.1] = np.inf
    r = evaluate(dist, qp, gp, qc, gc, max_rank=60, chunk=6)  # max_rank > gallery: clipped
    assert len(r.cmc) == 45
    assert_same(r, protocol_loop(dist, qp, gp, qc, gc, 45), 45)


def test_features_path_matches_definition_with_junk_and_euclidean():
    qp, gp, qc, gc, rng = random_problem(6)
    gp[[0, 5]] = -1
    qf, gf = rng.standard_normal((len(qp), 6)), rng.standard_normal((len(gp), 6))
    dist = ((qf[:, None, :] - gf[None, :, :]) ** 2).sum(-1)
    r = evaluate_features(qf, gf, qp, gp, qc, gc, metric="euclidean", max_rank=10, chunk=4)
    cmc, mAP, mINP, valid, skipped = protocol_loop(dist, qp, gp, qc, gc, 10)
    assert (r.num_valid_queries, r.num_skipped_queries) == (valid, skipped)
    assert r.mAP == pytest.approx(mAP, abs=1e-9) and r.mINP == pytest.approx(mINP, abs=1e-9)
    np.testing.assert_allclose(r.cmc.numpy(), cmc, atol=1e-12)


# ------------------------------------------------------------------ invariants


def test_perfect_distances_give_all_ones_with_several_matches_and_cameras():
    qp, gp, qc, gc, rng = random_problem(7, nq=12, ng=50)
    dist = np.where(qp[:, None] == gp[None, :], rng.random((12, 50)) * 0.5, 1 + rng.random((12, 50)))
    r = evaluate(dist, qp, gp, qc, gc, max_rank=10)
    assert r.mAP == pytest.approx(1.0) and r.mINP == pytest.approx(1.0)
    assert r.cmc.tolist() == [1.0] * 10


def test_positive_scaling_and_gallery_permutation_change_nothing():
    qp, gp, qc, gc, rng = random_problem(8)
    dist = torch.from_numpy(rng.random((len(qp), len(gp))))
    a = evaluate(dist, qp, gp, qc, gc, max_rank=10)
    b = evaluate(dist * 7.5, qp, gp, qc, gc, max_rank=10)
    perm = rng.permutation(len(gp))
    c = evaluate(dist[:, perm], qp, gp[perm], qc, gc[perm], max_rank=10, chunk=3)
    for other in (b, c):
        assert other.mAP == pytest.approx(a.mAP, abs=1e-12)
        assert other.mINP == pytest.approx(a.mINP, abs=1e-12)
        assert torch.equal(other.cmc, a.cmc)


def test_reversing_a_ranking_lowers_map():
    qp, gp, qc, gc, rng = random_problem(9)
    good = np.where(qp[:, None] == gp[None, :], 0.0, 1.0) + 0.1 * rng.random((len(qp), len(gp)))
    assert evaluate(good, qp, gp, qc, gc).mAP > evaluate(-good, qp, gp, qc, gc).mAP


def test_pairwise_distance_matches_its_definitions():
    g = torch.Generator().manual_seed(10)
    x, y = torch.randn(5, 3, generator=g), torch.randn(7, 3, generator=g)
    np.testing.assert_allclose(reid.pairwise_distance(x, y, "euclidean").numpy(), torch.cdist(x, y).pow(2).numpy(),
                               atol=1e-5, rtol=0)
    cos = torch.nn.functional.cosine_similarity(x[:, None, :], y[None, :, :], dim=2)
    np.testing.assert_allclose(reid.pairwise_distance(x, y, "cosine").numpy(), (1 - cos).numpy(), atol=1e-6, rtol=0)
