"""Throughput of one SS-PRL training step, in images per second.

    python benchmarks/ssprl_step.py --device cuda --precision bf16            # the official step
    python benchmarks/ssprl_step.py --device cuda --precision bf16 --queue    # after epoch 80
    python benchmarks/ssprl_step.py --device cpu --batch 4 --steps 2

The official COCO recipe (configs/ssprl_r50_coco.yaml): ResNet-50, 64 images per GPU, each with
2 x 224 + 6 x 96 global crops and two pyramid levels of 2 views each, 2x2 patches of 112 and 3x3
patches of 96 (44 trunk passes per image in all); 300 global and 150 + 150 local prototypes.
Crops are random tensors already on the device (loading excluded); the step is the engine's:
forward, Sinkhorn codes, the three losses, backward, LARC-wrapped SGD, prototype freezing and
the queue pushes. `--queue` starts the feature queues (global 1920, local 5000 rows, as from
epoch 80 on) and fills them during the warm-up, so the timed steps run Sinkhorn over the queue
too. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import datetime
import json

import torch
from step_timing import device_name, make_step, peak_memory_gb, warm_then_time

from humanssl.methods.ssprl import SSPRL, SSPRLConfig
from humanssl.models.backbones import create_backbone


def random_views(cfg: SSPRLConfig, batch: int, sizes: tuple[int, int], patches: list[int], device) -> dict:
    """The batch the SS-PRL views produce: global crops by size, then each level's patches."""
    crops = [torch.randn(batch, 3, s, s, device=device)
             for n, s in zip(cfg.nmb_crops, sizes) for _ in range(n)]
    data = {"image": crops}
    for i, (g, views, p) in enumerate(zip(cfg.grid_perside, cfg.nmb_loc_views, patches)):
        data[f"patches{i}"] = [torch.randn(batch, 3, p, p, device=device) for _ in range(views * g * g)]
    return data


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--batch", type=int, default=64, help="images per step (the official 64 per GPU)")
    p.add_argument("--precision", default="auto")
    p.add_argument("--queue", action="store_true", help="time the step with full feature queues")
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    device = torch.device(args.device)
    cfg = SSPRLConfig(epoch_queue_starts=0 if args.queue else 10**9)
    method = SSPRL(cfg, backbone=create_backbone(args.backbone, drop_path_rate=0.0)).to(device)
    method.configure(10**9, 1)  # one step per "epoch": with --queue the queues start at once
    # with --queue, enough untimed steps to fill every queue (rows per image: 1 global, g^2 local)
    rows_per_image = [(cfg.queue_length, 1)] + [(n, g * g) for n, g in zip(cfg.local_queue_length, cfg.grid_perside)]
    fill = max(-(-n // (k * args.batch)) for n, k in rows_per_image)
    warmup = fill + 1 if args.queue else 2
    data = random_views(cfg, args.batch, (224, 96), [112, 96], device)
    step, precision = make_step(method, args.precision, device, data, "sgd", clip=0.0)
    seconds = warm_then_time(step, device, args.steps, warmup=warmup)
    print(json.dumps({
        "device": device_name(device), "date": datetime.date.today().isoformat(), "torch": torch.__version__,
        "backbone": args.backbone, "batch": args.batch, "queue": args.queue, "precision": precision.name,
        "s_per_step": round(seconds, 4), "img_per_s": round(args.batch / seconds, 1),
        "peak_mem_gb": peak_memory_gb(device),
        "queues_full": all(q.full for q in [method.queue, *method.local_queues]),
    }))


if __name__ == "__main__":
    main()
