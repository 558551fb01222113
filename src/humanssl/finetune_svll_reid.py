"""`humanssl finetune svll-reid`: dataset -> CLIP-ReID model with SVLL's MLPs -> both stages on the
engine, with retrieval scores of the frozen CLIP image encoder (what stage 1 leaves) and of the
stage-2 model.

The run folder is a `humanssl evaluate reid` checkpoint like any fine-tuning run: the config
says `task: svll-reid`, the weights are the method's (`model.*` = the official state-dict keys
behind a `model.` prefix, plus `pid_of_label` and `sie_sizes`), and pid2label.json sits in
every checkpoint folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch.utils.data import DataLoader

from humanssl.config import load_config
from humanssl.data.collate import collate_samples
from humanssl.data.pk_sampler import PKSampler
from humanssl.data.reid import ReidDataset, ReidImages
from humanssl.data.reid_ssl_views import ReidImagesWithViews, ssl_view_transform
from humanssl.data.reid_transforms import reid_test_transform, reid_train_transform
from humanssl.engine import checkpoint, distributed
from humanssl.engine.launch import launch, open_run
from humanssl.errors import UserError
from humanssl.evaluate import LoadedBackbone, score_backbone, table
from humanssl.finetune import EVAL_FILE, PID2LABEL, FinetuneTrainer, build_dataset
from humanssl.finetune_svll_reid_config import SvllReidConfig
from humanssl.methods.svll_reid import SvllReid
from humanssl.models.backbones import load_state_checked
from humanssl.models.clip_reid import ClipReid, build_clip_reid
from humanssl.models.clip_reid_features import ClipReidFeatures

METHOD_NAME = "svll-reid"
FROZEN = "CLIP image encoder (stage 1: frozen)"
TRAINED = "after stage 2"


# ----------------------------------------------------------------------------- building blocks


def check_clip_weights(cfg: SvllReidConfig) -> None:
    """Before anything is written: a real recipe needs OpenAI's weights as a local file."""
    weights = cfg.clip.weights
    if weights is None and not cfg.clip.random_init:
        raise UserError(f"clip.weights=PATH is required: OpenAI's {cfg.clip.name}.pt file on this machine "
                        "(it is never downloaded); clip.random_init=true trains from random towers (demo only)")
    if weights is not None and not Path(weights).is_file():
        raise UserError(f"clip.weights: {weights} is not a file (expected OpenAI's {cfg.clip.name}.pt)")


def side_info_counts(ds: ReidDataset) -> tuple[int, int]:
    """(cameras, views) for the SIE table: the official counts of distinct training values, or
    more where a test camera / view id would otherwise fall outside the table."""
    items = ds.train + ds.query + ds.gallery
    cams = max(ds.num_train_cams, 1 + max(it.camid for it in items))
    views = max(ds.num_train_views, 1 + max(it.viewid for it in items))
    return cams, views


def build_model(cfg: SvllReidConfig, num_classes: int, camera_num: int, view_num: int,
                from_weights: bool = True) -> ClipReid:
    m, c = cfg.model, cfg.clip
    weights = c.weights if from_weights else None
    return build_clip_reid(num_classes, name=c.name, input_size=tuple(cfg.transforms.size), stride=m.stride,
                           weights=weights, random_init=weights is None, camera_num=camera_num, view_num=view_num,
                           sie_camera=m.sie_camera, sie_view=m.sie_view, sie_coe=m.sie_coe,
                           dataset=cfg.data.dataset, ssl=cfg.stage1.language_ssl or cfg.stage2.visual_ssl,
                           ssl_mlp_dims=(m.ssl_hidden_dim, m.ssl_dim), clip_overrides=c.overrides)


def build_method(cfg: SvllReidConfig, ds: ReidDataset, num_workers: int) -> SvllReid:
    cams, views = side_info_counts(ds)
    model = build_model(cfg, ds.num_train_pids, cams, views)
    cache = DataLoader(ReidImages(ds.train, reid_test_transform(cfg.transforms)), batch_size=cfg.eval.batch_size,
                       num_workers=num_workers, collate_fn=collate_samples)
    return SvllReid(model, cfg.stage1, cfg.stage2, cache, seed=cfg.train.seed,
                    pid_of_label=[ds.label2pid[i] for i in range(ds.num_train_pids)])


def training_images(cfg: SvllReidConfig, ds: ReidDataset):
    train_tf = reid_train_transform(cfg.transforms)
    if cfg.stage2.visual_ssl:
        return ReidImagesWithViews(ds.train, train_tf, ssl_view_transform(cfg.transforms))
    return ReidImages(ds.train, train_tf)


