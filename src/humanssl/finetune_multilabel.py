"""`humanssl finetune multilabel` and `humanssl evaluate multilabel`: a (pretrained) trunk, a linear
head, BCE on image-level labels, and per-class AP / mAP (notes/ssprl_selfgait_svll.md §1.6).

The run writes RUN/eval.json: the mAP of the final model ("final", with per-class AP) and, when
`eval.every_epochs` evaluates during training, every epoch's mAP and the best of them ("best").
The paper's (and the official code's) reported number is the best-epoch mAP; the final-epoch
mAP is the one that does not look at the test set to choose.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from torchvision import transforms as T

from humanssl.data.collate import collate_samples
from humanssl.data.multilabel import build_multilabel
from humanssl.engine import checkpoint, distributed
from humanssl.engine.evaluating_trainer import EvaluatingTrainer
from humanssl.engine.launch import launch, open_run
from humanssl.errors import UserError
from humanssl.eval.multilabel import MultiLabelScores, multilabel_map
from humanssl.evaluate import pick_device, read_saved_config, select_backbone_tensors
from humanssl.finetune import build_backbone
from humanssl.finetune_multilabel_config import DataConfig, MultilabelFinetuneConfig, TransformConfig
from humanssl.methods.multilabel_finetune import MultilabelFinetune
from humanssl.results_file import record_evaluation, write_results

METHOD_NAME = "multilabel"
EVAL_FILE = "eval.json"
CLASSES_FILE = "classes.json"


# ----------------------------------------------------------------------------- building blocks


def train_transform(cfg: TransformConfig):
    steps = [T.RandomResizedCrop(cfg.size, scale=tuple(cfg.scale))]
    if cfg.flip:
        steps.append(T.RandomHorizontalFlip())
    return T.Compose(steps + [T.ToTensor(), T.Normalize(cfg.mean, cfg.std)])


def test_transform(cfg: TransformConfig):
    return T.Compose([T.Resize(cfg.resize), T.CenterCrop(cfg.size), T.ToTensor(), T.Normalize(cfg.mean, cfg.std)])


def build_split(cfg: DataConfig, which: str, transform, seed: int):
    train_split, test_split = cfg.splits()
    s = cfg.synthetic
    if cfg.dataset == "synthetic":
        n = s.train_images if which == "train" else s.test_images
        return build_multilabel("synthetic", None, which, transform, seed=seed if s.seed is None else s.seed,
                                num_images=n, image_size=tuple(s.image_size))
    if cfg.dataset == "csv":
        root = cfg.root if which == "train" else cfg.test_root
        if root is None:
            raise UserError(f"data.dataset=csv needs data.{'root' if which == 'train' else 'test_root'}: "
                            "the CSV file of (path, labels) for that split")
        return build_multilabel("csv", root, "", transform)
    return build_multilabel(cfg.dataset, cfg.root, train_split if which == "train" else test_split, transform)


def labelled_subset(dataset, fraction: float, seed: int):
    """The semi-supervised split: `fraction` of the images, drawn once with `seed` (at least one)."""
    if fraction >= 1:
        return dataset
    n = len(dataset)
    keep = np.sort(np.random.default_rng(seed).permutation(n)[:max(1, round(fraction * n))])
    return Subset(dataset, keep.tolist())


def classes_of(dataset) -> list[str]:
    return list(getattr(dataset, "classes"))


@torch.no_grad()
def predict(method: MultilabelFinetune, dataset, device, batch_size: int = 128, num_workers: int = 0):
    """(scores, labels, difficult) over a test set, in eval mode; the model's mode is restored."""
    was_training = method.training
    method.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_samples)
    scores, labels, difficult = [], [], []
    try:
        for batch in loader:
            scores.append(method.logits(batch["image"].to(device)).float().cpu())
            labels.append(batch["labels"])
            difficult.append(batch["difficult"])
    finally:
        method.train(was_training)
    return torch.cat(scores), torch.cat(labels), torch.cat(difficult)


