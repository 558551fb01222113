"""`humanssl pretrain CONFIG` with `method: selfgait`: BYOL on CASIA-B / OU-MVLP training
sequences (or the built-in synthetic walkers), then the cross-view test of the online encoder.

    data (GaitSequences, P x M sampler, 30-frame windows) -> SelfGait -> engine Trainer
    RUN/eval.json: the standard protocol's rank-1 of the encoder before and after pretraining

The data helpers here are shared with `humanssl finetune gait` (finetune_gait.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from humanssl.data.gait import (FrameSampling, GaitSequences, GaitTripletSampler, casiab_split, collate_clips,
                                load_casiab, load_oumvlp, make_split)
from humanssl.data.gait.splits import GaitSplit
from humanssl.engine import distributed
from humanssl.engine.launch import launch, open_run
from humanssl.engine.schedules import scaled_lr
from humanssl.engine.trainer import Trainer
from humanssl.errors import UserError
from humanssl.gait_config import GaitDataConfig, GaitEvalConfig, GaitPretrainConfig
from humanssl.methods.selfgait import SelfGait

SYNTHETIC_FOLDER = "synthetic_casiab"
EVAL_FILE = "eval.json"
FIRST_TEST_ID = 75  # CASIA-B's test subjects are 075-124


# ----------------------------------------------------------------------------- data


def synthetic_casiab(cfg: GaitDataConfig, run_dir: Path, seed: int, dist) -> Path:
    """Write the synthetic CASIA-B tree into the run folder once (main process)."""
    from humanssl.data.synthetic_gait import write_casiab

    s = cfg.synthetic
    if not 1 <= s.train_ids < FIRST_TEST_ID or not 1 <= s.test_ids <= 50:
        raise UserError(f"data.synthetic: train_ids={s.train_ids} must be in 1..74 and test_ids={s.test_ids} in 1..50 "
                        "(CASIA-B's numbering: training subjects 001-074, test subjects 075-124)")
    root = run_dir / SYNTHETIC_FOLDER
    done = root / ".complete"
    if dist.is_main and not done.is_file():
        world = seed if s.seed is None else s.seed
        # YAML reads an unquoted 090 as the number 90
        views = tuple(f"{int(v):03d}" if str(v).isdigit() else str(v) for v in s.views)
        opts = dict(seed=world, types=tuple(s.types), views=views, frames=tuple(s.frames))
        write_casiab(root, s.train_ids, first_id=1, **opts)
        write_casiab(root, s.test_ids, first_id=FIRST_TEST_ID, **opts)
        done.write_text(json.dumps({"train_ids": s.train_ids, "test_ids": s.test_ids}))
    distributed.barrier()
    return root


def gait_root(cfg: GaitDataConfig, run_dir: Path, seed: int, dist) -> Path:
    if cfg.source == "synthetic":
        return synthetic_casiab(cfg, run_dir, seed, dist)
    if cfg.root is None:
        raise UserError(f"data.root is required with data.source={cfg.source} (the dataset's folder)")
    return Path(cfg.root)


def gait_split(cfg: GaitDataConfig, root: Path) -> tuple[GaitSplit, str]:
    """(the split, the evaluation protocol name) of the configured dataset."""
    if cfg.source == "oumvlp":
        seqs = load_oumvlp(root)
        return make_split(cfg.split or "oumvlp", seqs), "ou-mvlp"
    seqs = load_casiab(root)
    if cfg.source == "synthetic" and cfg.split is None:  # no subject 005 to drop
        return casiab_split(seqs, "LT"), "casia-b"
    return make_split(cfg.split or "casiab-gaitset", seqs), "casia-b"


def training_data(cfg: GaitDataConfig, sequences, sampler_cfg, seed: int, dist, group_by: str = "identity"):
    """The training sequences and their P x M sampler; `group_by="view"` makes every batch P x M
    sequences of one view instead."""
    frames = FrameSampling(cfg.frame_mode, cfg.frames)
    dataset = GaitSequences(sequences, frames)
    groups, p, m = dataset.labels, sampler_cfg.p, sampler_cfg.m
    if group_by == "view":
        views = sorted({s.view for s in sequences})
        groups, p, m = [views.index(s.view) for s in sequences], 1, p * m
    sampler = GaitTripletSampler(groups, p, m, seed=seed, rank=dist.rank, world_size=dist.world_size)
    return dataset, sampler


def constant_lr(optim, train, dist) -> None:
    """The official schedule is a constant lr: the cosine's end is the (scaled) peak itself."""
    if getattr(optim, "constant_lr", False):
        optim.min_lr = scaled_lr(optim.lr, train.batch_size * dist.world_size * train.accumulation)


