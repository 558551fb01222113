"""Experiment (not a test): does SelfGait's BYOL target tell one clip from another at the start?

BYOL learns only what its target carries. For every `selfgait.head_norm` this builds SelfGait at
its initialisation, in train mode as in a step, and feeds it synthetic walkers (one clip per
walker and view; the two BYOL views are the official per-frame flips). It prints:

- the mean cosine between different clips' targets, taken as the official loss takes it
  (along the 31 strips, per channel): near 1 means any clip's target is nearly every clip's;
- the same cosine between the targets of a clip's two views. When it is no higher than the
  first, matching a clip's target needs no knowledge of which clip it is.

    python benchmarks/selfgait_target_information.py [--walkers 16] [--frames 10] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from humanssl.data.synthetic_gait import render_sequence
from humanssl.methods.selfgait import SelfGait, SelfGaitConfig

VIEWS = ("000", "054", "090", "126", "180")


def clips(walkers: int, frames: int, world: int) -> torch.Tensor:
    seqs = [render_sequence(world, pid, "nm-01", VIEWS[pid % len(VIEWS)], frames) for pid in range(1, walkers + 1)]
    return torch.from_numpy(np.stack(seqs)).float() / 255.0


def strip_cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, n) mean cosine along the strips, per channel, between every row of a and of b."""
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)  # (n, strips, channels), unit along the strips
    return torch.einsum("npc,mpc->nm", a, b) / a.shape[-1]


@torch.no_grad()
def measure(head_norm: str, batch: torch.Tensor, seed: int) -> dict:
    torch.manual_seed(seed)
    method = SelfGait(SelfGaitConfig(head_norm=head_norm)).train()
    view_1, view_2 = method.views({"silhouettes": batch})
    cos = strip_cosines(method.target(view_1), method.target(view_2))
    other = ~torch.eye(len(batch), dtype=torch.bool)
    return {"between clips": float(cos[other].mean()), "two views of a clip": float(cos.diagonal().mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--walkers", type=int, default=16)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0, help="seed of the networks' initialisation")
    ap.add_argument("--world", type=int, default=0, help="seed of the synthetic walkers")
    args = ap.parse_args()
    batch = clips(args.walkers, args.frames, args.world)
    print(f"{args.walkers} walkers, one clip of {args.frames} frames each, views {', '.join(VIEWS)} in turn")
    print("target cosine   head_norm=pooled (official)   head_norm=per_strip")
    rows = {h: measure(h, batch, args.seed) for h in ("pooled", "per_strip")}
    for key in ("between clips", "two views of a clip"):
        print(f"{key:<20} {rows['pooled'][key]:22.4f} {rows['per_strip'][key]:21.4f}")


if __name__ == "__main__":
    main()
