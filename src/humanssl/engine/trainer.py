"""One trainer for every method: devices, DDP, precision, schedules, checkpoints, logs.

It never knows which method it runs; the contract is in `humanssl.methods.base`.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from humanssl.data.collate import ReadFailureMonitor
from humanssl.data.samplers import ResumableSampler, SeededDataset, sample_seed
from humanssl.engine import checkpoint, distributed
from humanssl.engine.distributed import DistInfo
from humanssl.engine.optim import build_optimizer, clip_gradients
from humanssl.engine.precision import resolve_precision
from humanssl.engine.run_dir import MetricsLog
from humanssl.engine.schedules import cosine_schedule, scaled_lr
from humanssl.engine.settings import OptimConfig, TrainConfig
from humanssl.errors import UserError
from humanssl.methods.base import Method


class NonFiniteLossError(UserError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


@dataclass
class FitResult:
    run_dir: Path
    steps: int  # optimizer steps completed over all stages
    finished: bool  # False when stopped early by train.stop_after_steps
    last_losses: dict = field(default_factory=dict)
    images_per_second: float = 0.0
    skipped_images: int = 0


def add_share(totals: dict[str, torch.Tensor], values: dict[str, torch.Tensor], parts: int) -> None:
    """Add one micro-batch's share (1/parts) of each named value to `totals`, detached."""
    for name, value in values.items():
        totals[name] = totals.get(name, 0.0) + value.detach() / parts