# ----------------------------------------------------------------------------- evaluation


def score_encoder(encoder, test_sequences, protocol: str, cfg: GaitEvalConfig, device, echo: Callable = print) -> dict:
    """The standard cross-view protocol on the test split (features as `humanssl evaluate gait`)."""
    from humanssl.eval.gait import evaluate_gait
    from humanssl.evaluate_gait import extract_gait_features, result_json

    feats, kept = extract_gait_features(encoder.to(device), test_sequences, device, cfg.batch_size, echo=echo)
    result = evaluate_gait(feats, [s.subject for s in kept], [s.seq_type for s in kept], [s.view for s in kept],
                           protocol, cfg.distance)
    return result_json(result)


def score_line(name: str, score: dict) -> str:
    parts = [f"{c} {score['rank1'][c]:5.1f}" if score["rank1"][c] is not None else f"{c}   -"
             for c in score["conditions"]]
    return f"rank-1 (%), {name:<24}: " + "  ".join(parts)


# ----------------------------------------------------------------------------- the run


def run_pretrain_gait(cfg: GaitPretrainConfig, echo=print) -> dict:
    return launch(_run, cfg, cfg.train, echo)


def _run(cfg: GaitPretrainConfig, dist, echo) -> dict:
    run_dir, resume_from, config_yaml = open_run(cfg, cfg.train, cfg.method, dist, echo)
    root = gait_root(cfg.data, run_dir, cfg.train.seed, dist)
    split, protocol = gait_split(cfg.data, root)
    echo(split.summary())
    # Official: P ids x M sequences (the ids only group the batch; the BYOL loss never sees them).
    # sampler.group_by=view draws each batch from one view instead.
    dataset, sampler = training_data(cfg.data, split.train, cfg.sampler, cfg.train.seed, dist, cfg.sampler.group_by)
    method = SelfGait(cfg.selfgait)
    constant_lr(cfg.optim, cfg.train, dist)
    grouping = "one view each" if cfg.sampler.group_by == "view" else f"{cfg.sampler.p} ids x {cfg.sampler.m}"
    echo(f"method selfgait, {len(dataset)} training sequences, batches of {cfg.train.batch_size} ({grouping}), "
         f"{dist.world_size} process(es) on {dist.device}")

    scores_path = run_dir / EVAL_FILE
    scores = json.loads(scores_path.read_text()) if scores_path.is_file() else {}
    if cfg.eval.enabled and cfg.eval.baselines and dist.is_main and "random init" not in scores:
        scores["random init"] = score_encoder(method.downstream_backbone(), split.test, protocol, cfg.eval,
                                              dist.device, echo)
        scores_path.write_text(json.dumps(scores, indent=2))
        echo(score_line("random init", scores["random init"]))
    distributed.barrier()

    trainer = Trainer(method, dataset, collate_clips, train=cfg.train, optim=cfg.optim, run_dir=run_dir, dist=dist,
                      config_yaml=config_yaml, resume_from=resume_from, sampler=sampler,
                      max_bad_fraction=cfg.data.max_bad_fraction)
    result = trainer.fit()
    summary = {"run_dir": str(run_dir), "steps": result.steps, "finished": result.finished,
               "sequences_per_second": result.images_per_second, "checkpoint": str(trainer.last_checkpoint)}
    if cfg.eval.enabled and dist.is_main and result.finished:
        scores["pretrained"] = score_encoder(method.downstream_backbone(), split.test, protocol, cfg.eval,
                                             dist.device, echo)
        scores_path.write_text(json.dumps(scores, indent=2))
        echo(score_line("pretrained (BYOL)", scores["pretrained"]))
    if dist.is_main:
        echo(f"checkpoint: {trainer.last_checkpoint}")
        echo(f"metrics: {run_dir / 'metrics.jsonl'}" + (f", scores: {scores_path}" if scores else ""))
        (run_dir / "summary.json").write_text(json.dumps({**summary, "eval": scores}, indent=2))
    summary["eval"] = scores
    distributed.barrier()
    return summary
