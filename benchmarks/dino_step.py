"""Throughput of one DINO training step through the engine's pieces (data loading excluded).

    python benchmarks/dino_step.py --device cuda --backbone vit_small --batch 64 --precision bf16
    python benchmarks/dino_step.py --device cpu --backbone resnet_mini --batch 64 --small

Prints one JSON line: device name, date, settings, seconds per step, images per second and the
peak accelerator memory. Crops are random tensors already on the device, so the figure is the
model's step alone (forward of teacher and student, loss, backward, clipping, AdamW, EMA).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time

import torch

from humanssl.config import load_config
from humanssl.engine.optim import build_optimizer, clip_gradients
from humanssl.engine.precision import resolve_precision
from humanssl.pretrain import build_method
from humanssl.pretrain_config import PretrainConfig


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--backbone", default="vit_small")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--precision", default="auto")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--small", action="store_true", help="64x32 / 32x16 crops, 4 locals, 1024 prototypes (CPU)")
    args = p.parse_args()
    overrides = [f"model.backbone={args.backbone}", f"train.precision={args.precision}"]
    if args.small:
        overrides += ["crops.global_size=[64,32]", "crops.local_size=[32,16]", "crops.local_number=4",
                      "dino.out_dim=1024", "dino.hidden_dim=512", "dino.bottleneck_dim=128"]
    cfg = load_config(PretrainConfig, None, overrides)
    device = torch.device(args.device)
    method = build_method(cfg).to(device)
    method.configure(args.steps + 5, 1000)
    precision = resolve_precision(cfg.train.precision, device)
    optimizer = build_optimizer(method.param_groups(), "adamw")
    scaler = torch.amp.GradScaler(device.type, enabled=precision.needs_scaler)
    g, l = cfg.crops.global_size, cfg.crops.local_size
    crops = [torch.randn(args.batch, 3, *g, device=device) for _ in range(2)]
    crops += [torch.randn(args.batch, 3, *l, device=device) for _ in range(cfg.crops.local_number)]
    batch = {"image": crops}

    def step(i: int) -> None:
        with precision.autocast():
            loss = sum(method(batch, i).values())
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        method.after_backward(i)
        clip_gradients(method.parameters(), 3.0, "per_param")
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        method.after_step(i)

    for i in range(3):  # warm-up: allocator, kernels, lazy inits
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / args.steps
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"
    print(json.dumps({
        "device": name, "date": datetime.date.today().isoformat(), "torch": torch.__version__,
        "backbone": args.backbone, "batch": args.batch, "precision": precision.name,
        "crops": f"2x{g[0]}x{g[1]} + {cfg.crops.local_number}x{l[0]}x{l[1]}", "out_dim": cfg.dino.out_dim,
        "s_per_step": round(seconds, 4), "img_per_s": round(args.batch / seconds, 1),
        "peak_mem_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None,
    }))


if __name__ == "__main__":
    main()