def score(method, dataset, device, batch_size: int = 128, num_workers: int = 0) -> MultiLabelScores:
    scores, labels, difficult = predict(method, dataset, device, batch_size, num_workers)
    return multilabel_map(scores, labels, difficult, classes=classes_of(dataset))


def as_record(s: MultiLabelScores) -> dict:
    names = s.classes or [str(i) for i in range(len(s.per_class_ap))]
    return {"mAP": s.mAP, "per_class_ap": {n: (None if np.isnan(a) else float(a)) for n, a in zip(names, s.per_class_ap)}}


# ----------------------------------------------------------------------------- the run


def run_finetune_multilabel(cfg: MultilabelFinetuneConfig, echo=print) -> dict:
    return launch(_run, cfg, cfg.train, echo)


def _run(cfg: MultilabelFinetuneConfig, dist, echo) -> dict:
    run_dir, resume_from, config_yaml = open_run(cfg, cfg.train, METHOD_NAME, dist, echo)
    seed = cfg.train.seed
    full_train = build_split(cfg.data, "train", train_transform(cfg.transforms), seed)
    test = build_split(cfg.data, "test", test_transform(cfg.transforms), seed)
    classes = classes_of(full_train)
    if classes_of(test) != classes:
        raise UserError(f"the test set's classes {classes_of(test)} differ from the training set's {classes}")
    train = labelled_subset(full_train, cfg.data.label_fraction, cfg.data.label_seed)
    method = MultilabelFinetune(build_backbone(cfg.model), len(classes), mode=cfg.model.mode,
                                trunk_lr_scale=cfg.model.trunk_lr_scale)
    echo(f"{cfg.data.dataset}: {len(train)} labelled training images (of {len(full_train)}), {len(test)} test "
         f"images, {len(classes)} classes; backbone {cfg.model.backbone} from {cfg.model.init or 'random init'}, "
         f"mode {cfg.model.mode}, {dist.world_size} process(es) on {dist.device}")
    if dist.is_main:
        (run_dir / CLASSES_FILE).write_text(json.dumps(classes))

    e = cfg.eval
    scores_path = run_dir / EVAL_FILE
    scores = json.loads(scores_path.read_text()) if scores_path.is_file() else {}

    def evaluate_during(trainer: EvaluatingTrainer, stage_step: int) -> None:
        s = score(trainer.method, test, dist.device, e.batch_size, cfg.train.num_workers)
        epoch = stage_step / trainer.steps_per_epoch
        record = {"step": trainer.global_step + 1, "epoch": epoch, "eval_mAP": s.mAP}
        record_evaluation(scores, scores_path, record, trainer.log)
        echo(f"epoch {epoch:g}: mAP {s.mAP:.1f}")

    steps_per_epoch = (len(train) // (cfg.train.batch_size * dist.world_size)) // cfg.train.accumulation
    trainer = EvaluatingTrainer(
        method, train, collate_samples, train=cfg.train, optim=cfg.optim, run_dir=run_dir, dist=dist,
        config_yaml=config_yaml, resume_from=resume_from,
        evaluate_every=e.every_epochs * steps_per_epoch, evaluate_fn=evaluate_during)
    result = trainer.fit()
    summary = {"run_dir": str(run_dir), "steps": result.steps, "finished": result.finished,
               "checkpoint": str(trainer.last_checkpoint)}
    if dist.is_main and result.finished:
        final = score(method, test, dist.device, e.batch_size, cfg.train.num_workers)
        scores["final"] = {"epoch": cfg.train.epochs, **as_record(final)}
        during = scores.get("during training", []) + [{"epoch": cfg.train.epochs, "eval_mAP": final.mAP}]
        best = max(during, key=lambda r: r["eval_mAP"])
        scores["best"] = {"epoch": best["epoch"], "mAP": best["eval_mAP"]}
        scores["reported"] = "best is the paper's number (best epoch on the test set); final is the last epoch"
        scores_path.write_text(json.dumps(scores, indent=2))
        echo(final.table())
        echo(f"mAP final {final.mAP:.1f}, best {best['eval_mAP']:.1f} (epoch {best['epoch']:g})")
        echo(f"checkpoint: {trainer.last_checkpoint}")
        echo(f"scores: {scores_path}")
    summary["eval"] = scores
    distributed.barrier()
    return summary


# ----------------------------------------------------------------------------- evaluate


def load_multilabel_model(ckpt: str | Path) -> tuple[MultilabelFinetune, MultilabelFinetuneConfig, list[str]]:
    """A `humanssl finetune multilabel` run or checkpoint folder: trunk + head, its config and classes."""
    from humanssl.config import build

    path = Path(ckpt)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path} (expected a `humanssl finetune multilabel` run or checkpoint folder)")
    if path.is_file():
        raise UserError(f"{path} is a file; `humanssl evaluate multilabel` needs a `humanssl finetune multilabel` "
                        "run or checkpoint folder (its linear head holds the classes). For a pretrained trunk, "
                        f"first train a probe: humanssl finetune multilabel model.init={path} ...")
    step = checkpoint.resolve(path)
    saved = read_saved_config(step)
    if saved.get("task") != "multilabel":
        raise UserError(f"{step} is not a multi-label fine-tuning run (its config has no task: multilabel); for a "
                        f"pretrained trunk, first train a probe: humanssl finetune multilabel model.init={path} ...")
    cfg = build(MultilabelFinetuneConfig, saved, "")
    tensors = checkpoint.load_weights(step)
    if "head.weight" not in tensors:
        raise UserError(f"{step / checkpoint.WEIGHTS}: no head.weight; expected a multi-label fine-tuned model")
    model_cfg = cfg.model
    model_cfg.init = None
    backbone = build_backbone(model_cfg)
    method = MultilabelFinetune(backbone, tensors["head.weight"].shape[0], mode="full")
    from humanssl.evaluate import load_state_into

    load_state_into(method.backbone, select_backbone_tensors(tensors), str(step / checkpoint.WEIGHTS))
    method.head.load_state_dict({"weight": tensors["head.weight"], "bias": tensors["head.bias"]})
    classes_file = next((p / CLASSES_FILE for p in (step, step.parent.parent) if (p / CLASSES_FILE).is_file()), None)
    classes = json.loads(classes_file.read_text()) if classes_file else [str(i) for i in range(method.head.out_features)]
    return method, cfg, classes


