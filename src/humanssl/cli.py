"""The `humanssl` command: one sub-command per thing a user does."""

from __future__ import annotations

import argparse
import sys
from importlib import resources

import yaml

from humanssl import __version__
from humanssl.config import load_config, to_dict
from humanssl.errors import UserError

# `humanssl pretrain` with no CONFIG: SOLIDER's demo unless another method is named; SS-PRL has
# its own (scenes, not people); DINO's demo serves method=dino and is the base method=saip adapts.
DEMO_PRETRAIN_SOLIDER = "demo_pretrain_solider.yaml"
DEMO_PRETRAIN_DINO = "demo_pretrain_dino.yaml"
DEMO_PRETRAIN_SSPRL = "demo_pretrain_ssprl.yaml"
DEMO_PRETRAIN_BY_METHOD = {None: DEMO_PRETRAIN_SOLIDER, "solider": DEMO_PRETRAIN_SOLIDER, "ssprl": DEMO_PRETRAIN_SSPRL}
DEMO_FINETUNE_REID = "demo_finetune_reid.yaml"
DEMO_FINETUNE_MULTILABEL = "demo_finetune_multilabel.yaml"
DEMO_FINETUNE_SVLL_REID = "demo_finetune_svll_reid.yaml"


def demo_config_path(name: str = DEMO_PRETRAIN_SOLIDER):
    return resources.files("humanssl") / "configs" / name


def run_recipe(schema, demo: str, config: str | None, overrides: list[str], show_config: bool, run) -> int:
    """Resolve a recipe (CONFIG, or the embedded demo, plus overrides), then print it or run it."""
    with resources.as_file(demo_config_path(demo)) as demo_path:
        cfg = load_config(schema, config or demo_path, overrides)
    if show_config:
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        return 0
    run(cfg)
    return 0


GAIT_METHODS = ("selfgait",)
DEMO_PRETRAIN_GAIT = "demo_pretrain_gait.yaml"
DEMO_FINETUNE_GAIT = "demo_finetune_gait.yaml"


def chosen_method(config: str | None, overrides: list[str]) -> str | None:
    """The `method` a CONFIG and its overrides name (None when neither does)."""
    from humanssl.config import parse_override, read_yaml

    method = read_yaml(config).get("method") if config else None
    for item in overrides:
        key, value = parse_override(item)
        if key == "method":
            method = value
    return method


def is_gait_method(config: str | None, overrides: list[str]) -> bool:
    """Gait methods (silhouette sequences) have their own recipe schema (humanssl.gait_config)."""
    return chosen_method(config, overrides) in GAIT_METHODS


def cmd_pretrain(args: argparse.Namespace) -> int:
    config, overrides = split_config_and_overrides(args.items)
    if is_gait_method(config, overrides):
        from humanssl.gait_config import GaitPretrainConfig
        from humanssl.pretrain_gait import run_pretrain_gait

        return run_recipe(GaitPretrainConfig, DEMO_PRETRAIN_GAIT, config, overrides, args.show_config,
                          run_pretrain_gait)
    from humanssl.pretrain import run_pretrain
    from humanssl.pretrain_config import PretrainConfig

    demo = DEMO_PRETRAIN_BY_METHOD.get(chosen_method(config, overrides), DEMO_PRETRAIN_DINO)
    return run_recipe(PretrainConfig, demo, config, overrides, args.show_config, run_pretrain)


# `humanssl finetune TASK`: where each task's runner and schema live (imported only when used)
# and the embedded demo it runs without a CONFIG.
FINETUNE_RECIPES = {
    "reid": ("humanssl.finetune:run_finetune", "humanssl.finetune_config:FinetuneConfig", DEMO_FINETUNE_REID),
    "svll-reid": ("humanssl.finetune_svll_reid:run_finetune_svll_reid",
                  "humanssl.finetune_svll_reid_config:SvllReidConfig", DEMO_FINETUNE_SVLL_REID),
    "gait": ("humanssl.finetune_gait:run_finetune_gait", "humanssl.gait_config:GaitFinetuneConfig",
             DEMO_FINETUNE_GAIT),
    "multilabel": ("humanssl.finetune_multilabel:run_finetune_multilabel",
                   "humanssl.finetune_multilabel_config:MultilabelFinetuneConfig", DEMO_FINETUNE_MULTILABEL),
}


def imported(target: str):
    """`module:name` -> the object."""
    from importlib import import_module

    module, name = target.split(":")
    return getattr(import_module(module), name)


