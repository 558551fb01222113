"""The contract between a method and the engine.

A method is an `nn.Module` holding every network it trains or tracks (student, teacher, heads,
loss state such as DINO's centre). The engine calls, in this order:

    method.configure(total_steps, steps_per_epoch)   once per stage, before training
    for every optimizer step `step` (0-based, counted in optimizer steps, never micro-batches):
        losses = method(batch, step)      -> training_step; dict of named scalar losses, summed
        method.monitors()                 after each micro-batch: named scalars that are logged
                                          beside the losses and never optimised
        ... backward over all micro-batches ...
        method.after_backward(step)       drop gradients (frozen last layer, frozen prototypes)
        ... gradient clipping, optimizer step ...
        method.after_step(step)           EMA teachers, centres, queues

`param_groups()` returns the method's own groups (no decay on norms and biases, lr scales,
frozen parts left out); `make_optimizer(groups)` may return a special optimizer (LARC) or None
for the engine's default. Multi-stage recipes return several `Stage`s from `stages()`; the
engine tells the method which stage runs through `begin_stage(name)`.

A method never moves tensors between devices, never talks to other processes directly (the
helpers in `engine.distributed` are no-ops in one process) and never logs.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from humanssl.engine.optim import decay_groups
from humanssl.engine.settings import OptimConfig


@dataclass
class Stage:
    """One phase of a recipe with its own optimizer and schedule.

    `prepare(loader)` runs before the stage's first step (again after a resume, so whatever it
    computes, e.g. cached features, is rebuilt rather than checkpointed). `optim` replaces the
    run's optimiser settings for this stage. `lr(total_steps, steps_per_epoch)` returns the lr
    of every step as it is meant (no batch-size scaling), replacing the engine's warm-up +
    cosine. A stage with `steps_per_epoch` set reads no images: its training steps get an
    empty batch and the method draws its own data (CLIP-ReID's stage 1 runs on cached features).
    """

    name: str = "main"
    epochs: int | None = None  # None: the run's train.epochs
    prepare: Callable | None = None  # called with the stage's data loader before training
    optim: OptimConfig | None = None  # None: the run's optim
    lr: Callable[[int, int], Sequence[float]] | None = None
    steps_per_epoch: int | None = None  # None: the sampler's batches per epoch


class Method(nn.Module, abc.ABC):
    def forward(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        # forward is the training step so that DistributedDataParallel, which hooks forward,
        # sees the whole computation whose gradients it must average.
        return self.training_step(batch, step)

    @abc.abstractmethod
    def training_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        """Named losses of one micro-batch; the engine optimises their sum."""

    def param_groups(self) -> list[dict]:
        return decay_groups(self.named_parameters())

    def make_optimizer(self, groups: list[dict]) -> torch.optim.Optimizer | None:
        return None

    def configure(self, total_steps: int, steps_per_epoch: int) -> None:
        """Build per-step schedules (momentum, temperatures) once the run length is known."""

    def after_backward(self, step: int) -> None:
        pass

    def monitors(self) -> dict[str, torch.Tensor]:
        """Scalars about the last micro-batch worth seeing in the log (not losses: never summed
        or optimised), e.g. the share of crops SOLIDER's part clustering kept."""
        return {}

    def after_step(self, step: int) -> None:
        pass

    def stages(self) -> list[Stage]:
        return [Stage()]

    def begin_stage(self, name: str) -> None:
        pass

    @abc.abstractmethod
    def downstream_backbone(self) -> nn.Module:
        """The network that downstream tasks and evaluation use (the teacher's, where there is one)."""
