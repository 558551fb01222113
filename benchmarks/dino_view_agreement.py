"""Experiment (not a test): do two augmented views of one image look alike to a freshly built
DINO teacher?

DINO's first targets come from the random teacher. If its outputs for the two global crops of
one image are hardly closer than for two different images, the student cannot predict the
target from the other view, the cheapest fit is the batch mean, and the run drifts into the
uniform output (loss stuck near log(out_dim)). This script measures that agreement for the
DINO demo's data and network, with the multi-crop augmentations switched on one at a time.

For each variant it prints the cosine between the two views of the same image, after
subtracting the batch mean (so 0 is "no more alike than any two images"), for raw crops, the
backbone's pooled feature and the head output:

    python benchmarks/dino_view_agreement.py                       # the world as shipped
    python benchmarks/dino_view_agreement.py --off scenery,cast,occlusion,view
    python benchmarks/dino_view_agreement.py --set crops.jitter_prob=0.3 crops.grayscale_prob=0
"""

from __future__ import annotations

import argparse
import random

import torch
import torch.nn.functional as F

from ssl_world_ablation import SWITCHES, switch_off

# The milder views under which the DINO demo's loss leaves log(out_dim) (benchmarks/README.md).
MILD = ["crops.jitter_prob=0.3", "crops.grayscale_prob=0", "crops.blur_radius=[0.025,0.5]", "crops.solarize_prob=0"]
# The short DINO run with the mild views (README, "The synthetic person world"): no local crops,
# a 4096-way head, a fast teacher and no frozen last layer or long warm-up, for a few hundred steps.
MILD_RUN = [*MILD, "crops.local_number=0", "dino.out_dim=4096", "dino.momentum_teacher=0.95",
            "dino.freeze_last_layer_epochs=0", "optim.warmup_epochs=0.2", "optim.lr=0.004"]
NO_AUGMENTATION = ["crops.jitter_prob=0", "crops.grayscale_prob=0", "crops.blur_probs=[0,0,0]",
                   "crops.solarize_prob=0", "crops.global_scale=[1.0,1.0]", "crops.flip_prob=0"]
ONE_AT_A_TIME = {
    "colour jitter p 0.8": ["crops.jitter_prob=0.8"],
    "grayscale p 0.2": ["crops.grayscale_prob=0.2"],
    "blur p 1.0 / 0.1": ["crops.blur_probs=[1.0,0.1,0.5]"],
    "solarise p 0.2": ["crops.solarize_prob=0.2"],
    "crop scale 0.8-1": ["crops.global_scale=[0.8,1.0]"],
    "flip p 0.5": ["crops.flip_prob=0.5"],
}


def same_image_cosine(features: torch.Tensor) -> float:
    """Rows are [view 1 of images 0..B-1, view 2 of images 0..B-1]."""
    f = F.normalize(features - features.mean(0, keepdim=True), dim=-1)
    half = f.shape[0] // 2
    return (f[:half] * f[half:]).sum(-1).mean().item()


def demo_config(overrides: list[str]):
    from humanssl.cli import DEMO_PRETRAIN_DINO, demo_config_path
    from humanssl.config import load_config
    from humanssl.pretrain_config import PretrainConfig

    return load_config(PretrainConfig, demo_config_path(DEMO_PRETRAIN_DINO), ["crops.local_number=0", *overrides])


def fresh_teacher():
    """The demo's teacher at initialisation; crop settings do not change it, so one serves all rows."""
    from humanssl.pretrain import build_method

    cfg = demo_config([])
    torch.manual_seed(cfg.train.seed)
    return build_method(cfg).teacher


def agreement(teacher, overrides: list[str], images: int) -> tuple[float, float, float]:
    from humanssl.data.collate import collate_samples
    from humanssl.data.device_multicrop import DeviceMultiCrop
    from humanssl.pretrain import build_dataset

    cfg = demo_config(overrides)
    torch.manual_seed(cfg.train.seed)  # the same crop draws in every row (blur radii come from `random`)
    random.seed(cfg.train.seed)
    data = build_dataset(cfg)
    batch = collate_samples([data[i] for i in range(images)])
    if cfg.crops.on_device:
        batch = DeviceMultiCrop(cfg.crops)(batch)
    x = torch.cat(batch["image"][:2])
    with torch.no_grad():
        pooled = teacher.backbone(x)
        head = teacher.head(pooled)
    return same_image_cosine(x.flatten(1)), same_image_cosine(pooled), same_image_cosine(head)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--off", default="", help=f"world effects to switch off: {', '.join(SWITCHES)}")
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides for the full-recipe row")
    parser.add_argument("--images", type=int, default=256)
    args = parser.parse_args()
    # the camera effects come back as config overrides; every row needs them to see the same world
    effects = switch_off({s for s in args.off.split(",") if s})
    rows = {"full recipe (demo)": args.set, "mild views": MILD + args.set, "no augmentation": NO_AUGMENTATION}
    rows.update({f"only {name}": NO_AUGMENTATION + extra for name, extra in ONE_AT_A_TIME.items()})
    teacher = fresh_teacher()
    print(f"{'views':28s} raw crops  backbone  head   (same-image cosine, batch mean removed)")
    for name, overrides in rows.items():
        raw, pooled, head = agreement(teacher, effects + overrides, args.images)
        print(f"{name:28s} {raw:9.3f} {pooled:9.3f} {head:6.3f}")


if __name__ == "__main__":
    main()