def run_evaluate_multilabel(ckpt, data_root: str | None, dataset: str, *, split: str | None = None,
                            output=None, batch_size: int = 128, num_workers: int = 0, device: str = "auto",
                            echo=print) -> dict:
    method, cfg, classes = load_multilabel_model(ckpt)
    dev = pick_device(device)
    data = DataConfig(dataset="voc2007" if dataset == "voc" else "coco2014" if dataset == "coco" else dataset,
                      root=data_root, test_root=data_root, test_split=split, synthetic=cfg.data.synthetic)
    if data.dataset not in ("voc2007", "voc2012", "coco2014", "csv", "synthetic"):
        raise UserError(f"--dataset {dataset!r}: expected voc, coco, csv or synthetic")
    test = build_split(data, "test", test_transform(cfg.transforms), cfg.train.seed)
    if len(classes_of(test)) != len(classes):
        raise UserError(f"the model has {len(classes)} classes ({', '.join(classes[:5])}...) but {dataset} has "
                        f"{len(classes_of(test))}; expected a model fine-tuned on the same label set")
    s = score(method.to(dev), test, dev, batch_size, num_workers)
    echo(s.table())
    result = {"checkpoint": str(ckpt), "dataset": data.dataset, "images": len(test), **as_record(s)}
    if output:
        write_results(output, result, echo)
    return result
