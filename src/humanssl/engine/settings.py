"""The engine's part of every recipe's config: how to train, whatever the method."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class OptimConfig:
    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = 5e-4  # at an effective batch of 256; scaled linearly with the real one
    min_lr: float = 1e-6
    warmup_epochs: float = 10.0
    warmup_start_factor: float = 0.0  # warm-up starts at this fraction of the peak lr (SOLIDER-REID: 0.01)
    weight_decay: float = 0.04
    weight_decay_end: float = 0.4  # cosine from weight_decay to this (DINO); equal values = constant
    clip_grad: float = 3.0  # 0 turns clipping off
    clip_mode: Literal["per_param", "global"] = "per_param"  # per_param: DINO's rule
    momentum: float = 0.9  # SGD only
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW / Adam only


@dataclass
class TrainConfig:
    epochs: int = 100
    max_steps: int | None = None  # if set, the run (and its schedules) is this many optimizer steps
    stop_after_steps: int | None = None  # leave early as if interrupted (time-limited jobs, tests)
    batch_size: int = 64  # per process, per micro-batch
    accumulation: int = 1  # micro-batches per optimizer step
    num_workers: int = 4
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 on GPUs that have it, fp32 on CPU
    device: str = "auto"  # auto, cpu, cuda
    seed: int = 0
    output_dir: str = "runs"
    run_name: str | None = None  # default: <method>-<date>-<time>
    checkpoint_every: int = 0  # optimizer steps; 0: only at the end of each stage
    keep_checkpoints: int = 2
    resume: str | None = None  # "auto" (newest run of this method) or a run / checkpoint folder
    log_every: int = 10
    progress: bool = True
    sync_batchnorm: bool = True  # under DDP on GPUs
