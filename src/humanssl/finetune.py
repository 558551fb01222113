"""`humanssl finetune reid`: dataset -> BNNeck model -> engine, with retrieval scores before and after.

Before training (once per run, kept across resumes): mAP of raw pixels and of the model as
initialised. After training: the fine-tuned model (and with re-ranking when asked). Everything
lands in RUN/eval.json and one table. The training identities' pid -> label mapping goes into
the run folder and every checkpoint folder (pid2label.json), so a classifier row can always be
matched to its identity.
"""

from __future__ import annotations

import json
from pathlib import Path

from humanssl.data.collate import collate_samples
from humanssl.data.pk_sampler import PKSampler
from humanssl.data.reid import ReidDataset, ReidImages, load_reid_dataset
from humanssl.data.reid_transforms import reid_test_transform, reid_train_transform
from humanssl.data.synthetic import SyntheticPersons, write_market1501
from humanssl.engine import checkpoint, distributed
from humanssl.engine.evaluating_trainer import EvaluatingTrainer
from humanssl.engine.launch import launch, open_run
from humanssl.errors import UserError
from humanssl.evaluate import load_state_into, score_backbone, select_backbone_tensors, table
from humanssl.finetune_config import DataConfig, FinetuneConfig, ModelConfig
from humanssl.methods.reid_finetune import ReidFinetune
from humanssl.models.backbones import create_backbone
from humanssl.results_file import record_evaluation

METHOD_NAME = "reid"
SYNTHETIC_FOLDER = "synthetic_market1501"
PID2LABEL = "pid2label.json"
EVAL_FILE = "eval.json"


# ----------------------------------------------------------------------------- building blocks


def synthetic_market(cfg: DataConfig, run_dir: Path, seed: int, dist) -> Path:
    """Write the synthetic Market-1501 folder into the run folder once (main process)."""
    root = run_dir / SYNTHETIC_FOLDER
    done = root / ".complete"
    if dist.is_main and not done.is_file():
        s = cfg.synthetic
        world = SyntheticPersons(seed=seed if s.seed is None else s.seed, num_cameras=s.cameras,
                                 image_size=tuple(s.image_size))
        counts = write_market1501(root, world, num_train_ids=s.train_ids, num_test_ids=s.test_ids,
                                  images_per_camera=s.images_per_camera, cameras_per_identity=s.cameras_per_identity,
                                  num_distractors=s.distractors, num_junk=s.junk, overwrite=True)
        done.write_text(json.dumps(counts))
    distributed.barrier()
    return root


def build_dataset(cfg: DataConfig, run_dir: Path, seed: int, dist) -> ReidDataset:
    if cfg.dataset == "synthetic":
        return load_reid_dataset("market1501", synthetic_market(cfg, run_dir, seed, dist), **cfg.options)
    if cfg.root is None:
        raise UserError(f"data.root is required with data.dataset={cfg.dataset} (the dataset's folder)")
    return load_reid_dataset(cfg.dataset, cfg.root, **cfg.options)


def build_backbone(cfg: ModelConfig):
    """The backbone, initialised from `model.init` when given."""
    init = Path(cfg.init) if cfg.init else None
    if init is not None and not init.exists():
        raise UserError(f"model.init: {init} not found (expected a humanssl run or checkpoint folder, "
                        "a .pth/.pt state dict or a .safetensors file)")
    if init is not None and init.is_file() and init.suffix != ".safetensors":
        return create_backbone(cfg.backbone, weights=str(init), **cfg.backbone_options)
    backbone = create_backbone(cfg.backbone, **cfg.backbone_options)
    if init is None:
        return backbone
    if init.is_dir():
        step = checkpoint.resolve(init)
        tensors, origin = checkpoint.load_weights(step), str(step / checkpoint.WEIGHTS)
    else:
        from safetensors.torch import load_file

        try:
            tensors, origin = load_file(str(init)), str(init)
        except Exception as err:  # noqa: BLE001 - a damaged file means the same to a user
            raise UserError(f"model.init: cannot read {init}: {err}") from None
    load_state_into(backbone, select_backbone_tensors(tensors, cfg.init_part), origin)
    return backbone


def build_method(cfg: FinetuneConfig, ds: ReidDataset) -> ReidFinetune:
    label2pid = ds.label2pid
    m = cfg.model
    return ReidFinetune(build_backbone(m), ds.num_train_pids, cfg.loss, neck=m.neck,
                        pid_of_label=[label2pid[i] for i in range(ds.num_train_pids)], freeze=m.freeze,
                        bias_lr_scale=m.bias_lr_scale, decay_norms_and_biases=m.decay_norms_and_biases)


