"""Experiment (not a test): is a SAIP-pretrained ViT more robust to the query's scale than a
DINO-only one?

Both runs train the same 130k-parameter SAIP ViT (`saip_vit_mini`, anchor grid of the 128x64
global views) on the built-in synthetic people with the same person views (2 global 128x64,
7 local 64x32), head size, optimiser, lr schedule, teacher momentum and number of steps:
  * saip      - the full method (CSM with two rescaled views + attention distillation, CSR, CSS);
  * dino      - DINO's loss on the 9 views, nothing else (humanssl.methods.dino);
  * saip_csm  - (with --ablation) SAIP with only the CSM representation term: DINO plus the
                two rescaled views, no attention, reconstruction or search terms.
Then two retrievals with the query images resized by 0.5 ... 1.5 (bicubic) before they enter
the network, the gallery at 128x64, so the network has to bridge the scale on its own:
  * re-id: kNN re-id mAP on unseen synthetic identities (query / gallery as `humanssl
    pretrain`'s monitor);
  * instance: each query image must find itself, at 128x64, among all 900 query and gallery
    images (R1 %): how far a rescaled input moves a feature compared with the gaps between images.
`--eval-only` re-evaluates the checkpoints of an earlier run in `--out`.

    nice -n 19 env OMP_NUM_THREADS=1 python benchmarks/saip_scale_robustness.py --steps 400 --out /tmp/saip_scale
    python benchmarks/saip_scale_robustness.py --steps 900 --init dino --easy --out /tmp/saip_easy
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from humanssl.config import load_config
from humanssl.data.collate import collate_samples
from humanssl.data.synthetic import SyntheticLabeled
from humanssl.data.transforms import eval_transform
from humanssl.engine import checkpoint
from humanssl.engine.distributed import DistInfo
from humanssl.engine.trainer import Trainer
from humanssl.eval.knn import extract, knn_reid
from humanssl.eval.reid import evaluate_features
from humanssl.methods.dino import DINO
from humanssl.models.saip_network import saip_backbone
from humanssl.models.saip_vit import freeze_unreached_by_pooled
from humanssl.pretrain import build_dataset, build_method
from humanssl.pretrain import knn_sets as pretrain_knn_sets
from humanssl.pretrain_config import PretrainConfig

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "saip_vit_tiny.yaml"
SCALES = (0.5, 0.75, 1.0, 1.25, 1.5)


def overrides(steps: int, batch: int) -> list[str]:
    """The CPU demo of the recipe's comments, with an lr and momentum that move in a short run."""
    return [
        "data.source=synthetic", "data.synthetic_images=2000", "data.synthetic_identities=200",
        "model.backbone=saip_vit_mini", "crops.global_size=[128,64]", "crops.local_size=[64,32]",
        "saip_views.reference_size=[112,112]",
        "saip.out_dim=1024", "saip.hidden_dim=256", "saip.bottleneck_dim=64", "saip.momentum_teacher=0.99",
        "saip.decoder_embed_dim=64", "saip.decoder_depth=2", "saip.decoder_num_heads=4",
        "saip.css_hidden_dim=64", "saip.css_num_heads=4",
        "dino.out_dim=1024", "dino.hidden_dim=256", "dino.bottleneck_dim=64", "dino.momentum_teacher=0.99",
        "dino.freeze_last_layer_epochs=0", "dino.warmup_teacher_temp=0.04",
        f"train.max_steps={steps}", f"train.batch_size={batch}", "train.accumulation=1", "train.num_workers=1",
        "train.progress=false", "train.log_every=25", "train.device=cpu",
        "optim.lr=0.005", "optim.warmup_epochs=0.5",
    ]


def build(variant: str, cfg: PretrainConfig):
    if variant == "dino":
        cfg.method = "dino"

        def make_backbone(drop_path: float):
            model = saip_backbone("saip_vit_mini", cfg.crops.global_size, drop_path, cfg.saip.pos_resample,
                                  init=cfg.saip.vit_init)
            freeze_unreached_by_pooled(model)  # DINO never reads the intermediate tokens
            return model

        return build_dataset(cfg), DINO(make_backbone, cfg.dino, drop_path=cfg.model.drop_path)
    if variant == "saip_csm":
        for term in ("csm_att", "csr", "css_inst", "css_roi"):
            setattr(cfg.saip, f"{term}_weight", 0.0)
    return build_dataset(cfg), build_method(cfg)


class Rendered(torch.utils.data.Dataset):
    """Labelled images rendered once (the five query scales reuse them), transformed on read."""

    def __init__(self, labeled: SyntheticLabeled, transform=None):
        self.samples = [labeled[i] for i in range(len(labeled))]
        self.items, self.transform = labeled.items, transform  # items: pids and camids for kNN

    def with_transform(self, transform) -> "Rendered":
        out = Rendered.__new__(Rendered)
        out.samples, out.items, out.transform = self.samples, self.items, transform
        return out

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return {**self.samples[i], "image": self.transform(self.samples[i]["image"])}