def finetune_command(task: str):
    runner, schema, demo = FINETUNE_RECIPES[task]

    def command(args: argparse.Namespace) -> int:
        return run_recipe(imported(schema), demo, *split_config_and_overrides(args.items), args.show_config,
                          imported(runner))

    return command


def cmd_evaluate_multilabel(args: argparse.Namespace) -> int:
    from humanssl.finetune_multilabel import run_evaluate_multilabel

    run_evaluate_multilabel(args.checkpoint, args.data, args.dataset, split=args.split, output=args.output,
                            batch_size=args.batch_size, num_workers=args.num_workers, device=args.device)
    return 0


def model_options(args: argparse.Namespace) -> dict:
    from humanssl.evaluate import parse_options

    options = parse_options(args.backbone_option, "--backbone-option")
    if args.semantic_weight is not None:
        options["semantic_weight"] = args.semantic_weight
    return options


def cmd_evaluate_reid(args: argparse.Namespace) -> int:
    from humanssl.evaluate import parse_options, run_evaluate_reid

    run_evaluate_reid(args.checkpoint, args.data, args.dataset, backbone=args.backbone, part=args.part,
                      options=model_options(args), dataset_options=parse_options(args.option, "--option"),
                      size=args.image_size, mean=args.mean, std=args.std, rerank=args.rerank, flip=args.flip, save_ranks=args.save_ranks,
                      ranks_dir=args.ranks_dir, output=args.output, batch_size=args.batch_size,
                      num_workers=args.num_workers, device=args.device, progress=not args.no_progress)
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from humanssl.evaluate import run_extract

    run_extract(args.checkpoint, args.inputs, args.output, backbone=args.backbone, part=args.part,
                options=model_options(args), size=args.image_size, mean=args.mean, std=args.std, flip=args.flip, batch_size=args.batch_size,
                num_workers=args.num_workers, device=args.device, progress=not args.no_progress)
    return 0


def cmd_evaluate_gait(args: argparse.Namespace) -> int:
    from humanssl.evaluate_gait import run_evaluate_gait

    run_evaluate_gait(args.checkpoint, args.data, args.dataset, model=args.model, distance=args.distance,
                      official_divisor=args.official_divisor, output=args.output, heatmaps=args.heatmaps,
                      trust_checkpoint=args.trust_checkpoint, batch_size=args.batch_size,
                      num_workers=args.num_workers, device=args.device, progress=not args.no_progress)
    return 0


def cmd_gait_pretreat(args: argparse.Namespace) -> int:
    from humanssl.evaluate_gait import run_gait_pretreat

    run_gait_pretreat(args.src, args.dst, workers=args.workers, output=args.output, width=args.width,
                      progress=not args.no_progress)
    return 0


def refuse_existing(out, force: bool) -> None:
    """A converter never replaces an existing file unless --force is given."""
    if out.exists() and not force:
        raise UserError(f"{out} already exists; pass --force to replace it")


def cmd_convert_solider(args: argparse.Namespace) -> int:
    from pathlib import Path

    from humanssl import hub

    out = Path(args.output)
    refuse_existing(out, args.force)
    if out.suffix == ".safetensors":
        if args.to:
            raise UserError("--to chooses the layout of a .pth output; a .safetensors output is always a bare backbone")
        got = hub.convert_solider(args.input, out, which=args.part, trust_checkpoint=args.trust_checkpoint)
    else:
        got = hub.export_solider(args.input, out, layout=args.to or "teacher", trust_checkpoint=args.trust_checkpoint)
    print(f"wrote {out}: {got.describe()}")
    return 0


def cmd_convert_resnet(args: argparse.Namespace) -> int:
    from pathlib import Path

    from humanssl.hub.resnet_export import export_resnet_trunk

    out = Path(args.output)
    refuse_existing(out, args.force)
    count = export_resnet_trunk(args.input, out, args.to)
    print(f"wrote {out}: {count} tensors of the trunk in {args.to} naming")
    return 0


def cmd_sweep_lambda(args: argparse.Namespace) -> int:
    from humanssl.evaluate import parse_options
    from humanssl.sweep_lambda import run_sweep_lambda

    if args.dataset and not args.data:
        raise UserError("--dataset needs --data ROOT (without --data the built-in synthetic set is used)")
    run_sweep_lambda(args.checkpoint, data_root=args.data, dataset=args.dataset or "market1501", lambdas=args.lambdas,
                     output=args.output, plot=args.plot, backbone=args.backbone, part=args.part,
                     options=model_options(args), dataset_options=parse_options(args.option, "--option"),
                     size=args.image_size, mean=args.mean, std=args.std, flip=args.flip,
                     identities=args.identities, synthetic_seed=args.synthetic_seed, batch_size=args.batch_size,
                     num_workers=args.num_workers, device=args.device, progress=not args.no_progress)
    return 0


