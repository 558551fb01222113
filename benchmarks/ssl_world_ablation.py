"""Experiment (not a test): which parts of the synthetic person world stop self-supervision from
learning identities at CPU scale?

It switches camera effects of `humanssl.data.synthetic` off, then either
  * runs a small SimCLR probe (the DINO demo's two global crops, mini ResNet, 2-layer projector,
    NT-Xent at temperature 0.2, AdamW) and prints kNN re-id mAP / R1 every `--every` steps, or
  * with `-- pretrain ...` after the options, runs that `humanssl` command in the altered world
    (e.g. the DINO demo with overrides), which prints raw-pixel, random-init and pretrained kNN.

Switches (`--off`, comma-separated):
  scenery   every camera's scene becomes one flat grey (person, shadow and occluders stay)
  blur      every camera's scene is blurred to its colour gradient (no blocks or tiles)
  window    every image of a camera sees the same window of its scene
  cameras   every camera films camera 1's scene (the scene no longer says which camera it is)
  cast      no colour cast or brightness per camera
  occlusion no occluders
  view      views mixed within every camera (each camera's favourite view kept 25% of the time)
  scale     every camera frames people the same way (person height 0.9 of the image)
  loose     boxes as tight as a detector's: person heights 0.8-0.95 of the image, not 0.55-0.93
  colour    scenes muted: saturation x0.25, contrast x0.5 (textures and camera hues stay)
`--cast S` scales every camera's colour cast and brightness towards neutral (1 = as shipped).
cameras, cast, occlusion, view, loose, colour and --cast are the world's own dials
(`data.synthetic_effects`, humanssl/data/synthetic_effects.py), handed to the run as overrides;
the other switches are patched into this process. `scale` wins over `loose`.

    python benchmarks/ssl_world_ablation.py --off scenery,cast,occlusion,view --steps 150
    python benchmarks/ssl_world_ablation.py --off scenery -- pretrain method=dino train.seed=1
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import torch
from PIL import Image, ImageFilter

from humanssl.data import synthetic_render as R

SWITCHES = ("scenery", "blur", "window", "cameras", "cast", "occlusion", "view", "scale", "loose", "colour")


# Switches that are camera effects of the world itself (humanssl.data.synthetic_effects): they
# become `data.synthetic_effects` overrides; the others are patched into this process below.
EFFECTS = {
    "cameras": ["data.synthetic_effects.scenery_shared=true"],
    "cast": ["data.synthetic_effects.cast=0"],
    "occlusion": ["data.synthetic_effects.occlusion=0"],
    "view": ["data.synthetic_effects.view_bias=0"],
    "loose": ["data.synthetic_effects.person_height=[0.8,0.95]"],
    "colour": ["data.synthetic_effects.scenery_saturation=0.25", "data.synthetic_effects.scenery_contrast=0.5"],
}


def switch_off(names: set[str], cast: float = 1.0) -> list[str]:
    """Patch the world's samplers so the named non-effect switches vanish (this process only);
    return the config overrides for the named camera effects (and `--cast`)."""
    unknown = names - set(SWITCHES)
    if unknown:
        raise SystemExit(f"--off: unknown {sorted(unknown)}; choose from {', '.join(SWITCHES)}")
    if "scale" in names:
        names = names - {"loose"}
    pose, camera, scene = R.sample_pose, R.sample_camera, R.camera_background

    def sample_pose(seed, pid, camid, index, cam):
        p = pose(seed, pid, camid, index, cam)
        return dataclasses.replace(p, scenery_x=0.5) if "window" in names else p

    def sample_camera(seed, camid):
        c = camera(seed, camid)
        return dataclasses.replace(c, scale=0.9) if "scale" in names else c

    def camera_background(seed, camid, size):
        if "scenery" in names:
            return Image.new("RGB", (2 * size[1], size[0]), (120, 120, 120))
        img = scene(seed, camid, size)
        return img.filter(ImageFilter.GaussianBlur(radius=size[0] / 4)) if "blur" in names else img

    R.sample_pose, R.sample_camera, R.camera_background = sample_pose, sample_camera, camera_background
    overrides = [o for name in sorted(names & set(EFFECTS)) for o in EFFECTS[name]]
    if cast != 1.0 and "cast" not in names:
        overrides.append(f"data.synthetic_effects.cast={cast}")
    return overrides


def simclr_probe(args, effects: list[str]) -> None:
    from humanssl.cli import DEMO_PRETRAIN_DINO, demo_config_path
    from humanssl.config import load_config
    from humanssl.data.collate import collate_samples
    from humanssl.eval.knn import knn_reid
    from humanssl.losses.nt_xent import nt_xent_loss
    from humanssl.models.backbones import create_backbone
    from humanssl.pretrain import build_dataset, knn_sets
    from humanssl.pretrain_config import PretrainConfig

    cfg = load_config(PretrainConfig, demo_config_path(DEMO_PRETRAIN_DINO), [f"train.seed={args.seed}", *effects])
    torch.manual_seed(args.seed)
    data, (query, gallery) = build_dataset(cfg), knn_sets(cfg)
    cpu = torch.device("cpu")
    net = create_backbone(cfg.model.backbone)
    head = torch.nn.Sequential(torch.nn.Linear(net.embed_dim, 512), torch.nn.BatchNorm1d(512), torch.nn.ReLU(),
                               torch.nn.Linear(512, 128))
    print(f"world without {args.off or 'nothing'}; raw pixels {knn_reid(None, query, gallery, cpu)}")
    print(f"random init {knn_reid(net, query, gallery, cpu)}")
    opt = torch.optim.AdamW([*net.parameters(), *head.parameters()], lr=args.lr, weight_decay=1e-4)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch, shuffle=True, drop_last=True,
                                         num_workers=2, collate_fn=collate_samples, persistent_workers=True)
    step, start = 0, time.time()
    while step < args.steps:
        for batch in loader:
            views = batch["image"]  # the multi-crop list; the first two are the global crops
            z = head(net(torch.cat([views[0], views[1]])))
            loss = nt_xent_loss(*z.chunk(2), args.temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % args.every == 0 or step == args.steps:
                score = knn_reid(net, query, gallery, cpu)
                print(f"step {step}: loss {loss.item():.3f}, kNN {score}, {time.time() - start:.0f} s")
            if step == args.steps:
                break


def main() -> None:
    argv = sys.argv[1:]
    command = argv[argv.index("--") + 1:] if "--" in argv else None
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--off", default="", help=f"comma-separated, of {', '.join(SWITCHES)}")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--temperature", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cast", type=float, default=1.0, help="colour cast strength, 0 none, 1 as shipped")
    args = parser.parse_args(argv[: argv.index("--")] if command is not None else argv)
    effects = switch_off({s for s in args.off.split(",") if s}, args.cast)
    if command is None:
        simclr_probe(args, effects)
        return
    from humanssl.cli import main as humanssl

    sys.exit(humanssl([*command, *effects]))


if __name__ == "__main__":
    main()
