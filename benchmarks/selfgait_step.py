"""Throughput of one SelfGait (BYOL) training step, in silhouette sequences per second.

    python benchmarks/selfgait_step.py --device cuda --precision bf16     # the official batch
    python benchmarks/selfgait_step.py --device cpu --batch 16 --frames 10

The official batch is P x M = 8 x 16 = 128 sequences of 30 frames of 64x44 silhouettes.
Sequences are random binary tensors already on the device (loading excluded); the step is the
engine's: both views through the online branch, the target branch, the symmetric BYOL loss,
backward, SGD, the EMA update. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import datetime
import json

import torch
from step_timing import device_name, make_step, peak_memory_gb, warm_then_time

from humanssl.methods.selfgait import SelfGait


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=128, help="sequences per step (P x M)")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--size", type=int, nargs=2, default=(64, 44), metavar=("H", "W"))
    p.add_argument("--precision", default="auto")
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    device = torch.device(args.device)
    method = SelfGait().to(device)
    method.configure(args.steps + 5, 1000)
    clips = (torch.rand(args.batch, args.frames, *args.size, device=device) > 0.7).float()
    step, precision = make_step(method, args.precision, device, {"silhouettes": clips}, "sgd", clip=0.0)
    seconds = warm_then_time(step, device, args.steps, warmup=2)
    print(json.dumps({
        "device": device_name(device), "date": datetime.date.today().isoformat(), "torch": torch.__version__,
        "batch": args.batch, "frames": args.frames, "size": list(args.size), "precision": precision.name,
        "s_per_step": round(seconds, 4), "sequences_per_s": round(args.batch / seconds, 1),
        "peak_mem_gb": peak_memory_gb(device),
    }))


if __name__ == "__main__":
    main()
