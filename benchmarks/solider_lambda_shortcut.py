"""Experiment (not a test): does SOLIDER's per-image lambda become a shortcut for DINO's targets?

SOLIDER gives the teacher and the student the same random lambda in {0, 1} per image, and the
semantic controller feeds lambda into every stage. A teacher whose output moves with lambda
hands the student a target it can predict from lambda alone, whatever the image. This script
trains SOLIDER in a world of `ssl_world_ablation.py` (its `--off` switches), with the official
single DINO centre or with one centre per lambda (`solider.center_per_lambda=true`), and then
reads the trained teacher on 256 unseen test images at lambda 0 and at lambda 1: how many
prototypes win an image (argmax of the head), and how many of them both lambdas share. Disjoint
small sets mean the targets say "which lambda" more than "which image".

    nice python benchmarks/solider_lambda_shortcut.py --off scenery,cast,occlusion,view \
        --out /tmp/shortcut [--center-per-lambda] [-- more overrides]

The run itself prints kNN re-id mAP before and after, as `humanssl pretrain` does.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dino_view_agreement import MILD_RUN  # noqa: E402
from ssl_world_ablation import SWITCHES, switch_off  # noqa: E402

# On top of the SOLIDER demo (`humanssl pretrain`): crops of 64x32 with the last stage kept at 4x2
# (the part clustering needs the tokens), the mild views under which DINO's two views agree at
# initialisation (benchmarks/README.md), 2,000 images, 20 epochs.
RUN = [
    "crops.global_size=[64,32]", "crops.local_size=[32,16]", *MILD_RUN,
    "model.strides=[4,2,2,1]", "model.drop_path=0",
    "data.synthetic_images=2000", "data.synthetic_identities=200",
    "train.batch_size=64", "train.epochs=20", "train.progress=false", "train.checkpoint_every=0",
]


def prototype_use(method, images: torch.Tensor) -> tuple[Counter, Counter]:
    """The teacher's winning prototype per image at lambda 0 and at lambda 1."""
    wins = []
    with torch.no_grad():
        for lam in (0.0, 1.0):
            pooled, _ = method.teacher.encode([images], [torch.full((len(images),), lam)])
            wins.append(Counter(method.teacher.head(torch.cat(pooled)).argmax(1).tolist()))
    return wins[0], wins[1]


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--off", default="", help=f"world switches, comma-separated, of {', '.join(SWITCHES)}")
    parser.add_argument("--out", required=True, help="folder for the run")
    parser.add_argument("--center-per-lambda", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    effects = switch_off({s for s in args.off.split(",") if s})

    from humanssl.cli import DEMO_PRETRAIN_SOLIDER, demo_config_path
    from humanssl.config import load_config
    from humanssl.pretrain import build_method, knn_sets, load_networks, run_pretrain
    from humanssl.pretrain_config import PretrainConfig

    name = "per_lambda" if args.center_per_lambda else "official"
    overrides = [*RUN, *effects, f"train.seed={args.seed}",
                 f"solider.center_per_lambda={str(args.center_per_lambda).lower()}",
                 f"train.output_dir={args.out}", f"train.run_name={name}", *extra]
    cfg = load_config(PretrainConfig, demo_config_path(DEMO_PRETRAIN_SOLIDER), overrides)
    summary = run_pretrain(cfg)
    method = build_method(cfg)
    load_networks(method, summary["run_dir"])  # the run's last checkpoint: student and teacher
    method.eval()
    query, _ = knn_sets(cfg)
    images = torch.stack([query[i]["image"] for i in range(min(256, len(query)))])
    at0, at1 = prototype_use(method, images)
    print(f"teacher prototypes winning {len(images)} test images: lambda 0: {len(at0)} "
          f"(most common {at0.most_common(3)}), lambda 1: {len(at1)} (most common {at1.most_common(3)}), "
          f"shared by both: {len(set(at0) & set(at1))}")


if __name__ == "__main__":
    main()
