"""Batching of dataset samples, and the guard that stops a run whose images keep failing."""

from __future__ import annotations

import torch

from humanssl.errors import UserError

FAILED_READS = "failed_reads"


def _stack(key: str, tensors: list[torch.Tensor]) -> torch.Tensor:
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        # Reachable by configuration (no transform, or a resize left out), so it gets a clear
        # message instead of torch's "stack expects each tensor to be equal size".
        raise UserError(
            f"cannot batch {key!r}: samples have different shapes {sorted(shapes)}; "
            "expected a transform that outputs one fixed size"
        )
    return torch.stack(tensors)


def _collate_key(key: str, values: list):
    first = values[0]
    if key == FAILED_READS:
        return [path for paths in values for path in paths]
    if isinstance(first, torch.Tensor):
        return _stack(key, values)
    if isinstance(first, (list, tuple)) and first and isinstance(first[0], torch.Tensor):
        counts = {len(v) for v in values}
        if len(counts) > 1:
            raise ValueError(f"{key!r}: samples carry different numbers of crops {sorted(counts)}")
        return [_stack(f"{key}[{i}]", list(crops)) for i, crops in enumerate(zip(*values))]
    if isinstance(first, bool):
        return torch.tensor(values, dtype=torch.bool)
    if isinstance(first, int):
        return torch.tensor(values, dtype=torch.long)
    if isinstance(first, float):
        return torch.tensor(values, dtype=torch.float32)
    return list(values)


def collate_samples(samples: list[dict]) -> dict:
    """Batch a list of sample dicts.

    Tensors are stacked; a list of tensors (multi-crop views) becomes a list of stacked tensors,
    one per view, the layout multi-crop methods feed to their backbone; ints/floats/bools become
    tensors; ``failed_reads`` lists are joined into one flat list of paths; anything else is
    returned as a list.
    """
    if not samples:
        raise ValueError("collate_samples needs at least one sample")
    keys = samples[0].keys()
    return {key: _collate_key(key, [s[key] for s in samples]) for key in keys}


class ReadFailureMonitor:
    """Counts image reads across batches and aborts once failures are more than rare.

    ``min_reads`` keeps one early bad file from aborting a run (1 failure in 5 reads is 20%);
    pass ``min(100, len(dataset))`` so a tiny dataset is still checked.
    """

    def __init__(self, max_fraction: float = 0.01, min_reads: int = 100):
        if not 0.0 <= max_fraction <= 1.0:
            raise UserError(f"max failed-read fraction {max_fraction} must be between 0 and 1")
        self.max_fraction = max_fraction
        self.min_reads = max(int(min_reads), 1)
        self.num_reads = 0
        self.num_failed = 0
        self.failed_paths: dict[str, None] = {}  # distinct paths, in order of first failure

    def update(self, num_good: int, failed: list[str]) -> None:
        """Record one batch: ``num_good`` images served, ``failed`` paths skipped on the way."""
        self.num_reads += num_good + len(failed)
        self.num_failed += len(failed)
        self.failed_paths.update(dict.fromkeys(failed))
        if self.num_reads >= self.min_reads and self.fraction > self.max_fraction:
            examples = ", ".join(list(self.failed_paths)[:5])
            raise UserError(
                f"{self.num_failed} of {self.num_reads} image reads failed "
                f"({self.fraction:.2%}), above the allowed {self.max_fraction:.2%}; "
                f"check or remove these files: {examples}"
            )

    @property
    def fraction(self) -> float:
        return self.num_failed / self.num_reads if self.num_reads else 0.0

    def state_dict(self) -> dict:
        """Counts to save with the training state, so a resumed run keeps its tally."""
        return {
            "num_reads": self.num_reads,
            "num_failed": self.num_failed,
            "failed_paths": list(self.failed_paths),
        }

    def load_state_dict(self, state: dict) -> None:
        self.num_reads = int(state["num_reads"])
        self.num_failed = int(state["num_failed"])
        self.failed_paths = dict.fromkeys(state["failed_paths"])

    def summary(self) -> str:
        """One line for the end of a run, e.g. 'skipped 3 unreadable images (6 failed reads)'."""
        n = len(self.failed_paths)
        if n == 0:
            return "no unreadable images"
        noun = "image" if n == 1 else "images"
        return f"skipped {n} unreadable {noun} ({self.num_failed} failed reads)"
