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

import torch
from step_timing import device_name, make_step, peak_memory_gb, random_crops, warm_then_time

from humanssl.config import load_config
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
    data = random_crops(cfg, args.batch, device)
    step, precision = make_step(method, cfg.train.precision, device, data)
    seconds = warm_then_time(step, device, args.steps, warmup=3)
    g, l = cfg.crops.global_size, cfg.crops.local_size
    print(json.dumps({
        "device": device_name(device), "date": datetime.date.today().isoformat(), "torch": torch.__version__,
        "backbone": args.backbone, "batch": args.batch, "precision": precision.name,
        "crops": f"2x{g[0]}x{g[1]} + {cfg.crops.local_number}x{l[0]}x{l[1]}", "out_dim": cfg.dino.out_dim,
        "s_per_step": round(seconds, 4), "img_per_s": round(args.batch / seconds, 1),
        "peak_mem_gb": peak_memory_gb(device),
    }))


if __name__ == "__main__":
    main()