class FinetuneTrainer(EvaluatingTrainer):
    """The evaluating trainer plus pid2label.json in every checkpoint folder."""

    def __init__(self, *args, pid2label: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.pid2label_json = json.dumps({str(k): v for k, v in pid2label.items()})

    def save(self, *args) -> None:
        super().save(*args)
        if self.dist.is_main and self.last_checkpoint is not None:
            checkpoint.write_atomically(self.last_checkpoint / PID2LABEL, self.pid2label_json)


# ----------------------------------------------------------------------------- the run


def run_finetune(cfg: FinetuneConfig, echo=print) -> dict:
    return launch(_run, cfg, cfg.train, echo)


def _run(cfg: FinetuneConfig, dist, echo) -> dict:
    run_dir, resume_from, config_yaml = open_run(cfg, cfg.train, METHOD_NAME, dist, echo)
    ds = build_dataset(cfg.data, run_dir, cfg.train.seed, dist)
    echo(ds.summary())
    method = build_method(cfg, ds)
    sampler = PKSampler([it.pid for it in ds.train], cfg.sampler.p, cfg.sampler.k, seed=cfg.train.seed,
                        rank=dist.rank, world_size=dist.world_size)
    if sampler.batches_per_epoch < cfg.train.accumulation:
        raise UserError(
            f"{ds.name}: {ds.num_train_pids} training ids give {sampler.batches_per_epoch} batches of "
            f"sampler.p={cfg.sampler.p} ids x sampler.k={cfg.sampler.k} images per process and epoch, "
            f"fewer than one optimizer step; lower sampler.p or sampler.k"
        )
    init = cfg.model.init or "random init"
    echo(f"backbone {cfg.model.backbone} from {init}, {ds.num_train_pids} training ids, "
         f"batches of {cfg.sampler.p} x {cfg.sampler.k}, {dist.world_size} process(es) on {dist.device}")
    if dist.is_main:
        (run_dir / PID2LABEL).write_text(json.dumps({str(k): v for k, v in ds.pid2label.items()}))

    test_tf = reid_test_transform(cfg.transforms)
    e = cfg.eval

    def score(model, rerank=False):
        return score_backbone(model, ds, test_tf, dist.device, flip=e.flip, rerank=rerank,
                              batch_size=e.batch_size, num_workers=cfg.train.num_workers, echo=echo)

    scores_path = run_dir / EVAL_FILE
    scores = json.loads(scores_path.read_text()) if scores_path.is_file() else {}
    before = f"before fine-tuning ({'random init' if cfg.model.init is None else 'initial weights'})"
    if dist.is_main and e.baselines and "before" not in scores:
        scores["raw pixels"] = score(None)
        scores["before"] = score(method.backbone.to(dist.device))
        scores_path.write_text(json.dumps(scores, indent=2))
        for key, name in (("raw pixels", "raw pixels"), ("before", before)):
            echo(f"{name}: mAP {scores[key]['plain']['mAP']:.1f}, R1 {scores[key]['plain']['R1']:.1f}")
    distributed.barrier()

    def evaluate_during(trainer: FinetuneTrainer, stage_step: int) -> None:
        s = score(trainer.method.backbone)["plain"]
        epoch = stage_step / trainer.steps_per_epoch
        record = {"step": trainer.global_step + 1, "epoch": epoch, **{f"eval_{k}": v for k, v in s.items()}}
        record_evaluation(scores, scores_path, record, trainer.log)
        echo(f"epoch {epoch:g}: mAP {s['mAP']:.1f}, R1 {s['R1']:.1f}")

    steps_per_epoch = sampler.batches_per_epoch // cfg.train.accumulation
    trainer = FinetuneTrainer(
        method, ReidImages(ds.train, reid_train_transform(cfg.transforms)), collate_samples,
        train=cfg.train, optim=cfg.optim, run_dir=run_dir, dist=dist, config_yaml=config_yaml,
        resume_from=resume_from, sampler=sampler, pid2label=ds.pid2label,
        evaluate_every=e.every_epochs * steps_per_epoch, evaluate_fn=evaluate_during)
    result = trainer.fit()
    summary = {"run_dir": str(run_dir), "steps": result.steps, "finished": result.finished,
               "images_per_second": result.images_per_second, "checkpoint": str(trainer.last_checkpoint)}
    if dist.is_main and result.finished:
        scores["fine-tuned"] = score(method.backbone, rerank=e.rerank)
        scores_path.write_text(json.dumps(scores, indent=2))
        rows = {"raw pixels": scores.get("raw pixels"), before: scores.get("before"),
                "fine-tuned" + (" + flip" if e.flip else ""): scores["fine-tuned"]}
        echo(table({k: v for k, v in rows.items() if v}, f"{ds.name}: {len(ds.query)} query, {len(ds.gallery)} gallery"))
        echo(f"checkpoint: {trainer.last_checkpoint}")
        echo(f"scores: {scores_path}, metrics: {run_dir / 'metrics.jsonl'}")
    summary["eval"] = scores
    distributed.barrier()
    return summary
