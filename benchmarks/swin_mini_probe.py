"""Experiment (not a test): what holds the mini Swin back in the world where DINO learns?

Two modes, both in the synthetic world made easy from the dials alone (README, "The synthetic
person world": one shared flat scene, no casts, occluders or viewpoint preferences), both
scored by kNN re-id on unseen identities at 64x32:
  * DINO (default): the mild-views DINO demo of the README with `model.backbone=swin_mini` (or
    `--backbone`), the Swin's shape changed by `--arch` (keys of humanssl.models.swin.ARCHS,
    e.g. patch_size, window_size, embed_dims, depths) and `--strides`;
  * `--supervised N`: the same backbone trained N steps with identity labels (cross-entropy on
    200 other synthetic identities, 4 cameras x 2 images each, flips only, AdamW, linear warm-up
    of `--warmup` steps), to see how fast the architecture can learn identity at all.

The Swin starts from its own init (truncated normal 0.02); the tables measured before that
default (benchmarks/README.md) used PyTorch's, which `-- model.torch_default_init=true` restores.

    python benchmarks/swin_mini_probe.py --arch '{"patch_size": 2}' --strides 2,2,2,2 -- train.epochs=5
    python benchmarks/swin_mini_probe.py --supervised 155 --warmup 30 --arch '{"patch_size": 2, "window_size": 2}' --strides 2,2,2,2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dino_view_agreement import MILD_RUN  # noqa: E402

EASY_WORLD = [
    "data.synthetic_effects.scenery_shared=true", "data.synthetic_effects.scenery_saturation=0",
    "data.synthetic_effects.scenery_contrast=0", "data.synthetic_effects.cast=0",
    "data.synthetic_effects.occlusion=0", "data.synthetic_effects.view_bias=0",
]
# The README's DINO run in that world (310 steps at train.epochs=10; 155 at 5).
DINO_RUN = [*MILD_RUN, "model.drop_path=0", "train.progress=false", "train.checkpoint_every=0"]


def supervised(cfg, steps: int, lr: float, warmup: int) -> None:
    from humanssl.data.synthetic import SyntheticLabeled, SyntheticPersons, labeled_split
    from humanssl.data.transforms import eval_transform
    from humanssl.eval.knn import knn_scores
    from humanssl.models.backbones import create_backbone
    from humanssl.pretrain import backbone_options, knn_sets

    torch.manual_seed(cfg.train.seed)
    query, gallery = knn_sets(cfg)
    size = tuple(cfg.crops.global_size)
    # identities of another world seed: never the kNN identities
    world = SyntheticPersons(seed=cfg.train.seed + 123, num_cameras=6, image_size=size, effects=cfg.data.synthetic_effects)
    a, b = labeled_split(world, 200, first_pid=1, images_per_camera=2, cameras_per_identity=4)
    train = SyntheticLabeled(a + b, world, eval_transform(size, cfg.crops.mean, cfg.crops.std))
    images = torch.stack([train[i]["image"] for i in range(len(train))])
    _, targets = torch.unique(torch.tensor([train[i]["pid"] for i in range(len(train))]), return_inverse=True)
    net = create_backbone(cfg.model.backbone, **backbone_options(cfg.model))
    classifier = torch.nn.Linear(net.embed_dim, int(targets.max()) + 1)
    opt = torch.optim.AdamW([*net.parameters(), *classifier.parameters()], lr=lr, weight_decay=0.05)
    cpu = torch.device("cpu")
    print("random init", knn_scores(net, "random", query, gallery, cpu))
    start = time.time()
    for step in range(steps):
        pick = torch.randint(len(images), (cfg.train.batch_size,))
        x = images[pick]
        x = torch.where(torch.rand(len(x), 1, 1, 1) < 0.5, x.flip(3), x)
        loss = torch.nn.functional.cross_entropy(classifier(net(x)), targets[pick])
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup) if warmup else lr
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    scores = knn_scores(net, f"supervised, {steps} steps", query, gallery, cpu)
    print({name: round(s["mAP"], 1) for name, s in scores.items()}, f"loss {loss.item():.3f}, {time.time() - start:.0f} s")


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="swin_mini")
    parser.add_argument("--arch", default="{}", help="JSON: changes to humanssl.models.swin.ARCHS['swin_mini']")
    parser.add_argument("--strides", default="", help="e.g. 2,2,2,2 (the first must equal the patch size)")
    parser.add_argument("--supervised", type=int, default=0, help="train N steps with labels instead of DINO")
    parser.add_argument("--lr", type=float, default=1e-3, help="supervised mode")
    parser.add_argument("--warmup", type=int, default=0, help="supervised mode: warm-up steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)

    from humanssl.cli import DEMO_PRETRAIN_DINO, demo_config_path
    from humanssl.config import load_config
    from humanssl.models import swin
    from humanssl.pretrain import run_pretrain
    from humanssl.pretrain_config import PretrainConfig

    swin.ARCHS["swin_mini"].update(json.loads(args.arch))  # this process only
    strides = [f"model.strides=[{args.strides}]"] if args.strides else []
    overrides = [*DINO_RUN, *EASY_WORLD, f"model.backbone={args.backbone}", *strides, f"train.seed={args.seed}", *extra]
    cfg = load_config(PretrainConfig, demo_config_path(DEMO_PRETRAIN_DINO), overrides)
    if args.supervised:
        supervised(cfg, args.supervised, args.lr, args.warmup)
    else:
        run_pretrain(cfg)


if __name__ == "__main__":
    main()
