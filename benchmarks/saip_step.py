"""Throughput and peak memory of one SAIP training step, in images per second.

    python benchmarks/saip_step.py --device cuda --precision bf16     # the official step
    python benchmarks/saip_step.py --device cpu --batch 2 --steps 2

The official recipe (configs/saip_vit_tiny.yaml): the 5.5M-parameter ViT-Tiny with its CSM head,
CSR decoder (8 blocks of 512) and CSS decoder, 64 images per GPU, each with 2 global 256x128 and
7 local 128x64 views, the region image and the 224x224 two-person reference with its masks. One
batch is made by the real SAIP views from the built-in synthetic people and reused (loading
excluded); the step is the engine's: CSM (DINO over the 10 student views, two of them rescaled,
plus attention distillation), CSR, CSS, backward, AdamW, the teacher's EMA. With
`--accumulation 4` as officially, one step here is one micro-batch. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import torch
from step_timing import device_name, make_step, peak_memory_gb, warm_then_time

from humanssl.config import load_config
from humanssl.data.collate import collate_samples
from humanssl.engine.trainer import to_device
from humanssl.pretrain import build_dataset, build_method
from humanssl.pretrain_config import PretrainConfig

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "saip_vit_tiny.yaml"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=64, help="images per step (the official 64 per GPU)")
    p.add_argument("--precision", default="auto")
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    device = torch.device(args.device)
    cfg = load_config(PretrainConfig, RECIPE, ["data.source=synthetic", f"data.synthetic_images={args.batch}",
                                               f"train.batch_size={args.batch}", "train.accumulation=1"])
    dataset = build_dataset(cfg)
    data = to_device(collate_samples([dataset[i] for i in range(args.batch)]), device)
    torch.manual_seed(0)
    method = build_method(cfg).to(device)
    method.configure(10**6, 10**4)
    step, precision = make_step(method, args.precision, device, data, "adamw", clip=cfg.optim.clip_grad)
    seconds = warm_then_time(step, device, args.steps, warmup=2)
    print(json.dumps({
        "device": device_name(device), "date": datetime.date.today().isoformat(), "torch": torch.__version__,
        "backbone": cfg.model.backbone, "batch": args.batch, "precision": precision.name,
        "s_per_step": round(seconds, 4), "img_per_s": round(args.batch / seconds, 1),
        "peak_mem_gb": peak_memory_gb(device),
    }))


if __name__ == "__main__":
    main()
