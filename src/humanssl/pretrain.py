"""`humanssl pretrain`: data -> method -> engine, with a kNN re-id check before and after."""

from __future__ import annotations

import json
from pathlib import Path

from humanssl.data.collate import collate_samples
from humanssl.data.device_multicrop import CanvasTransform, DeviceMultiCrop
from humanssl.data.saip_views import SaipViews
from humanssl.data.ssprl_views import SSPRLViews, SSPRLViewsConfig, ViewsDataset
from humanssl.data.synthetic import SyntheticLabeled, SyntheticPersons, SyntheticUnlabeled, labeled_split
from humanssl.data.synthetic_scenes import SyntheticScenes, SyntheticScenesDataset
from humanssl.data.transforms import MultiCropTransform, eval_transform
from humanssl.data.unlabeled import ImageFolderDataset, ImageListDataset
from humanssl.engine import checkpoint, distributed
from humanssl.engine.launch import launch, open_run
from humanssl.engine.run_dir import read_metrics
from humanssl.engine.trainer import Trainer
from humanssl.errors import UserError
from humanssl.eval.knn import knn_reid, knn_scores
from humanssl.methods.dino import DINO
from humanssl.methods.saip import SAIP
from humanssl.methods.solider import SOLIDER
from humanssl.methods.ssprl import SSPRL
from humanssl.models.backbones import create_backbone
from humanssl.plot import training_summary
from humanssl.pretrain_config import DataConfig, ModelConfig, PretrainConfig
from humanssl.pretrain_first_stage import first_stage_config


def build_unlabeled(cfg: DataConfig, transform, seed: int, image_size: tuple[int, int]):
    if cfg.source == "synthetic":
        world = SyntheticPersons(seed=world_seed(cfg, seed), num_cameras=cfg.synthetic_cameras, image_size=image_size,
                                 effects=cfg.synthetic_effects)
        return SyntheticUnlabeled(cfg.synthetic_images, cfg.synthetic_identities, world, transform=transform)
    if cfg.root is None:
        raise UserError(f"data.root is required when data.source={cfg.source}")
    if cfg.source == "folder":
        return ImageFolderDataset(cfg.root, transform=transform)
    if cfg.source == "lmdb":
        from humanssl.data.lmdb_images import LMDBImageDataset

        return LMDBImageDataset(cfg.root, transform=transform)
    return ImageListDataset(cfg.root, root=cfg.list_root, transform=transform)


def build_dataset(cfg: PretrainConfig):
    if cfg.crops.on_device and cfg.method not in ("dino", "solider"):
        raise UserError(f"crops.on_device=true is for method=dino or solider (their multi-crop); "
                        f"method={cfg.method} builds its own views, set crops.on_device=false")
    if cfg.method == "saip":  # person views + a multi-person reference built per image
        views = SaipViews(cfg.crops, cfg.saip_views, background_seed=world_seed(cfg.data, cfg.train.seed))
        return ViewsDataset(build_unlabeled(cfg.data, views, cfg.train.seed, cfg.crops.global_size))
    if cfg.method != "ssprl":
        transform = MultiCropTransform(cfg.crops)
        if cfg.crops.on_device:  # workers decode only; DeviceMultiCrop crops on the device
            transform = CanvasTransform(cfg.crops.canvas_size or cfg.crops.global_size)
        return build_unlabeled(cfg.data, transform, cfg.train.seed, cfg.crops.global_size)
    views = SSPRLViews(ssprl_views_config(cfg))
    if cfg.data.source == "synthetic":  # scenes of people and objects, not person crops
        v = views.cfg
        side = max(64, *v.size_crops, *v.loc_size_crops)
        world = SyntheticScenes(seed=world_seed(cfg.data, cfg.train.seed), image_size=(side, side))
        return ViewsDataset(SyntheticScenesDataset(world, cfg.data.synthetic_images, views, with_labels=False))
    return ViewsDataset(build_unlabeled(cfg.data, views, cfg.train.seed, cfg.crops.global_size))


def ssprl_views_config(cfg: PretrainConfig) -> SSPRLViewsConfig:
    """The view sizes of `ssprl_views` with the crop counts and grids of `ssprl` (one source each)."""
    fields = {k: getattr(cfg.ssprl, k) for k in ("nmb_crops", "grid_perside", "nmb_loc_views")}
    return SSPRLViewsConfig(**{**vars(cfg.ssprl_views), **fields})


