"""Experiment (not a test): how spread out are a gait encoder's features over the test walkers?

A BYOL run whose features contract towards one direction maps every sequence to nearly the
same feature; kNN rank-1 then falls below the random encoder's and fine-tuning starts from a
worse point than scratch. This prints, for the random encoder and for each run folder given,
the mean cosine between the features of different test sequences and the effective rank of the
centred features (the exponential of the entropy of their normalised squared singular values).

    python benchmarks/gait_feature_spread.py runs/selfgait-x [runs/selfgait-y ...]

The test sequences are the subjects from 075 in the first run's `synthetic_casiab` tree
(`--root` names another CASIA-B tree); `--sequences` caps how many are read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from humanssl.data.gait import load_casiab
from humanssl.data.gait.splits import CASIAB_TEST
from humanssl.evaluate_gait import extract_gait_features
from humanssl.finetune_gait import build_encoder
from humanssl.gait_config import GaitModelConfig


def spread(features: torch.Tensor) -> tuple[float, float]:
    """(mean cosine between different rows, effective rank of the centred rows)."""
    f = features.flatten(1).double()
    unit = torch.nn.functional.normalize(f, dim=1)
    cos = unit @ unit.T
    n = len(f)
    mean_cos = (cos.sum() - cos.diagonal().sum()) / (n * n - n)
    s2 = torch.linalg.svdvals(f - f.mean(0)) ** 2
    p = s2 / s2.sum()
    return float(mean_cos), float(torch.exp(-(p * p.clamp_min(1e-30).log()).sum()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="SelfGait run folders (pretraining or fine-tuning)")
    ap.add_argument("--root", help="CASIA-B tree with the test walkers (default: the first run's synthetic tree)")
    ap.add_argument("--sequences", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0, help="seed of the random encoder")
    args = ap.parse_args()
    root = Path(args.root or Path(args.runs[0]) / "synthetic_casiab")
    test = [s for s in load_casiab(root) if s.subject in CASIAB_TEST][: args.sequences]
    if len(test) < 2:
        raise SystemExit(f"{root}: needs at least 2 sequences of CASIA-B test subjects (075-124), found {len(test)}")
    torch.manual_seed(args.seed)
    for name, init in [("random init", None)] + [(run, run) for run in args.runs]:
        features, _ = extract_gait_features(build_encoder(GaitModelConfig(init=init)), test, torch.device("cpu"))
        mean_cos, rank = spread(features)
        print(f"{name:40s} mean cosine {mean_cos:.4f}   effective rank {rank:5.1f}   ({len(features)} sequences)")


if __name__ == "__main__":
    main()