def cmd_parts(args: argparse.Namespace) -> int:
    from humanssl.parts import run_parts

    run_parts(args.checkpoint, args.inputs, args.output, num_parts=args.num_parts, max_images=args.max_images,
              columns=args.columns, backbone=args.backbone, part=args.part, options=model_options(args),
              size=args.image_size, mean=args.mean, std=args.std, batch_size=args.batch_size, seed=args.seed,
              device=args.device)
    return 0


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="CKPT",
                   help="a run folder, a checkpoint folder (runs/x/checkpoints/step_...) or a weights file")
    p.add_argument("--backbone", help="backbone name; needed for a weights file, else read from the run's config")
    p.add_argument("--part", choices=("teacher", "student"), default="teacher",
                   help="which network of a pretraining checkpoint (default: teacher)")
    p.add_argument("--semantic-weight", type=float, help="SOLIDER Swin's semantic weight lambda (default 0.2)")
    p.add_argument("--backbone-option", action="append", metavar="KEY=VALUE", help="extra backbone option (repeatable)")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"),
                   help="input size (default: the run's, or 256 128 for a weights file)")
    p.add_argument("--mean", type=float, nargs=3, metavar="M", help="normalisation mean (default: the run's, "
                   "or ImageNet's for a weights file; SOLIDER-REID models: 0.5 0.5 0.5)")
    p.add_argument("--std", type=float, nargs=3, metavar="S", help="normalisation std (as --mean)")
    p.add_argument("--flip", action="store_true", help="average features of each image and its mirror image")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def split_config_and_overrides(items: list[str]) -> tuple[str | None, list[str]]:
    """The first item is a YAML file unless it is a key=value override."""
    if items and "=" not in items[0]:
        return items[0], items[1:]
    return None, list(items)