def world_seed(cfg: DataConfig, seed: int) -> int:
    return seed if cfg.synthetic_seed is None else cfg.synthetic_seed


def backbone_options(model: ModelConfig) -> dict:
    """The backbone builder's keyword options that `model` sets (the builder's defaults otherwise;
    a backbone that has no such option refuses it by name)."""
    extra = {} if model.semantic_weight is None else {"semantic_weight": model.semantic_weight}
    if model.strides is not None:
        extra["strides"] = tuple(model.strides)
    if model.torch_default_init:
        extra["torch_default_init"] = True
    return extra


def build_method(cfg: PretrainConfig):
    def make_backbone(drop_path: float):
        return create_backbone(cfg.model.backbone, drop_path_rate=drop_path, weights=cfg.model.weights,
                               **backbone_options(cfg.model))

    if cfg.method == "saip":  # builds its own SAIP ViT (the full token sets, not the pooled feature)
        method = SAIP(cfg.saip, cfg.model.backbone, cfg.crops.global_size, drop_path=cfg.model.drop_path,
                      weights=cfg.model.weights, accumulation=cfg.train.accumulation,
                      local_size=cfg.crops.local_size)
    elif cfg.method == "ssprl":
        method = SSPRL(cfg.ssprl, backbone=make_backbone(cfg.model.drop_path))
    elif cfg.method == "solider":
        method = SOLIDER(make_backbone, cfg.dino, cfg.solider, drop_path=cfg.model.drop_path)
    else:
        method = DINO(make_backbone, cfg.dino, drop_path=cfg.model.drop_path)
    if cfg.model.init is not None:
        load_networks(method, cfg.model.init)
    return method


