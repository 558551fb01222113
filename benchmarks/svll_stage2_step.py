"""Throughput of one SVLL-ReID stage-2 step (the image-encoder stage), in images per second.

    python benchmarks/svll_stage2_step.py --device cuda --precision fp16   # official: P x K = 16 x 4
    python benchmarks/svll_stage2_step.py --device cpu --batch 4

Model: CLIP ViT-B/16 with random weights at 256x128, the official person config (patch stride
12, camera SIE, 751 ids, SVLL image_mlp and text_mlp). The step: the image encoder on the batch
(with SIE) and on the two SSL views (without), ID + triplet + image-to-text + visual SimCLR
losses, backward, Adam (no gradient clipping, as released). Images and views are random tensors
already on the device; the frozen text features of all ids, computed once before stage 2, are
random here too. The optimizer's lr is the engine's placeholder 0: the update is computed as in
training, it just moves nothing. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import datetime
import json
from types import SimpleNamespace

import torch
from step_timing import device_name, make_step, peak_memory_gb, warm_then_time

from humanssl.methods.svll_reid import STAGE2, SvllReid
from humanssl.methods.svll_reid_settings import Stage1Settings, Stage2Settings
from humanssl.models.clip_reid import build_clip_reid


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=64, help="images per step (P x K)")
    p.add_argument("--size", type=int, nargs=2, default=(256, 128), metavar=("H", "W"))
    p.add_argument("--stride", type=int, default=12, help="patch stride (12 official SVLL, 16 no overlap)")
    p.add_argument("--ids", type=int, default=751)
    p.add_argument("--cameras", type=int, default=6)
    p.add_argument("--precision", default="auto")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_clip_reid(args.ids, input_size=tuple(args.size), stride=args.stride, random_init=True,
                            camera_num=args.cameras, sie_camera=True, ssl=True)
    method = SvllReid(model, Stage1Settings(), Stage2Settings(), SimpleNamespace(dataset=range(1))).to(device)
    method.begin_stage(STAGE2)
    method.text_bank = torch.randn(args.ids, model.image_encoder.proj_dim, device=device)
    n, shape = args.batch, (args.batch, 3, *args.size)
    k = min(4, max(n // 2, 1))  # K images per identity: 4 as released, 2 for tiny batches
    batch = {"image": torch.randn(shape, device=device), "pid": torch.arange(n, device=device) // k,
             "camid": torch.arange(n, device=device) % args.cameras,
             "views": [torch.randn(shape, device=device), torch.randn(shape, device=device)]}
    step, precision = make_step(method, args.precision, device, batch, "adam", clip=0.0)
    seconds = warm_then_time(step, device, args.steps, warmup=args.warmup)
    print(json.dumps({
        "device": device_name(device), "date": datetime.date.today().isoformat(), "torch": torch.__version__,
        "model": "ViT-B-16", "batch": n, "size": list(args.size), "stride": args.stride,
        "precision": precision.name, "s_per_step": round(seconds, 4), "img_per_s": round(n / seconds, 2),
        "peak_mem_gb": peak_memory_gb(device),
    }))


if __name__ == "__main__":
    main()
