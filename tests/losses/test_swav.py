"""SwAV pieces: Sinkhorn-Knopp against the official codes, the swapped-prediction loss by hand,
the queue, and Sinkhorn split over two processes equal to one process on the whole batch."""

import math

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from humanssl.losses.swav import FeatureQueue, distributed_sinkhorn, swapped_prediction
from tests.fixtures import conformance, needs_fixture

SINKHORN = ("ssprl", "sinkhorn.npz")


@needs_fixture(*SINKHORN)
@pytest.mark.parametrize("scores, codes, iterations", [
    ("scores_64x300", "Q_64x300_eps005_it3", 3),
    ("scores_192x150", "Q_192x150_eps005_it3", 3),
    ("scores_64x300", "Q_64x300_eps005_it10", 10),
])
def test_sinkhorn_matches_the_official_codes(scores, codes, iterations):
    data = np.load(conformance(*SINKHORN))
    q = distributed_sinkhorn(torch.from_numpy(data[scores]), epsilon=0.05, sinkhorn_iterations=iterations)
    expected = torch.from_numpy(data[codes])
    torch.testing.assert_close(q, expected, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(q.sum(dim=1), torch.ones(q.shape[0]))  # every sample's code is a distribution


def test_sinkhorn_balances_prototypes_and_ignores_gradients():
    g = torch.Generator().manual_seed(0)
    scores = torch.nn.functional.normalize(torch.randn(40, 8, generator=g), dim=1).requires_grad_(True)
    q = distributed_sinkhorn(scores, epsilon=0.05, sinkhorn_iterations=200)
    assert not q.requires_grad
    # after many iterations each prototype receives B / K of the mass
    torch.testing.assert_close(q.sum(dim=0), torch.full((8,), 40 / 8), rtol=1e-5, atol=1e-5)


def test_swapped_prediction_by_hand():
    q = torch.tensor([[0.25, 0.75, 0.0], [1.0, 0.0, 0.0]])
    scores = torch.tensor([[0.1, -0.2, 0.3], [0.5, 0.0, -0.5]])
    t = 0.1

    def log_softmax(row):
        lse = math.log(sum(math.exp(s / t) for s in row))
        return [s / t - lse for s in row]

    expected = -sum(sum(qk * lk for qk, lk in zip(qr, log_softmax(sr)))
                    for qr, sr in zip(q.tolist(), scores.tolist())) / 2
    assert swapped_prediction(q, scores, t).item() == pytest.approx(expected, rel=1e-6)


def test_queue_shifts_back_and_writes_the_newest_rows_first():
    queue = FeatureQueue()
    assert not queue.started and not queue.full
    queue.start(views=2, length=6, dim=3, like=torch.zeros(1))
    a, b = torch.ones(2, 3), 2 * torch.ones(2, 3)
    for rows in (a, b):
        queue.push(0, rows)
        queue.push(1, -rows)
        queue.advance(2)
    assert queue.filled == 4 and not queue.full
    torch.testing.assert_close(queue.queue[0], torch.cat([b, a, torch.zeros(2, 3)]))
    torch.testing.assert_close(queue.queue[1], -torch.cat([b, a, torch.zeros(2, 3)]))
    queue.push(0, 3 * torch.ones(2, 3))
    queue.push(1, 3 * torch.ones(2, 3))
    queue.advance(2)
    assert queue.full
    torch.testing.assert_close(queue.queue[0, :2], 3 * torch.ones(2, 3))


def test_queue_lives_in_the_state_dict_as_extra_state():
    holder = torch.nn.Module()
    holder.q = FeatureQueue()
    assert holder.state_dict()["q._extra_state"].numel() == 0  # not started: empty, still saved
    holder.q.start(2, 4, 3, like=torch.zeros(1))
    holder.q.push(0, torch.ones(4, 3))
    holder.q.advance(4)
    fresh = torch.nn.Module()
    fresh.q = FeatureQueue()
    fresh.load_state_dict(holder.state_dict())
    torch.testing.assert_close(fresh.q.queue, holder.q.queue)
    assert fresh.q.full
    assert not list(fresh.buffers())  # not a buffer, so DDP never overwrites a process's queue


def _sinkhorn_worker(rank, init_file, scores, result):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        half = scores.shape[0] // 2
        result[rank * half:(rank + 1) * half] = distributed_sinkhorn(scores[rank * half:(rank + 1) * half])
    finally:
        dist.destroy_process_group()


def test_two_processes_give_the_codes_of_one_process_on_the_whole_batch(tmp_path):
    torch.manual_seed(0)
    scores = torch.nn.functional.normalize(torch.randn(16, 5), dim=1) @ \
        torch.nn.functional.normalize(torch.randn(10, 5), dim=1).t()
    result = torch.zeros(16, 10).share_memory_()
    # fork: the children start at once with torch already imported (spawn re-imports for seconds)
    mp.start_processes(_sinkhorn_worker, args=(str(tmp_path / "init"), scores, result), nprocs=2,
                       start_method="fork")
    torch.testing.assert_close(result, distributed_sinkhorn(scores), rtol=1e-5, atol=1e-8)