def knn_sets(cfg: PretrainConfig) -> tuple[Rendered, Rendered]:
    """`humanssl pretrain`'s kNN query and gallery (unseen people of the training world), rendered
    once without a transform so each query scale can bring its own."""
    return tuple(Rendered(SyntheticLabeled(s.items, s.world)) for s in pretrain_knn_sets(cfg))


def knn_at_scales(backbone, cfg: PretrainConfig, sets, scales=SCALES) -> dict[str, float]:
    size = tuple(cfg.crops.global_size)
    query, gallery = sets
    gallery = gallery.with_transform(eval_transform(size, cfg.crops.mean, cfg.crops.std))
    out = {}
    for s in scales:
        q_size = (round(size[0] * s), round(size[1] * s))
        scaled = query.with_transform(eval_transform(q_size, cfg.crops.mean, cfg.crops.std))
        out[str(s)] = knn_reid(backbone, scaled, gallery, torch.device("cpu"), 128)["mAP"]
    return out


def instance_at_scales(backbone, cfg: PretrainConfig, sets, scales=SCALES) -> dict[str, float]:
    size = tuple(cfg.crops.global_size)
    query, gallery = sets
    native = [d.with_transform(eval_transform(size, cfg.crops.mean, cfg.crops.std)) for d in sets]
    gf = torch.cat([extract(backbone, d, torch.device("cpu"), 128)[0] for d in native])
    g_ids = torch.arange(len(gf))  # every image is its own identity; the queries are the first ones
    out = {}
    for s in scales:
        q_size = (round(size[0] * s), round(size[1] * s))
        qf = extract(backbone, query.with_transform(eval_transform(q_size, cfg.crops.mean, cfg.crops.std)),
                     torch.device("cpu"), 128)[0]
        q_ids = torch.arange(len(qf))
        result = evaluate_features(qf, gf, q_ids, g_ids, use_cameras=False, junk_pid=None)
        out[str(s)] = 100.0 * result.rank1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ablation", action="store_true", help="also train SAIP with its CSM term only")
    parser.add_argument("--out", type=Path, default=Path("runs/saip_scale_robustness"))
    parser.add_argument("--eval-only", action="store_true", help="evaluate the checkpoints already in --out")
    parser.add_argument("--init", choices=["official", "dino"], default="official", help="saip.vit_init of both models")
    parser.add_argument("--easy", action="store_true",
                        help="the world made from the dials and the mild views of swin_mini_probe.py")
    args = parser.parse_args()
    extra = [f"train.seed={args.seed}", f"saip.vit_init={args.init}"]
    if args.easy:
        from dino_view_agreement import MILD
        from swin_mini_probe import EASY_WORLD

        extra += [*EASY_WORLD, *MILD]

    variants = ["saip", "dino"] + (["saip_csm"] if args.ablation else [])
    results, sets = {}, None
    for variant in variants:
        cfg = load_config(PretrainConfig, RECIPE, overrides(args.steps, args.batch) + extra)
        torch.manual_seed(cfg.train.seed)
        dataset, method = build(variant, cfg)
        if sets is None:
            sets = knn_sets(cfg)
            backbone = method.downstream_backbone()
            results["random init"] = {"re-id": knn_at_scales(backbone, cfg, sets),
                                      "instance": instance_at_scales(backbone, cfg, sets)}
            print("random init", results["random init"], flush=True)
        t0 = time.perf_counter()
        if args.eval_only:
            method.load_state_dict(checkpoint.load_weights(checkpoint.resolve(args.out / variant)))
        else:
            trainer = Trainer(method, dataset, collate_samples, train=cfg.train, optim=cfg.optim,
                              run_dir=args.out / variant, dist=DistInfo(0, 1, 0, torch.device("cpu")),
                              config_yaml="")
            print(variant, "last losses", trainer.fit().last_losses, flush=True)
        backbone = method.downstream_backbone()
        results[variant] = {"re-id": knn_at_scales(backbone, cfg, sets),
                            "instance": instance_at_scales(backbone, cfg, sets),
                            "seconds": round(time.perf_counter() - t0, 1)}
        print(variant, results[variant], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    for metric, title in (("re-id", "kNN re-id mAP (%)"), ("instance", "same-image R1 (%)")):
        print(f"\n{title} by query scale, {args.steps} steps x {args.batch} images")
        print("variant      " + "".join(f"{s:>8}" for s in SCALES))
        for name, row in results.items():
            print(f"{name:<12} " + "".join(f"{row[metric][str(s)]:8.1f}" for s in SCALES))


if __name__ == "__main__":
    main()
