"""Throughput of one full SOLIDER training step, with the part clustering timed on its own.

    # the official recipe (notes/perf_anchor_solider.md): batch 48, 2x256x128 + 8x128x64, out_dim 65536
    python benchmarks/solider_step.py --device cuda --backbone swin_tiny --precision bf16
    python benchmarks/solider_step.py --device cuda --backbone swin_base --precision bf16 --compile
    # a smoke run on a CPU (about a minute on 2 cores)
    python benchmarks/solider_step.py --device cpu --tiny

One step as the engine runs it: both teacher passes, batched part clustering, masking, student
pass, DINO + semantic loss, backward, per-tensor clipping, AdamW, EMA. Crops are random tensors
already on the device (data loading excluded). Two timed loops: the first gives seconds per step
and images per second untouched; in the second `part_labels` is wrapped with device syncs to
time the clustering alone (its share of that loop's step). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time

import torch
from step_timing import device_name, make_step, peak_memory_gb, random_crops, seconds_per_step, sync, warm_then_time

from humanssl.config import load_config
from humanssl.methods import solider as solider_module
from humanssl.pretrain import build_method
from humanssl.pretrain_config import PretrainConfig


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--backbone", default="swin_tiny", help="swin_tiny, swin_small, swin_base (swin_mini with --tiny)")
    p.add_argument("--batch", type=int, default=48, help="images per step (official: 48 per GPU)")
    p.add_argument("--precision", default="bf16", help="bf16, fp16, fp32 or auto")
    p.add_argument("--compile", action="store_true", help="torch.compile the student and teacher backbones")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--tiny", action="store_true",
                   help="CPU smoke settings: swin_mini, batch 8, 2x96x32 + 2x48x16, out_dim 1024")
    args = p.parse_args()
    backbone, batch = args.backbone, args.batch
    overrides = ["method=solider", f"train.precision={args.precision}"]
    if args.tiny:
        backbone, batch = "swin_mini", min(batch, 8)
        overrides += ["crops.global_size=[96,32]", "crops.local_size=[48,16]", "crops.local_number=2",
                      "dino.out_dim=1024", "dino.hidden_dim=256", "dino.bottleneck_dim=64",
                      "solider.part_head_hidden_dim=256", "solider.part_head_bottleneck_dim=64"]
    overrides.append(f"model.backbone={backbone}")
    cfg = load_config(PretrainConfig, None, overrides)  # the rest: the official recipe's defaults
    device = torch.device(args.device)
    method = build_method(cfg).to(device)
    method.configure(args.warmup + 2 * args.steps + 5, 1000)
    if args.compile:
        method.student.backbone.compile()
        method.teacher.backbone.compile()
    torch.manual_seed(0)
    data = random_crops(cfg, batch, device)
    step, precision = make_step(method, cfg.train.precision, device, data)
    g, l = cfg.crops.global_size, cfg.crops.local_size

    seconds = warm_then_time(step, device, args.steps, warmup=args.warmup)

    clustering = [0.0]
    original = solider_module.part_labels

    def timed_part_labels(*a, **k):
        sync(device)
        t = time.perf_counter()
        out = original(*a, **k)
        sync(device)
        clustering[0] += time.perf_counter() - t
        return out

    solider_module.part_labels = timed_part_labels
    try:
        seconds_synced = seconds_per_step(step, device, args.steps, first=args.warmup + args.steps)
    finally:
        solider_module.part_labels = original
    cluster_s = clustering[0] / args.steps

    print(json.dumps({
        "device": device_name(device), "date": datetime.date.today().isoformat(), "torch": torch.__version__,
        "backbone": backbone, "batch": batch, "precision": precision.name, "compile": args.compile,
        "crops": f"2x{g[0]}x{g[1]} + {cfg.crops.local_number}x{l[0]}x{l[1]}", "out_dim": cfg.dino.out_dim,
        "s_per_step": round(seconds, 4), "img_per_s": round(batch / seconds, 1),
        "clustering_s_per_step": round(cluster_s, 4), "clustering_fraction": round(cluster_s / seconds_synced, 4),
        "peak_mem_gb": peak_memory_gb(device),
    }))


if __name__ == "__main__":
    main()
