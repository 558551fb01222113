"""Data order that can be resumed mid-epoch and split across processes.

The sampler yields `(epoch, index)` pairs instead of bare indices, so the dataset wrapper can
seed each sample's augmentation from (seed, epoch, index) alone. Then the crops a sample gets
do not depend on which process or worker loads it, nor on whether the run was interrupted.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info


class ResumableSampler(Sampler):
    """Shuffled (or ordered) indices for one process, as whole batches, from a given batch on.

    Each epoch's permutation comes from (seed, epoch). The permutation is cut to a multiple of
    world_size * batch_size (dropping the tail, as drop_last does) and dealt out round-robin,
    so process r gets perm[r::world_size].
    """

    def __init__(self, dataset_size: int, batch_size: int, seed: int = 0, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1):
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        return self.dataset_size // (self.batch_size * self.world_size)

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def epoch_indices(self, epoch: int) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(self.dataset_size, generator=g).tolist()
        else:
            perm = list(range(self.dataset_size))
        used = self.batches_per_epoch * self.batch_size * self.world_size
        return perm[:used][self.rank::self.world_size]

    def __iter__(self):
        mine = self.epoch_indices(self.epoch)
        for i in mine[self.start_batch * self.batch_size:]:
            yield (self.epoch, i)

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + index * 104_729) % (2**31 - 1)


class SeededDataset(Dataset):
    """Loads `base[index]` with Python, NumPy and torch RNGs seeded from (seed, epoch, index).

    In the main process the global RNG states are restored afterwards, so loading data never
    disturbs the training randomness (drop path, masks) of a run with num_workers=0.
    """

    def __init__(self, base: Dataset, seed: int = 0):
        self.base = base
        self.seed = seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key):
        epoch, index = key if isinstance(key, tuple) else (0, key)
        s = sample_seed(self.seed, epoch, index)
        in_worker = get_worker_info() is not None
        if not in_worker:
            saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        random.seed(s)
        np.random.seed(s)
        torch.default_generator.manual_seed(s)  # CPU only: leaves CUDA RNG streams alone
        try:
            return self.base[index]
        finally:
            if not in_worker:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.set_rng_state(saved[2])