def add_recipe_arguments(p: argparse.ArgumentParser, func) -> None:
    """What every training command takes: an optional CONFIG.yaml, overrides, --show-config."""
    p.add_argument("items", nargs="*", metavar="[CONFIG.yaml] [key=value ...]")
    p.add_argument("--show-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="humanssl",
        description="Self-supervised pretraining and evaluation for human-centric vision.",
        epilog="Run `humanssl COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"humanssl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser(
        "pretrain", help="self-supervised pretraining (default: SOLIDER demo on built-in synthetic people, CPU)",
        description="Pretrain a backbone. With no arguments: the embedded SOLIDER demo (synthetic people, "
                    "mini Swin, CPU, a few minutes) with kNN re-id at lambda 0.2 and 1.0 before and after; "
                    "method=dino alone runs the DINO demo (mini ResNet), method=ssprl the SS-PRL demo "
                    "(synthetic scenes). Otherwise "
                    "CONFIG.yaml and/or key=value overrides (e.g. train.epochs=10 data.root=/data); "
                    "overrides given without a CONFIG apply to the demo.")
    add_recipe_arguments(p, cmd_pretrain)

    p = sub.add_parser("finetune", help="supervised fine-tuning of a (pretrained) backbone on a downstream task",
                       description="Fine-tune a backbone on a downstream task.")
    tasks = p.add_subparsers(dest="task", metavar="TASK", required=True)
    t = tasks.add_parser(
        "reid", help="person / vehicle re-identification (BNNeck, cross-entropy + triplet, PK batches)",
        description="Fine-tune for re-identification. With no arguments: the embedded demo (synthetic "
                    "Market-1501-style people written into the run folder, tiny backbone, CPU, a few minutes) "
                    "with mAP of raw pixels and of the untrained model before training. Otherwise CONFIG.yaml "
                    "(e.g. configs/reid_market_swin_tiny.yaml) and/or key=value overrides such as "
                    "model.init=runs/x data.root=/data.")
    add_recipe_arguments(t, finetune_command("reid"))
    t = tasks.add_parser(
        "svll-reid", help="re-id with CLIP (SVLL-ReID: CLIP-ReID's two stages + language and visual self-supervision)",
        description="Train SVLL-ReID in one run: stage 1 learns identity prompts against cached CLIP image features "
                    "(+ NT-Xent on augmented prompts), stage 2 fine-tunes the image encoder (ID, triplet, image-to-text "
                    "+ NT-Xent on erased views). With no arguments: the embedded demo (tiny random CLIP, synthetic "
                    "Market-1501-style people, CPU, a few minutes). Otherwise CONFIG.yaml (e.g. "
                    "configs/svll_reid_market_vitb16.yaml) and/or overrides such as clip.weights=ViT-B-16.pt "
                    "data.root=/data; the run folder works with `humanssl evaluate reid --checkpoint RUN`.")
    add_recipe_arguments(t, finetune_command("svll-reid"))
    t = tasks.add_parser(
        "gait", help="gait recognition (SelfGait encoder, per-strip triplet loss, P x M batches, label rate)",
        description="Fine-tune a SelfGait encoder for gait recognition with GaitSet's per-strip batch-all "
                    "triplet loss. With no arguments: the embedded demo (synthetic CASIA-B walkers written into "
                    "the run folder, CPU, a few minutes). Otherwise CONFIG.yaml and/or key=value overrides such "
                    "as model.init=runs/selfgait-x data.root=/data/CASIA-B label_rate=0.1; the CASIA-B "
                    "cross-view rank-1 before and after lands in RUN/eval.json.")
    add_recipe_arguments(t, finetune_command("gait"))
    t = tasks.add_parser(
        "multilabel", help="multi-label classification (linear probe, full or semi-supervised fine-tuning; mAP)",
        description="Train a linear head (model.mode=linear: frozen trunk, the linear-probe protocol) or the whole "
                    "network (model.mode=full; data.label_fraction<1: semi-supervised) with BCE on image-level "
                    "labels, then report per-class AP and mAP (final and best epoch) in RUN/eval.json. With no "
                    "arguments: the embedded demo (synthetic scenes, mini ResNet, CPU). Otherwise CONFIG.yaml "
                    "(e.g. configs/multilabel_voc_linear.yaml) and/or key=value overrides such as "
                    "model.init=runs/ssprl-x data.root=/data/VOCdevkit.")
    add_recipe_arguments(t, finetune_command("multilabel"))

    p = sub.add_parser("evaluate", help="evaluate a checkpoint on a downstream benchmark",
                       description="Evaluate a checkpoint on a downstream benchmark.")
    tasks = p.add_subparsers(dest="task", metavar="TASK", required=True)
    t = tasks.add_parser(
        "reid", help="re-id retrieval: mAP, CMC rank-1/5/10, mINP",
        description="Retrieval metrics of a checkpoint's backbone on a re-id test set (query vs. gallery, "
                    "Market-1501 protocol; VehicleID: mean over its 10 seeded draws, no camera filter).")
    add_model_arguments(t)
    t.add_argument("--data", required=True, metavar="ROOT", help="the dataset's folder (csv: the CSV file)")
    t.add_argument("--dataset", default="market1501", help="dataset name (default market1501)")
    t.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="dataset loader option, e.g. test_size=1600 for VehicleID (repeatable)")
    t.add_argument("--rerank", action="store_true", help="also report k-reciprocal re-ranking (k1 20, k2 6, lambda 0.3)")
    t.add_argument("--save-ranks", type=int, default=0, metavar="N",
                   help="write a PNG with the top-10 gallery images of each of the first N queries")
    t.add_argument("--ranks-dir", help="folder for --save-ranks (default: beside -o, else ./ranks)")
    t.add_argument("-o", "--output", metavar="results.json", help="write the results as JSON")
    t.set_defaults(func=cmd_evaluate_reid)
    t = tasks.add_parser(
        "gait", help="cross-view gait recognition: rank-1 per condition (NM/BG/CL) and mAP",
        description="Standard cross-view protocol on the test split (CASIA-B: subjects 075-124, gallery NM#1-4, "
                    "probes NM#5-6 / BG#1-2 / CL#1-2, 11 views; OU-MVLP: probe 00 vs gallery 01, 14 views), "
                    "all frames of every sequence. Rank-1 per probe view excludes the identical gallery view.")
    t.add_argument("--checkpoint", required=True, metavar="CKPT",
                   help="a SelfGait run or checkpoint folder, an official GaitSet *-encoder.ptm, an official "
                        "SelfGait model_*.pth, or a .safetensors state dict")
    t.add_argument("--data", required=True, metavar="ROOT", help="the pretreated dataset's folder (PNG or .pkl)")
    t.add_argument("--dataset", choices=("casiab", "oumvlp"), default="casiab", help="default casiab")
    t.add_argument("--model", choices=("gaitset", "selfgait"), help="default: recognised from the weights")
    t.add_argument("--distance", choices=("euclidean", "part_mean", "cosine"),
                   help="default: euclidean for GaitSet, part_mean (mean per-strip distance) for SelfGait")
    t.add_argument("--official-divisor", action="store_true",
                   help="divide the off-diagonal row sum by 10 as the official code does (wrong for OU-MVLP's 14 views)")
    t.add_argument("-o", "--output", metavar="results.json", help="write the results as JSON")
    t.add_argument("--heatmaps", metavar="DIR", help="folder for the rank-1 heat-map PNGs (default: beside -o)")
    t.add_argument("--trust-checkpoint", action="store_true",
                   help="allow a full pickle (runs code from the file); only for files from a source you trust")
    t.add_argument("--batch-size", type=int, default=4, help="whole sequences per forward pass (default 4)")
    t.add_argument("--num-workers", type=int, default=2)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_evaluate_gait)
    t = tasks.add_parser(
        "multilabel", help="multi-label classification: per-class AP and mAP of a fine-tuned model",
        description="Per-class AP and mAP (scikit-learn's AP, ties against positives, VOC difficult pairs left "
                    "out) of a `humanssl finetune multilabel` run on a test set.")
    t.add_argument("--checkpoint", required=True, metavar="RUN",
                   help="a `humanssl finetune multilabel` run or checkpoint folder")
    t.add_argument("--data", metavar="ROOT", help="VOCdevkit / COCO folder, the test CSV (csv); not for synthetic")
    t.add_argument("--dataset", required=True, choices=("voc", "voc2007", "voc2012", "coco", "coco2014", "csv", "synthetic"))
    t.add_argument("--split", help="test split (default: VOC07 test, COCO val2014, synthetic test)")
    t.add_argument("-o", "--output", metavar="results.json", help="write the results as JSON")
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--num-workers", type=int, default=2)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.set_defaults(func=cmd_evaluate_multilabel)

    p = sub.add_parser("extract", help="features of images with a checkpoint's backbone (.npy)",
                       description="L2-normalised backbone features of image files and folders (searched "
                                   "recursively), saved as an (N, D) .npy array with the image paths beside it.")
    add_model_arguments(p)
    p.add_argument("inputs", nargs="+", metavar="IMAGES_OR_FOLDERS")
    p.add_argument("-o", "--output", required=True, metavar="feats.npy")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser(
        "gait-pretreat", help="pre-treat raw gait silhouettes (crop, resize to height 64, centre, cut to 64x44)",
        description="Pre-treat every sequence of SRC (CASIA-B raw <subject>/<type>/<view>/*.png, OU-MVLP as "
                    "distributed or rearranged) into DST, as GaitSet's and OpenGait's pretreatment do: near-empty "
                    "frames dropped, sequences with fewer than 5 frames reported.")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    p.add_argument("--workers", type=int, default=4, help="processes (0 or 1: in this one; default 4)")
    p.add_argument("--output", choices=("png", "pickle"), default="png",
                   help="png: one PNG per frame; pickle: OpenGait's one .pkl per sequence (default png)")
    p.add_argument("--width", type=int, default=44,
                   help="output width (default 44; 64 writes the official tools' 64x64 frames)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_gait_pretreat)

    p = sub.add_parser("convert", help="official checkpoints in and out; pretrained trunks for detection code",
                       description="Convert released checkpoints of a system to humanssl's safetensors and back.")
    systems = p.add_subparsers(dest="system", metavar="SYSTEM", required=True)
    t = systems.add_parser(
        "solider", help="SOLIDER Swin backbones (training checkpoint, checkpoint_tea.pth, bare, Microsoft Swin)",
        description="IN.pth -> OUT.safetensors writes the backbone as a bare safetensors state dict with SOLIDER "
                    "names; IN -> OUT.pth writes it back for the official code (--to teacher: checkpoint_tea.pth "
                    "layout, bare, or microsoft).")
    t.add_argument("input", metavar="IN")
    t.add_argument("-o", "--output", required=True, metavar="OUT")
    t.add_argument("--part", choices=("teacher", "student"), default="teacher",
                   help="which network of a full training checkpoint (default: teacher)")
    t.add_argument("--to", choices=("teacher", "bare", "microsoft"), help="layout of a .pth output (default teacher)")
    t.add_argument("--trust-checkpoint", action="store_true",
                   help="allow a full pickle (runs code from the file); only for files from a source you trust")
    t.add_argument("--force", action="store_true", help="replace OUT if it exists")
    t.set_defaults(func=cmd_convert_solider)
    t = systems.add_parser(
        "ssprl", help="an SS-PRL run's ResNet trunk for detection / segmentation (torchvision .pth, Detectron2 .pkl)",
        description="RUN -> OUT writes the pretrained ResNet trunk of a humanssl pretraining run (a run, "
                    "checkpoints or step folder): --to torchvision gives a state dict for "
                    "torchvision.models.resnet50().load_state_dict(..., strict=False) (no fc); --to detectron2 "
                    "gives a .pkl for MODEL.WEIGHTS with Detectron2's backbone names (stem, res2..res5).")
    t.add_argument("input", metavar="RUN")
    t.add_argument("-o", "--output", required=True, metavar="OUT")
    t.add_argument("--to", default="torchvision",  # checked by hub.resnet_export, which lists the layouts
                   help="naming of the output: torchvision or detectron2 (default torchvision)")
    t.add_argument("--force", action="store_true", help="replace OUT if it exists")
    t.set_defaults(func=cmd_convert_resnet)

    p = sub.add_parser(
        "sweep-lambda", help="kNN re-id mAP / R1 of a SOLIDER Swin at several semantic weights (table, JSON, plot)",
        description="Cosine retrieval (query vs. gallery, Market-1501 protocol) with a SOLIDER Swin's features at "
                    "each semantic weight lambda, on a re-id dataset (--data ROOT --dataset NAME) or, without "
                    "--data, on held-out people of the built-in synthetic world. Prints a table, writes JSON and "
                    "a PNG line plot.")
    add_model_arguments(p)
    p.add_argument("--data", metavar="ROOT", help="a re-id dataset's folder (default: the built-in synthetic set)")
    p.add_argument("--dataset", help="dataset name with --data (default market1501)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="dataset loader option (repeatable)")
    p.add_argument("--lambdas", type=float, nargs="+", metavar="L",
                   help="semantic weights in [0, 1] (default 0 0.2 0.4 0.6 0.8 1.0)")
    p.add_argument("--identities", type=int, default=50, help="synthetic set: identities (default 50)")
    p.add_argument("--synthetic-seed", type=int, default=0, help="synthetic set: world seed (default 0)")
    p.add_argument("-o", "--output", default="sweep_lambda.json", metavar="sweep.json",
                   help="results as JSON (default sweep_lambda.json)")
    p.add_argument("--plot", metavar="sweep.png", help="line plot (default: -o with .png)")
    p.set_defaults(func=cmd_sweep_lambda)

    p = sub.add_parser(
        "parts", help="a PNG grid of images with SOLIDER's clustered part maps overlaid",
        description="For each image: the teacher's last-stage tokens at lambda 1, clustered into parts as in "
                    "SOLIDER's pretraining (foreground by token norm, parts numbered top to bottom), drawn as "
                    "colours over the image (background left clear). Images whose foreground is not a majority "
                    "(skipped by the pretraining) are marked 'not kept'.")
    p.add_argument("--checkpoint", required=True, metavar="CKPT",
                   help="a run folder, a checkpoint folder (runs/x/checkpoints/step_...) or a weights file")
    p.add_argument("--backbone", help="backbone name; needed for a weights file, else read from the run's config")
    p.add_argument("--part", choices=("teacher", "student"), default="teacher",
                   help="which network of a pretraining checkpoint (default: teacher)")
    p.add_argument("--backbone-option", action="append", metavar="KEY=VALUE", help="extra backbone option (repeatable)")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"),
                   help="input size (default: the run's, or 256 128 for a weights file)")
    p.add_argument("--mean", type=float, nargs=3, metavar="M", help="normalisation mean (default: the run's or ImageNet's)")
    p.add_argument("--std", type=float, nargs=3, metavar="S", help="normalisation std (as --mean)")
    p.add_argument("inputs", nargs="+", metavar="IMAGES_OR_FOLDER")
    p.add_argument("-o", "--output", required=True, metavar="parts.png")
    p.add_argument("--num-parts", type=int, default=3, help="parts besides the background (default 3, SOLIDER's)")
    p.add_argument("--max-images", type=int, default=16, help="draw at most this many images (default 16)")
    p.add_argument("--columns", type=int, default=4, help="images per row of the grid (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the k-means++ initialisation (default 0)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.set_defaults(func=cmd_parts, semantic_weight=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except UserError as err:
        print(f"humanssl: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("humanssl: interrupted; the last checkpoint is intact (continue with train.resume=auto)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
