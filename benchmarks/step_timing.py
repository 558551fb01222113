"""What the training-step benchmarks share: random multi-crop input on the device, one
optimizer step as the engine takes it, a timed loop, and the device's name."""

from __future__ import annotations

import platform
import time

import torch

from humanssl.engine.optim import build_optimizer, clip_gradients
from humanssl.engine.precision import resolve_precision


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def random_crops(cfg, batch: int, device: torch.device) -> dict:
    """2 global + N local crops of the config's sizes, already on the device."""
    g, l = cfg.crops.global_size, cfg.crops.local_size
    crops = [torch.randn(batch, 3, *g, device=device) for _ in range(2)]
    crops += [torch.randn(batch, 3, *l, device=device) for _ in range(cfg.crops.local_number)]
    return {"image": crops}


def make_step(method, precision_name: str, device: torch.device, data: dict, optimizer_name: str = "adamw",
              clip: float = 3.0):
    """step(i): forward, backward, after_backward, per-tensor clipping (DINO's 3; 0 = none),
    the optimizer (the method's own, e.g. LARC, else AdamW unless named), after_step."""
    precision = resolve_precision(precision_name, device)
    groups = method.param_groups()
    optimizer = method.make_optimizer(groups) or build_optimizer(groups, optimizer_name)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.needs_scaler)

    def step(i: int) -> None:
        with precision.autocast():
            loss = sum(method.training_step(data, i).values())
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        method.after_backward(i)
        if clip > 0:
            clip_gradients(method.parameters(), clip, "per_param")
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        method.after_step(i)

    return step, precision


def seconds_per_step(step, device: torch.device, steps: int, first: int = 0) -> float:
    """Mean wall seconds of `steps` calls step(first), step(first + 1), ..., synchronised."""
    sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        step(first + i)
    sync(device)
    return (time.perf_counter() - t0) / steps


def peak_memory_gb(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def warm_then_time(step, device: torch.device, steps: int, warmup: int) -> float:
    """Run `warmup` untimed steps (allocator, kernels, lazy inits), reset the peak-memory
    counter, then return the mean seconds of the next `steps` steps."""
    for i in range(warmup):
        step(i)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return seconds_per_step(step, device, steps, first=warmup)