class Trainer:
    def __init__(self, method: Method, dataset: Dataset, collate_fn, *, train: TrainConfig,
                 optim: OptimConfig, run_dir: Path, dist: DistInfo, config_yaml: str,
                 resume_from: Path | None = None, max_bad_fraction: float = 0.01, sampler=None,
                 batch_transform=None):
        """`sampler`: the data order (default: a shuffled `ResumableSampler`). A custom one (e.g.
        `humanssl.data.pk_sampler.PKSampler`) yields `(epoch, index)` pairs batch by batch, has
        `batch_size` (equal to train.batch_size), `batches_per_epoch`, `dataset_size` and
        `set_position(epoch, batch)`, and gives each process its own share of the epoch.
        `batch_transform(batch) -> batch` runs on the device after the batch is moved there
        (e.g. `humanssl.data.device_multicrop.DeviceMultiCrop`)."""
        self.train_cfg = train
        self.optim_cfg = optim
        self.run_dir = Path(run_dir)
        self.dist = dist
        self.config_yaml = config_yaml
        self.resume_from = resume_from
        self.device = dist.device
        self.precision = resolve_precision(train.precision, self.device)
        self.method = method.to(self.device)
        if dist.world_size > 1 and train.sync_batchnorm and self.device.type == "cuda":
            self.method = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.method)
        self.model = self.method  # wrapped for DDP at the start of each stage (`wrap_for_ddp`)
        self.stage_optim = optim  # the running stage's optimiser settings
        if sampler is None:
            sampler = ResumableSampler(len(dataset), train.batch_size, seed=train.seed,
                                       rank=dist.rank, world_size=dist.world_size)
        elif sampler.batch_size != train.batch_size:
            raise UserError(f"the sampler makes batches of {sampler.batch_size} images but "
                            f"train.batch_size is {train.batch_size}; they must be equal")
        self.sampler = sampler
        self.batch_transform = batch_transform
        self.loader = DataLoader(
            SeededDataset(dataset, train.seed), batch_size=train.batch_size, sampler=self.sampler,
            num_workers=train.num_workers, collate_fn=collate_fn, drop_last=True,
            pin_memory=self.device.type == "cuda", persistent_workers=train.num_workers > 0,
            # its own generator: making worker seeds must not consume the training RNG
            generator=torch.Generator(),
        )
        self.read_failures = ReadFailureMonitor(max_bad_fraction, min_reads=min(100, len(dataset)))
        self.ckpt_root = self.run_dir / "checkpoints"
        self.last_checkpoint: Path | None = resume_from
        self.data_error: UserError | None = None
        self.global_step = 0

    # ------------------------------------------------------------------ the run
    def fit(self) -> FitResult:
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        resume = checkpoint.load_state(self.resume_from) if self.resume_from else None
        if resume is not None:
            self.method.load_state_dict(checkpoint.load_weights(self.resume_from))
            if "read_failures" in resume:
                self.read_failures.load_state_dict(resume["read_failures"])
        self.log = MetricsLog(self.run_dir / "metrics.jsonl",
                              resume["global_step"] if resume else None) if self.dist.is_main else None
        result = FitResult(self.run_dir, 0, True)
        stages = self.method.stages()
        first = resume["stage"] if resume else 0
        self.global_step = resume["global_step"] if resume else 0
        for index in range(first, len(stages)):
            stage_resume = resume if (resume and index == first) else None
            if not self.run_stage(index, stages[index], stage_resume, result):
                result.finished = False
                break
        result.steps = self.global_step
        result.skipped_images = self.read_failures.num_failed
        return result

    def run_stage(self, index: int, stage, resume: dict | None, result: FitResult) -> bool:
        cfg = self.train_cfg
        uses_loader = stage.steps_per_epoch is None  # otherwise the method brings its own data
        steps_per_epoch = self.sampler.batches_per_epoch // cfg.accumulation if uses_loader else stage.steps_per_epoch
        if steps_per_epoch == 0 and uses_loader:
            raise UserError(
                f"the dataset has {self.sampler.dataset_size} images, fewer than one optimizer step needs "
                f"(train.batch_size={cfg.batch_size} x {self.dist.world_size} processes x "
                f"train.accumulation={cfg.accumulation})"
            )
        epochs = stage.epochs or cfg.epochs
        total = cfg.max_steps or epochs * steps_per_epoch
        self.method.begin_stage(stage.name)
        self.method.configure(total, steps_per_epoch)
        self.model = self.wrap_for_ddp()  # after begin_stage: DDP must see this stage's trainable parameters
        o = self.stage_optim = stage.optim or self.optim_cfg
        optimizer = self.make_optimizer()
        effective_batch = cfg.batch_size * self.dist.world_size * cfg.accumulation
        if stage.lr is not None:
            lr = np.asarray(stage.lr(total, steps_per_epoch), dtype=np.float64)
            if lr.shape != (total,):
                raise ValueError(f"stage {stage.name}: its lr schedule has {lr.shape} values for {total} steps")
        else:
            peak = scaled_lr(o.lr, effective_batch)
            lr = cosine_schedule(peak, o.min_lr, total, round(o.warmup_epochs * steps_per_epoch),
                                 warmup_start=o.warmup_start_factor * peak)
        wd = cosine_schedule(o.weight_decay, o.weight_decay_end, total)
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.needs_scaler)
        start = 0
        if resume is not None:
            optimizer.load_state_dict(resume["optimizer"])
            scaler.load_state_dict(resume["scaler"])
            start = resume["stage_step"]
        if stage.prepare is not None and start < total:
            stage.prepare(self.loader)
        batches = self.batch_stream(start * cfg.accumulation) if uses_loader else itertools.repeat({})
        bar = tqdm(total=total, initial=start, desc=stage.name, dynamic_ncols=True,
                   disable=not (cfg.progress and self.dist.is_main))
        seen, t0 = 0, time.perf_counter()
        for step in range(start, total):
            if cfg.stop_after_steps is not None and self.global_step >= cfg.stop_after_steps:
                bar.close()
                return False
            losses, monitors = self.optimizer_step(step, optimizer, scaler, batches, lr[step], wd[step])
            self.global_step += 1
            seen += effective_batch
            rate = seen / max(time.perf_counter() - t0, 1e-9)
            last = step + 1 == total
            if self.global_step % cfg.log_every == 0 or last:
                values = self.reduce_for_log(losses)
                result.last_losses = values
                self.write_log(values, self.reduce_for_log(monitors), step, steps_per_epoch, stage.name,
                               lr[step], wd[step], rate)
                bar.set_postfix(loss=f"{sum(values.values()):.4f}", img_s=f"{rate:.1f}")
            bar.update(1)
            if last or (cfg.checkpoint_every and self.global_step % cfg.checkpoint_every == 0):
                self.save(index, step + 1, optimizer, scaler)
        bar.close()
        result.images_per_second = rate if total > start else 0.0
        return True

    def wrap_for_ddp(self):
        if self.dist.world_size == 1:
            return self.method
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(self.method, device_ids=ids)

    def make_optimizer(self) -> torch.optim.Optimizer:
        groups = self.method.param_groups()
        custom = self.method.make_optimizer(groups)
        if custom is not None:
            return custom
        o = self.stage_optim
        return build_optimizer(groups, o.name, o.momentum, o.betas)

    # ------------------------------------------------------------------ one step
    def optimizer_step(self, step, optimizer, scaler, batches, lr, wd):
        """One optimizer step over `accumulation` micro-batches: (losses, monitors), each averaged
        over the micro-batches."""
        cfg = self.train_cfg
        lr, wd = float(lr), float(wd)  # plain floats: the optimizer state must load with weights_only
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
            group["weight_decay"] = wd if group.get("apply_weight_decay", True) else 0.0
        # Training randomness (drop path, masks, lambdas) comes from (seed, rank, step), so a resumed
        # run draws exactly what the uninterrupted one drew, whatever happened before.
        torch.manual_seed(sample_seed(cfg.seed + 7 * self.dist.rank, 0, self.global_step))
        summed: dict[str, torch.Tensor] = {}
        monitored: dict[str, torch.Tensor] = {}
        for k in range(cfg.accumulation):
            batch = next(batches)
            sync_now = k == cfg.accumulation - 1 or not isinstance(self.model, DistributedDataParallel)
            with (contextlib.nullcontext() if sync_now else self.model.no_sync()):
                with self.precision.autocast():
                    losses = self.model(batch, step)
                total = sum(losses.values())
                self.check_finite(total, losses)
                scaler.scale(total / cfg.accumulation).backward()
            add_share(summed, losses, cfg.accumulation)
            add_share(monitored, {n: v.float() for n, v in self.method.monitors().items()}, cfg.accumulation)
        scaler.unscale_(optimizer)
        self.method.after_backward(step)
        clip_gradients(self.method.parameters(), self.stage_optim.clip_grad, self.stage_optim.clip_mode)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        self.method.after_step(step)
        return summed, monitored

    def check_finite(self, total: torch.Tensor, losses: dict) -> None:
        """Stop on a non-finite loss or too many unreadable images, in every process at once.

        One all-reduce carries both flags, so a process that must stop never leaves the others
        waiting in a collective.
        """
        flags = torch.stack([(~torch.isfinite(total.detach())).float(),
                             torch.tensor(float(self.data_error is not None), device=total.device)])
        distributed.all_reduce_sum(flags)
        if flags[1].item() > 0:
            raise self.data_error or UserError("another process stopped: too many unreadable images (see its message)")
        if flags[0].item() > 0:
            parts = ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
            where = self.last_checkpoint or "none yet"
            raise NonFiniteLossError(
                f"non-finite loss at step {self.global_step + 1} ({parts}); "
                f"last good checkpoint: {where} (continue from it with train.resume=auto after "
                f"lowering optim.lr or changing precision)"
            )

    def batch_stream(self, first_micro_batch: int):
        """Endless micro-batches on the device, starting at a given micro-batch of the run."""
        per_epoch = self.sampler.batches_per_epoch
        epoch, offset = divmod(first_micro_batch, per_epoch)
        while True:
            self.sampler.set_position(epoch, offset)
            for batch in self.loader:
                failed = batch.pop("failed_reads", [])
                try:
                    self.read_failures.update(self.train_cfg.batch_size, failed)
                except UserError as err:
                    self.data_error = err  # raised by check_finite, together with the other processes
                batch = to_device(batch, self.device)
                yield self.batch_transform(batch) if self.batch_transform is not None else batch
            epoch, offset = epoch + 1, 0

    # ------------------------------------------------------------------ outputs
    def reduce_for_log(self, losses: dict[str, torch.Tensor]) -> dict[str, float]:
        if not losses:
            return {}
        names = sorted(losses)
        stacked = torch.stack([losses[n].float() for n in names])
        distributed.all_reduce_mean(stacked)
        return {n: v for n, v in zip(names, stacked.tolist())}

    def write_log(self, values, monitors, step, steps_per_epoch, stage, lr, wd, rate) -> None:
        if self.log is None:
            return
        self.log.write({"step": self.global_step, "stage": stage, "epoch": step / steps_per_epoch,
                        **values, "loss": sum(values.values()), **monitors, "lr": float(lr), "wd": float(wd),
                        "img_per_s": rate})

    def save(self, stage_index: int, stage_step: int, optimizer, scaler) -> None:
        if self.dist.is_main:
            state = {"stage": stage_index, "stage_step": stage_step, "global_step": self.global_step,
                     "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                     "seed": self.train_cfg.seed, "world_size": self.dist.world_size,
                     "read_failures": self.read_failures.state_dict()}
            self.last_checkpoint = checkpoint.save_checkpoint(
                self.ckpt_root, self.global_step, self.method.state_dict(), state,
                self.config_yaml, keep=self.train_cfg.keep_checkpoints)
        distributed.barrier()


def to_device(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
