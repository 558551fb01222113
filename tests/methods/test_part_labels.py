"""SOLIDER's part labels: batched k-means against exhaustive oracles, the foreground rule, the order."""

import itertools

import numpy as np
import pytest
import torch

from humanssl.methods.part_labels import foreground_by_norm, kmeans, part_labels


def same_partition(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return bool(np.array_equal(a[:, None] == a[None, :], b[:, None] == b[None, :]))


def brute_force_kmeans(x: np.ndarray, k: int) -> np.ndarray:
    """The assignment of least within-cluster sum of squares, over every labelling of the points."""
    n = len(x)
    labels = np.array(list(itertools.product(range(k), repeat=n)))  # (k^n, n)
    onehot = np.eye(k)[labels]  # (L, n, k)
    counts = onehot.sum(1)  # (L, k)
    sums = np.einsum("lnk,nc->lkc", onehot, x)
    # SSE = sum ||x||^2 - sum_k ||sum_k||^2 / count_k  (empty clusters contribute nothing)
    sse = (x**2).sum() - ((sums**2).sum(-1) / np.maximum(counts, 1)).sum(-1)
    sse[(counts == 0).any(1)] = np.inf  # k clusters, none empty
    return labels[sse.argmin()]


def separated_blobs(rng, n_per=(3, 2, 3), dim=5, spread=0.05):
    centres = rng.normal(size=(len(n_per), dim)) * 4
    points = np.concatenate([c + spread * rng.normal(size=(m, dim)) for c, m in zip(centres, n_per)])
    truth = np.repeat(np.arange(len(n_per)), n_per)
    perm = rng.permutation(len(points))
    return points[perm], truth[perm]


def test_kmeans_finds_the_exhaustive_optimum_on_separated_blobs():
    rng = np.random.default_rng(0)
    images = [separated_blobs(rng) for _ in range(6)]
    x = torch.tensor(np.stack([p for p, _ in images]), dtype=torch.float32)
    labels, centres = kmeans(x, 3, iters=20, restarts=3, generator=torch.Generator().manual_seed(0))
    assert labels.shape == (6, 8) and centres.shape == (6, 3, 5)
    for (points, truth), got in zip(images, labels):
        oracle = brute_force_kmeans(points, 3)
        assert same_partition(oracle, truth)  # the data really is separated
        assert same_partition(got.numpy(), oracle)


def test_kmeans_ignores_invalid_points_per_image():
    rng = np.random.default_rng(1)
    points, truth = separated_blobs(rng, n_per=(2, 3, 2))
    # pad with far-away junk that must not pull any centre
    junk = rng.normal(size=(3, 5)) * 100
    x = torch.tensor(np.concatenate([points, junk])[None], dtype=torch.float32)
    valid = torch.tensor([[True] * 7 + [False] * 3])
    labels, _ = kmeans(x, 3, valid=valid, generator=torch.Generator().manual_seed(3))
    assert same_partition(labels[0, :7].numpy(), truth)


def test_kmeans_agrees_with_scikit_learn():
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    rng = np.random.default_rng(2)
    images = [separated_blobs(rng, n_per=(10, 12, 10), dim=16) for _ in range(4)]
    x = torch.tensor(np.stack([p for p, _ in images]), dtype=torch.float32)
    labels, _ = kmeans(x, 3, generator=torch.Generator().manual_seed(0))
    for (points, _), got in zip(images, labels):
        ref = sklearn_cluster.KMeans(n_clusters=3, random_state=0, n_init=10).fit(points).labels_
        assert same_partition(got.numpy(), ref)


def test_kmeans_is_reproducible_given_the_generator_seed():
    x = torch.randn(5, 12, 4)
    a, _ = kmeans(x, 3, generator=torch.Generator().manual_seed(7))
    b, _ = kmeans(x, 3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_foreground_split_is_the_exact_one_dimensional_two_means():
    torch.manual_seed(0)
    feats = torch.randn(20, 8, 6) * torch.rand(20, 8, 1) * 3
    fg = foreground_by_norm(feats)
    norms = feats.norm(dim=-1).numpy().astype(np.float64)
    for v, got in zip(norms, fg.numpy()):
        best, best_sse = None, np.inf
        for mask in itertools.product([False, True], repeat=len(v)):
            mask = np.array(mask)
            if mask.all() or not mask.any():
                continue
            sse = ((v[mask] - v[mask].mean()) ** 2).sum() + ((v[~mask] - v[~mask].mean()) ** 2).sum()
            if sse < best_sse:
                best, best_sse = mask, sse
        if v[best].mean() < v[~best].mean():
            best = ~best  # foreground = the cluster with the larger centre
        assert np.array_equal(got, best)


def person_map(fg_rows, h=6, w=2, dim=8):
    """A (1, dim, h, w) map: rows in `fg_rows` carry strong features (norm 10), the rest weak (norm 1).
    Rows 0 / 1-2 / 3-4 point along axes 5 / 2 / 0, so cluster ids and rows do not line up."""
    axis_of_row = {0: 5, 1: 2, 2: 2, 3: 0, 4: 0, 5: 0}
    m = torch.zeros(1, dim, h, w)
    for r in range(h):
        if r in fg_rows:
            m[0, axis_of_row[r], r, :] = 10.0
        else:
            m[0, 7, r, :] = 1.0
    return m


def test_parts_are_numbered_top_to_bottom_and_background_is_zero():
    labels, keep = part_labels(person_map(fg_rows={0, 1, 2, 3, 4}), num_parts=3,
                               generator=torch.Generator().manual_seed(0))
    assert keep.tolist() == [True]
    expected = torch.tensor([1, 2, 2, 3, 3, 0]).repeat_interleave(2).view(6, 2)
    assert torch.equal(labels[0], expected)


def test_images_without_a_foreground_majority_are_dropped():
    # half the tokens strong is not enough (the rule is "more than half"); 4 of 6 rows is
    maps = torch.cat([person_map(fg_rows={0, 1, 2}), person_map(fg_rows={0, 1, 2, 3})])
    labels, keep = part_labels(maps, num_parts=3, generator=torch.Generator().manual_seed(0))
    assert keep.tolist() == [False, True]
    assert labels.dtype == torch.long and labels.shape == (2, 6, 2)
    assert (labels[0] == 0).all()
    assert set(labels[1].unique().tolist()) == {0, 1, 2, 3}