def load_networks(method, path: str) -> None:
    """Start student and teacher from another humanssl pretraining run (any method with the same
    backbone and head), as SOLIDER's `--init_model` does with a DINO run. Like the official code,
    only the networks are taken: not the DINO centre, the optimizer or the position."""
    step_dir = checkpoint.resolve(path)
    tensors = checkpoint.load_weights(step_dir)
    wanted = {k: v for k, v in tensors.items() if k.startswith(("student.", "teacher."))}
    own = method.state_dict()
    expected = [k for k in own if k.startswith(("student.", "teacher."))]
    missing = [k for k in expected if k not in wanted]
    unexpected = [k for k in wanted if k not in own]
    wrong = [k for k in wanted if k in own and wanted[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        def some(keys):
            return ", ".join(keys[:4]) + (" ..." if len(keys) > 4 else "")
        raise UserError(
            f"model.init={path}: the networks in {step_dir} do not fit this model (same backbone and "
            f"dino head sizes expected); missing: [{some(missing)}], unexpected: [{some(unexpected)}], "
            f"other shape: [{some(wrong)}]")
    method.load_state_dict(wanted, strict=False)


def knn_sets(cfg: PretrainConfig):
    """Labelled synthetic query/gallery with ids after the pretraining ids (never seen in training)."""
    size = cfg.knn.image_size or cfg.crops.global_size
    world = SyntheticPersons(seed=world_seed(cfg.data, cfg.train.seed), num_cameras=cfg.knn.cameras, image_size=size,
                             effects=cfg.data.synthetic_effects)
    query, gallery = labeled_split(world, cfg.knn.identities, first_pid=cfg.data.synthetic_identities + 1,
                                   images_per_camera=cfg.knn.images_per_camera,
                                   cameras_per_identity=cfg.knn.cameras_per_identity)
    tf = eval_transform(size, cfg.crops.mean, cfg.crops.std)
    return SyntheticLabeled(query, world, tf), SyntheticLabeled(gallery, world, tf)


def run_pretrain(cfg: PretrainConfig, echo=print) -> dict:
    if cfg.first_stage.method is not None:
        first_stage_config(cfg, Path(cfg.train.output_dir))  # a bad first_stage stops before anything runs
    return launch(_run, cfg, cfg.train, echo)


def _run(cfg: PretrainConfig, dist, echo) -> dict:
    run_dir, resume_from, config_yaml = open_run(cfg, cfg.train, cfg.method, dist, echo)
    dataset = build_dataset(cfg)
    method = build_method(cfg)
    echo(f"method {cfg.method}, backbone {cfg.model.backbone}, {len(dataset)} training images, "
         f"{dist.world_size} process(es) on {dist.device}")

    scores_path = run_dir / "knn.json"
    scores = json.loads(scores_path.read_text()) if scores_path.is_file() else {}
    knn_data = knn_sets(cfg) if (cfg.knn.enabled and dist.is_main) else None
    if knn_data and "raw pixels" not in scores:  # a resumed run keeps its first scores
        backbone = method.downstream_backbone().to(dist.device)
        start = "model.init" if cfg.model.init is not None else "random init"
        add_scores(scores, {"raw pixels": knn_reid(None, *knn_data, dist.device, cfg.knn.batch_size),
                            **knn_scores(backbone, start, *knn_data, dist.device, cfg.knn.batch_size)},
                   scores_path, echo)
    distributed.barrier()
    if cfg.first_stage.method is not None and resume_from is None:  # a resumed run has its networks
        first = run_first_stage(cfg, run_dir, method, dist, echo)
        if not first["finished"]:  # its networks are not the ones this run should start from
            return {"run_dir": str(run_dir), "steps": 0, "finished": False, "first_stage": first}
        name = f"{cfg.first_stage.method} stage"
        if knn_data and not any(k.startswith(name) for k in scores):
            add_scores(scores, knn_scores(method.downstream_backbone(), name, *knn_data, dist.device,
                                          cfg.knn.batch_size), scores_path, echo)
        echo(f"second stage: {cfg.method}")
        distributed.barrier()

    trainer = Trainer(method, dataset, collate_samples, train=cfg.train, optim=cfg.optim, run_dir=run_dir,
                      dist=dist, config_yaml=config_yaml, resume_from=resume_from,
                      max_bad_fraction=cfg.data.max_bad_fraction,
                      batch_transform=DeviceMultiCrop(cfg.crops) if cfg.crops.on_device else None)
    result = trainer.fit()
    summary = {"run_dir": str(run_dir), "steps": result.steps, "finished": result.finished,
               "images_per_second": result.images_per_second, "skipped_images": result.skipped_images}
    if result.skipped_images:
        echo(f"skipped {result.skipped_images} unreadable image(s) (listed as warnings above)")
    if knn_data and result.finished:
        add_scores(scores, knn_scores(method.downstream_backbone(), "pretrained", *knn_data, dist.device,
                                      cfg.knn.batch_size), scores_path, echo)
    summary["knn"] = scores
    if dist.is_main:
        write_outputs(run_dir, scores, summary)
        echo(f"checkpoint: {trainer.last_checkpoint}")
        echo(f"metrics: {run_dir / 'metrics.jsonl'}, plot: {run_dir / 'summary.png'}")
    distributed.barrier()
    return summary


def run_first_stage(cfg: PretrainConfig, run_dir: Path, method, dist, echo) -> dict:
    """Train (or finish) the first stage in run_dir/first_stage; once it is done, its student and
    teacher replace the method's. Returns the first stage's summary."""
    echo(f"first stage: {cfg.first_stage.method}")
    first = _run(first_stage_config(cfg, run_dir), dist, echo)
    if first["finished"]:
        load_networks(method, first["run_dir"])
    else:
        echo(f"the first stage stopped at step {first['steps']}; continue both with train.resume=auto")
    return first


def add_scores(scores: dict, new: dict, path: Path, echo) -> None:
    """Keep, save (knn.json holds every score of the run, across resumes) and print new scores."""
    scores.update(new)
    path.write_text(json.dumps(scores, indent=2))
    for name, score in new.items():
        echo(score_line(name, score))


def score_line(name: str, score: dict) -> str:
    return f"kNN re-id, {name:<25}: mAP {score['mAP']:5.1f}  R1 {score['R1']:5.1f}"


def write_outputs(run_dir: Path, scores: dict, summary: dict) -> None:
    records = [r for r in read_metrics(run_dir / "metrics.jsonl") if "loss" in r]
    training_summary(run_dir / "summary.png", [r["step"] for r in records], [r["loss"] for r in records],
                     {k: v["mAP"] for k, v in scores.items()}, title=f"run {run_dir.name}")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
