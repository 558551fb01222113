"""Which sequences form a batch (P identities x M sequences) and which frames a sample holds.

`GaitTripletSampler` follows GaitSet's `TripletSampler` (also SelfGait's): every batch draws P
distinct identities at random and, for each, M of its sequences WITH replacement
(`random.choices`), so an identity with fewer than M sequences still fills its slots. Unlike
`humanssl.data.pk_sampler.PKSampler` (epochs that visit each image once), batches here are
independent draws, as in the official iteration-based training; an "epoch" is just a count of
batches (default: sequences // (P * M)). Each batch is a function of (seed, epoch, batch)
alone, so `set_position` restarts mid-epoch without replaying, and process r takes batches
r, r + world_size, ... It yields `(epoch, index)` pairs like `ResumableSampler`, so the
engine's Trainer takes it through `sampler=`.

`FrameSampling` picks frames inside a sequence: "window" (a random run of `length` consecutive
frames; SelfGait's fixed window, OpenGait's "fixed ordered"), "choices" (GaitSet: `length`
random frames with replacement, unordered) or "all" (test).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from torch.utils.data import Sampler

from humanssl.errors import UserError

FRAME_MODES = ("window", "choices", "all")


@dataclass(frozen=True)
class FrameSampling:
    mode: str = "window"
    length: int = 30  # frames per training sample (the official frame_num)

    def __post_init__(self):
        if self.mode not in FRAME_MODES:
            raise UserError(f"frame sampling {self.mode!r} is not known; expected one of {', '.join(FRAME_MODES)}")
        if self.mode != "all" and int(self.length) < 1:
            raise UserError(f"frames per sample must be >= 1, got {self.length}")

    def indices(self, num_frames: int, rng: np.random.Generator | None = None) -> list[int]:
        """Frame positions for a sequence of `num_frames` (>= 1) frames.

        Without `rng` the global NumPy RNG is used (seeded per sample by the engine). A window
        longer than the sequence wraps round to its start (OpenGait repeats short sequences).
        """
        if num_frames < 1:
            raise ValueError("a sequence needs at least one frame")
        if self.mode == "all":
            return list(range(num_frames))
        draw = rng.integers if rng is not None else np.random.randint
        if self.mode == "choices":
            return [int(i) for i in draw(0, num_frames, size=self.length)]
        if num_frames >= self.length:
            start = int(draw(0, num_frames - self.length + 1))
            return list(range(start, start + self.length))
        start = int(draw(0, num_frames))
        return [(start + i) % num_frames for i in range(self.length)]


class GaitTripletSampler(Sampler):
    def __init__(self, labels: Sequence[int], p: int = 8, m: int = 16, seed: int = 0, rank: int = 0,
                 world_size: int = 1, batches_per_epoch: int | None = None, replace: bool = True):
        """`labels`: the identity of every dataset index (`GaitSequences.labels`). `replace=False`
        draws an identity's M sequences without replacement when it has at least M."""
        if int(p) < 1 or int(m) < 1:
            raise UserError(f"gait sampler: p (identities) and m (sequences each) must be >= 1, got p={p}, m={m}")
        self.by_label: dict[int, list[int]] = {}
        for index, label in enumerate(labels):
            self.by_label.setdefault(int(label), []).append(index)
        if len(self.by_label) < int(p):
            raise UserError(f"gait sampler: p={p} identities per batch, but the training set has only "
                            f"{len(self.by_label)}; lower p")
        self.label_list = sorted(self.by_label)
        self.p, self.m, self.replace = int(p), int(m), bool(replace)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.dataset_size = len(labels)
        if batches_per_epoch is None:
            batches_per_epoch = self.dataset_size // (self.batch_size * self.world_size)
        per_rank = batches_per_epoch
        self._per_rank = max(1, int(per_rank))
        self.epoch = 0
        self.start_batch = 0

    @property
    def batch_size(self) -> int:
        return self.p * self.m

    @property
    def batches_per_epoch(self) -> int:
        return self._per_rank

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def batch(self, epoch: int, number: int) -> list[int]:
        """Global batch `number` of `epoch` (all processes together) as dataset indices."""
        rng = random.Random((self.seed * 1_000_003 + epoch) * 1_000_033 + number)
        out = []
        for label in rng.sample(self.label_list, self.p):
            pool = self.by_label[label]
            if self.replace or len(pool) < self.m:
                out += rng.choices(pool, k=self.m)
            else:
                out += rng.sample(pool, self.m)
        return out

    def __iter__(self):
        for b in range(self.start_batch, self._per_rank):
            for index in self.batch(self.epoch, b * self.world_size + self.rank):
                yield (self.epoch, index)

    def __len__(self) -> int:
        return (self._per_rank - self.start_batch) * self.batch_size
