"""SwAV's pieces (Caron et al., NeurIPS 2020), shared by SS-PRL: Sinkhorn-Knopp codes, the
swapped-prediction cross-entropy and the queue of past projections.

* `distributed_sinkhorn` turns prototype scores into soft codes whose prototypes are used
  equally over the whole (all-process) batch: Q = exp(s / epsilon)^T is rescaled alternately
  so that every prototype row sums to 1/K and every sample column to 1/B, B counting the rows
  of every process; each returned row sums to 1. Sums over the batch dimension go through
  `all_reduce_sum`, so one process and many give the same codes for the same global batch.
  There is no log-domain stabilisation, as in SwAV: scores must be cosines (L2-normalised
  projections times L2-normalised prototypes), else exp overflows (swav issue #67).
* `swapped_prediction` is the cross-entropy from a code q to the softmax of another view's
  scores at temperature `temperature`, averaged over rows.
* `FeatureQueue` keeps the last projections of each assigned view so that Sinkhorn sees more
  rows than one small batch holds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from humanssl.engine.distributed import all_reduce_sum, world_size


@torch.no_grad()
def distributed_sinkhorn(out: Tensor, epsilon: float = 0.05, sinkhorn_iterations: int = 3) -> Tensor:
    """Codes (B, K) for prototype scores `out` (B, K); every process passes its own B rows."""
    # float32 even under autocast: exp(1 / 0.05) = 4.9e8 is past float16's range.
    q = torch.exp(out.float() / epsilon).t()  # (K, B): prototypes x samples
    n_samples = q.shape[1] * world_size()
    n_prototypes = q.shape[0]
    total = q.sum()
    all_reduce_sum(total)
    q /= total
    for _ in range(sinkhorn_iterations):
        per_prototype = q.sum(dim=1, keepdim=True)  # spans every process's samples
        all_reduce_sum(per_prototype)
        q /= per_prototype
        q /= n_prototypes
        q /= q.sum(dim=0, keepdim=True)  # a sample's column lives in one process
        q /= n_samples
    q *= n_samples
    return q.t()


def swapped_prediction(q: Tensor, scores: Tensor, temperature: float = 0.1) -> Tensor:
    """-mean_rows sum_k q_k log softmax(scores / temperature)_k; `q` carries no gradient."""
    return -torch.mean(torch.sum(q * F.log_softmax(scores / temperature, dim=1), dim=1))


class FeatureQueue(nn.Module):
    """The newest projections of each assigned view, newest first: (views, length, dim).

    Empty until `start` (SwAV starts queues late in training). Each process keeps its own queue,
    as SwAV does; the tensor is the module's extra state rather than a buffer, so that
    DistributedDataParallel does not overwrite every process's queue with process 0's, while it
    still goes into checkpoints (an empty tensor while not started).
    """

    def __init__(self) -> None:
        super().__init__()
        self.queue: Tensor | None = None
        self.filled = 0  # rows written so far, capped at the length; kept on the host

    @property
    def started(self) -> bool:
        return self.queue is not None

    @property
    def length(self) -> int:
        return 0 if self.queue is None else self.queue.shape[1]

    @property
    def full(self) -> bool:
        # SwAV tests the last slot for non-zero; projections are unit vectors, so a row count
        # says the same without reading the tensor back from the device.
        return self.started and self.filled >= self.length

    def start(self, views: int, length: int, dim: int, like: Tensor) -> None:
        self.queue = torch.zeros(views, length, dim, device=like.device)
        self.filled = 0

    def load_(self, queue: Tensor) -> None:
        """Take over a queue tensor (views, length, dim), e.g. one saved by the official code."""
        self.queue = queue.detach().clone().float()
        written = (self.queue[0] != 0).any(dim=1)
        # a non-zero last slot is SwAV's "full"; otherwise rows were written from the front
        self.filled = self.length if bool(written[-1]) else int(written.sum())

    def rows(self, view: int, like: Tensor) -> Tensor:
        """The stored rows of one view, on `like`'s device."""
        if self.queue.device != like.device:
            self.queue = self.queue.to(like.device)
        return self.queue[view]

    @torch.no_grad()
    def push(self, view: int, rows: Tensor) -> None:
        """Shift the view's queue back by len(rows) and write `rows` at the front."""
        n = rows.shape[0]
        q = self.rows(view, rows)
        q[n:] = q[:-n].clone()
        q[:n] = rows.detach()

    def advance(self, n: int) -> None:
        """Count `n` new rows per view (after every view got its push)."""
        self.filled = min(self.filled + n, self.length)

    def get_extra_state(self) -> Tensor:
        return torch.zeros(0) if self.queue is None else self.queue

    def set_extra_state(self, state: Tensor) -> None:
        if state.numel() == 0:
            self.queue, self.filled = None, 0
        else:
            self.load_(state)
