"""P identities x K images per batch, the batch layout that batch-hard triplet losses need.

An epoch is built from (seed, epoch) alone:

1. every identity's images are shuffled and cut into groups of K; an identity with fewer than
   K images gets one group drawn with replacement; a last incomplete group is dropped
   (all as the usual "random identity" samplers do);
2. batches are filled one at a time with P distinct identities, chosen at random among
   those with groups left, each giving its next group. When fewer than P identities have
   groups left, the exhausted ones are dealt a fresh shuffle of their images, so every epoch
   has the same number of batches: (total groups // P), cut to a multiple of world_size;
3. process r takes batches r, r + world_size, ... — disjoint shares of one epoch.

Like `ResumableSampler` it yields `(epoch, index)` pairs (the dataset wrapper seeds each
sample's augmentation from them), one batch of P*K after another, and `set_position(epoch,
batch)` restarts it mid-epoch, which is how the trainer resumes.
"""

from __future__ import annotations

import random
from typing import Sequence

from torch.utils.data import Sampler

from humanssl.errors import UserError


class PKSampler(Sampler):
    def __init__(self, pids: Sequence[int], p: int, k: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if int(p) < 1 or int(k) < 1:
            raise UserError(f"PK sampler: sampler.p and sampler.k must be >= 1, got p={p}, k={k}")
        self.by_pid: dict[int, list[int]] = {}
        for index, pid in enumerate(pids):
            self.by_pid.setdefault(int(pid), []).append(index)
        if len(self.by_pid) < p:
            raise UserError(
                f"PK sampler: sampler.p={p} identities per batch, but the training set has only "
                f"{len(self.by_pid)}; lower sampler.p"
            )
        self.pid_list = sorted(self.by_pid)
        self.p, self.k = int(p), int(k)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.dataset_size = len(pids)
        self.epoch = 0
        self.start_batch = 0
        groups = sum(max(1, len(v) // self.k) for v in self.by_pid.values())
        self.global_batches = (groups // self.p) // self.world_size * self.world_size

    @property
    def batch_size(self) -> int:
        return self.p * self.k

    @property
    def batches_per_epoch(self) -> int:
        return self.global_batches // self.world_size

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def groups_of(self, pid: int, rng: random.Random) -> list[list[int]]:
        images = list(self.by_pid[pid])
        if len(images) < self.k:
            return [[rng.choice(images) for _ in range(self.k)]]
        rng.shuffle(images)
        return [images[i:i + self.k] for i in range(0, len(images) - self.k + 1, self.k)]

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Every batch of the epoch, all processes together, as lists of dataset indices."""
        rng = random.Random(self.seed * 1_000_003 + epoch)
        left = {pid: self.groups_of(pid, rng) for pid in self.pid_list}
        batches = []
        while len(batches) < self.global_batches:
            ready = [pid for pid in self.pid_list if left[pid]]
            if len(ready) < self.p:
                for pid in self.pid_list:
                    if not left[pid]:
                        left[pid] = self.groups_of(pid, rng)
                ready = self.pid_list
            chosen = rng.sample(ready, self.p)
            batches.append([i for pid in chosen for i in left[pid].pop(0)])
        return batches

    def rank_batches(self, epoch: int) -> list[list[int]]:
        return self.epoch_batches(epoch)[self.rank::self.world_size]

    def __iter__(self):
        for batch in self.rank_batches(self.epoch)[self.start_batch:]:
            for index in batch:
                yield (self.epoch, index)

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size
