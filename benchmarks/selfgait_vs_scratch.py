"""Experiment (not a test): does SelfGait BYOL before triplet fine-tuning beat fine-tuning from
scratch, with few labels, on the synthetic walkers?

It writes one synthetic CASIA-B tree (world 0: 40 training and 20 test walkers, 5 views, normal
walks), then for every seed runs, through the `humanssl` commands:

- scratch: `finetune gait` from a random encoder;
- BYOL: `pretrain method=selfgait` with the chosen SelfGait settings, then `finetune gait` from
  it with the per-strip FCs started afresh (`model.fresh_part_fcs=true`).

Both fine-tunings keep the labels of 10% of the training walkers (4 ids) and take the same
steps. `train.seed` sets the networks' init, the sampling and which ids keep labels. It prints
NM rank-1 (identical views excluded) on the 20 test walkers, per seed and as a mean.

    python benchmarks/selfgait_vs_scratch.py --out /tmp/sg [--seeds 0 1 2 3 4] [--official]

`--official` pretrains with the official heads, views and batches instead of the three
unofficial settings this repository measured (README, Gait). About 10 minutes per seed on a
2-core CPU.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from humanssl.cli import main as humanssl
from humanssl.engine.distributed import DistInfo
from humanssl.gait_config import GaitDataConfig, SyntheticGaitConfig
from humanssl.pretrain_gait import synthetic_casiab

NM = ["nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06"]
VIEWS = ["000", "054", "090", "126", "180"]
UNOFFICIAL = ["selfgait.head_norm=per_strip", "selfgait.stretch=[0.6,1.4]", "sampler.group_by=view"]
FINETUNE = ["label_rate=0.1", "sampler.p=4", "sampler.m=4"]


def write_tree(out: Path) -> Path:
    """The setting's tree, written once (into out/synthetic_casiab) by the code behind
    `data.source=synthetic`."""
    walkers = SyntheticGaitConfig(seed=0, train_ids=40, test_ids=20, types=NM, views=VIEWS, frames=(12, 14))
    one_process = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    return synthetic_casiab(GaitDataConfig(source="synthetic", synthetic=walkers), out, 0, one_process)


def nm_rank1(run: Path) -> float:
    return json.loads((run / "eval.json").read_text())["fine-tuned"]["rank1"]["NM"]


def run(command: list[str]) -> None:
    if humanssl(command) != 0:
        raise SystemExit(f"failed: humanssl {' '.join(command)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the tree and the runs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--byol-steps", type=int, default=100)
    ap.add_argument("--finetune-steps", type=int, default=60)
    ap.add_argument("--official", action="store_true", help="pretrain with the official SelfGait settings")
    args = ap.parse_args()
    tree = write_tree(args.out)
    name = "official" if args.official else "unofficial"
    rows = []
    for seed in args.seeds:
        common = ["data.source=casiab", f"data.root={tree}", "data.split=casiab", f"train.seed={seed}",
                  f"train.output_dir={args.out}", "train.progress=false", "train.checkpoint_every=0"]
        finetune = ["finetune", "gait", *common, *FINETUNE, f"train.max_steps={args.finetune_steps}"]
        run([*finetune, f"train.run_name=scratch-{seed}"])
        byol = f"byol-{name}-{seed}"
        run(["pretrain", "method=selfgait", *common, f"train.max_steps={args.byol_steps}", f"train.run_name={byol}",
             *([] if args.official else UNOFFICIAL)])
        run([*finetune, f"model.init={args.out / byol}", "model.fresh_part_fcs=true",
             f"train.run_name={byol}-finetuned"])
        # rounded as printed, so that the gain column is the difference of the two shown
        rows.append((seed, round(nm_rank1(args.out / f"scratch-{seed}"), 1),
                     round(nm_rank1(args.out / f"{byol}-finetuned"), 1)))
    print(f"\nNM rank-1 after {args.finetune_steps} fine-tuning steps, 4 labelled ids ({name} BYOL settings)")
    print("seed  scratch  BYOL  gain")
    for seed, scratch, byol in rows:
        print(f"{seed:>4} {scratch:8.1f} {byol:5.1f} {byol - scratch:+5.1f}")
    mean = [sum(r[i] for r in rows) / len(rows) for i in (1, 2)]
    print(f"mean {mean[0]:8.1f} {mean[1]:5.1f} {mean[1] - mean[0]:+5.1f}")


if __name__ == "__main__":
    main()