def load_for_evaluation(step: Path, size=None) -> LoadedBackbone:
    """The test-feature model of a `finetune svll-reid` checkpoint folder (evaluate reid, extract)."""
    config_path = next((p for p in (step / checkpoint.CONFIG, step.parent.parent / checkpoint.CONFIG)
                        if p.is_file()), None)
    if config_path is None:
        raise UserError(f"{step}: no config.yaml beside the weights; expected a `humanssl finetune svll-reid` run")
    cfg = load_config(SvllReidConfig, config_path)
    tensors = checkpoint.load_weights(step)
    if "pid_of_label" not in tensors or "sie_sizes" not in tensors:
        raise UserError(f"{step / checkpoint.WEIGHTS}: no pid_of_label / sie_sizes; expected an svll-reid checkpoint")
    cams, views = (int(v) for v in tensors["sie_sizes"])
    model = build_model(cfg, len(tensors["pid_of_label"]), cams, views, from_weights=False)
    state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    load_state_checked(model, state, f"the weights in {step / checkpoint.WEIGHTS}")
    tf = cfg.transforms
    return LoadedBackbone(ClipReidFeatures(model).eval(), f"svll-reid {cfg.clip.name}", tuple(size or tf.size),
                          tuple(tf.mean), tuple(tf.std), str(step))


# ----------------------------------------------------------------------------- the run


def run_finetune_svll_reid(cfg: SvllReidConfig, echo=print) -> dict:
    check_clip_weights(cfg)
    return launch(_run, cfg, cfg.train, echo)


def _run(cfg: SvllReidConfig, dist, echo) -> dict:
    run_dir, resume_from, config_yaml = open_run(cfg, cfg.train, METHOD_NAME, dist, echo)
    ds = build_dataset(cfg.data, run_dir, cfg.train.seed, dist)
    echo(ds.summary())
    method = build_method(cfg, ds, cfg.train.num_workers)
    sampler = PKSampler([it.pid for it in ds.train], cfg.sampler.p, cfg.sampler.k, seed=cfg.train.seed,
                        rank=dist.rank, world_size=dist.world_size)
    if sampler.batches_per_epoch < cfg.train.accumulation:
        raise UserError(f"{ds.name}: {ds.num_train_pids} training ids give {sampler.batches_per_epoch} batches of "
                        f"sampler.p={cfg.sampler.p} x sampler.k={cfg.sampler.k} per process and epoch, fewer than "
                        "one optimizer step; lower sampler.p or sampler.k")
    s1, s2 = cfg.stage1, cfg.stage2
    echo(f"CLIP {cfg.clip.name} from {cfg.clip.weights or 'random init'}, {ds.num_train_pids} training ids; "
         f"stage 1: {s1.epochs} epochs x {method.stage1_steps_per_epoch} steps of {s1.batch_size} cached features"
         f" (language SSL {'on' if s1.language_ssl else 'off'}); stage 2: {s2.epochs} epochs of "
         f"{cfg.sampler.p} x {cfg.sampler.k} images (visual SSL {'on' if s2.visual_ssl else 'off'}); "
         f"{dist.world_size} process(es) on {dist.device}")
    if dist.is_main:
        (run_dir / PID2LABEL).write_text(json.dumps({str(k): v for k, v in ds.pid2label.items()}))

    test_tf = reid_test_transform(cfg.transforms)

    def score(model, rerank=False):
        return score_backbone(model, ds, test_tf, dist.device, rerank=rerank, batch_size=cfg.eval.batch_size,
                              num_workers=cfg.train.num_workers, echo=echo)

    scores_path = run_dir / EVAL_FILE
    scores = json.loads(scores_path.read_text()) if scores_path.is_file() else {}
    features = method.downstream_backbone()
    if dist.is_main and cfg.eval.baselines and FROZEN not in scores:
        scores["raw pixels"] = score(None)
        scores[FROZEN] = score(features.to(dist.device))  # stage 1 never changes the image encoder
        scores_path.write_text(json.dumps(scores, indent=2))
        for key in ("raw pixels", FROZEN):
            echo(f"{key}: mAP {scores[key]['plain']['mAP']:.1f}, R1 {scores[key]['plain']['R1']:.1f}")
    distributed.barrier()

    trainer = FinetuneTrainer(method, training_images(cfg, ds), collate_samples, train=cfg.train,
                              optim=s2.optim(), run_dir=run_dir, dist=dist, config_yaml=config_yaml,
                              resume_from=resume_from, sampler=sampler, pid2label=ds.pid2label)
    result = trainer.fit()
    summary = {"run_dir": str(run_dir), "steps": result.steps, "finished": result.finished,
               "images_per_second": result.images_per_second, "checkpoint": str(trainer.last_checkpoint)}
    if dist.is_main and result.finished:
        scores[TRAINED] = score(features, rerank=cfg.eval.rerank)
        scores_path.write_text(json.dumps(scores, indent=2))
        rows = {k: scores.get(k) for k in ("raw pixels", FROZEN, TRAINED)}
        title = f"{ds.name}: {len(ds.query)} query, {len(ds.gallery)} gallery"
        echo(table({k: v for k, v in rows.items() if v}, title))
        echo(f"checkpoint: {trainer.last_checkpoint} (humanssl evaluate reid --checkpoint {run_dir} ...)")
        echo(f"scores: {scores_path}, metrics: {run_dir / 'metrics.jsonl'}")
    summary["eval"] = scores
    distributed.barrier()
    return summary
