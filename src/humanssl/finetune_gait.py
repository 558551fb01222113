"""`humanssl finetune gait`: a SelfGait encoder (from a pretraining run, or from scratch) trained
with GaitSet's per-strip triplet loss on P x M batches of labelled training sequences, then the
standard cross-view test. `label_rate` keeps the labels of only a fraction of the training
subjects (semi-supervised fine-tuning: the encoder has seen all of them unlabelled in BYOL).

RUN/eval.json holds the rank-1 / mAP of the encoder before fine-tuning (its initial weights)
and after; `humanssl evaluate gait --checkpoint RUN` reads the run as well.
"""

from __future__ import annotations

import json
from pathlib import Path

from humanssl.data.gait import collate_clips, labelled_subset
from humanssl.engine import distributed
from humanssl.engine.launch import launch, open_run
from humanssl.engine.trainer import Trainer
from humanssl.errors import UserError
from humanssl.gait_config import GaitFinetuneConfig, GaitModelConfig
from humanssl.methods.gait_finetune import GaitFinetune
from humanssl.models.selfgait import SelfGaitEncoder, TemporalPartFC
from humanssl.pretrain_gait import (EVAL_FILE, constant_lr, gait_root, gait_split, score_encoder, score_line,
                                    training_data)

METHOD_NAME = "gait"


def build_encoder(cfg: GaitModelConfig) -> SelfGaitEncoder:
    """SelfGait's retrieval chain, from `model.init` (the online chain of a SelfGait run or an
    official SelfGait checkpoint) or freshly initialised."""
    if cfg.init is None:
        if cfg.fresh_part_fcs:
            raise UserError("model.fresh_part_fcs=true re-initialises the part FCs of a loaded encoder; "
                            "set model.init too (without it every part starts fresh anyway)")
        return SelfGaitEncoder(hidden_dim=cfg.hidden_dim, div=cfg.div)
    from humanssl.evaluate_gait import load_gait_model

    if not Path(cfg.init).exists():
        raise UserError(f"model.init: {cfg.init} not found (expected a SelfGait run or checkpoint folder, its "
                        "model.safetensors or an official SelfGait model_<iter>.pth)")
    loaded = load_gait_model(cfg.init, "selfgait")
    enc = loaded.model
    if enc.TP_1.fc_bin.shape[-1] != cfg.hidden_dim:
        raise UserError(f"model.init: {loaded.source} has hidden_dim {enc.TP_1.fc_bin.shape[-1]}, "
                        f"but model.hidden_dim={cfg.hidden_dim}")
    if cfg.fresh_part_fcs:
        enc.TP_1 = TemporalPartFC(cfg.hidden_dim)
    return enc


def run_finetune_gait(cfg: GaitFinetuneConfig, echo=print) -> dict:
    return launch(_run, cfg, cfg.train, echo)


def _run(cfg: GaitFinetuneConfig, dist, echo) -> dict:
    run_dir, resume_from, config_yaml = open_run(cfg, cfg.train, METHOD_NAME, dist, echo)
    root = gait_root(cfg.data, run_dir, cfg.train.seed, dist)
    split, protocol = gait_split(cfg.data, root)
    labelled = split.train if cfg.label_rate >= 1.0 else labelled_subset(split.train, cfg.label_rate, cfg.train.seed)
    num_ids = len({s.subject for s in labelled})
    if num_ids < cfg.sampler.p:
        raise UserError(f"label_rate={cfg.label_rate} keeps {num_ids} labelled training subject(s), fewer than "
                        f"sampler.p={cfg.sampler.p} identities per batch; raise label_rate or lower sampler.p")
    echo(split.summary() + f"\n  labelled for fine-tuning: {num_ids} ids / {len(labelled)} sequences "
                           f"(label_rate {cfg.label_rate:g})")
    dataset, sampler = training_data(cfg.data, labelled, cfg.sampler, cfg.train.seed, dist)
    method = GaitFinetune(build_encoder(cfg.model), cfg.loss.margin, cfg.loss.mode)
    constant_lr(cfg.optim, cfg.train, dist)
    fresh = " (part FCs fresh)" if cfg.model.fresh_part_fcs else ""
    echo(f"selfgait encoder from {cfg.model.init or 'random init'}{fresh}, triplet ({cfg.loss.mode}, margin "
         f"{cfg.loss.margin:g}), batches of {cfg.sampler.p} x {cfg.sampler.m}, {dist.world_size} process(es) "
         f"on {dist.device}")

    scores_path = run_dir / EVAL_FILE
    scores = json.loads(scores_path.read_text()) if scores_path.is_file() else {}
    before = "before fine-tuning"
    if cfg.eval.enabled and cfg.eval.baselines and dist.is_main and "before" not in scores:
        scores["before"] = score_encoder(method.encoder, split.test, protocol, cfg.eval, dist.device, echo)
        scores_path.write_text(json.dumps(scores, indent=2))
        echo(score_line(before, scores["before"]))
    distributed.barrier()

    trainer = Trainer(method, dataset, collate_clips, train=cfg.train, optim=cfg.optim, run_dir=run_dir, dist=dist,
                      config_yaml=config_yaml, resume_from=resume_from, sampler=sampler,
                      max_bad_fraction=cfg.data.max_bad_fraction)
    result = trainer.fit()
    summary = {"run_dir": str(run_dir), "steps": result.steps, "finished": result.finished,
               "sequences_per_second": result.images_per_second, "checkpoint": str(trainer.last_checkpoint),
               "labelled_ids": num_ids}
    if cfg.eval.enabled and dist.is_main and result.finished:
        scores["fine-tuned"] = score_encoder(method.encoder, split.test, protocol, cfg.eval, dist.device, echo)
        scores_path.write_text(json.dumps(scores, indent=2))
        echo(score_line("fine-tuned", scores["fine-tuned"]))
    if dist.is_main:
        echo(f"checkpoint: {trainer.last_checkpoint}")
        echo(f"metrics: {run_dir / 'metrics.jsonl'}" + (f", scores: {scores_path}" if scores else ""))
    summary["eval"] = scores
    distributed.barrier()
    return summary
