"""`humanssl evaluate reid` and `humanssl extract`: a backbone from a checkpoint, its features,
and retrieval metrics.

A checkpoint is any of
  * a humanssl run folder or checkpoint step folder (pretraining or fine-tuning): the backbone
    name, its options, the input size and normalisation come from the saved config; the
    weights are the fine-tuned `backbone.*`, or a pretraining run's `teacher.backbone.*`;
  * a weights file (.safetensors, .pth, .pt, or an official SOLIDER checkpoint for Swins):
    then `--backbone NAME` says what it holds.

The test feature is the backbone's pooled output (for a BNNeck model: the feature before the
neck), optionally averaged with that of the mirrored image, L2-normalised; retrieval ranks by
cosine distance (the same order as Euclidean on normalised features).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from humanssl.data.reid import ReidImages, VehicleIDDataset, load_reid_dataset
from humanssl.data.reid_transforms import ReidTransformConfig, reid_test_transform
from humanssl.data.unlabeled import is_image_file
from humanssl.engine import checkpoint
from humanssl.errors import UserError
from humanssl.eval.features import extract_features
from humanssl.eval.reid import evaluate, evaluate_features
from humanssl.models.backbones import create_backbone, load_state_checked
from humanssl.results_file import write_results

METRICS = ("mAP", "R1", "R5", "R10", "mINP")
DEFAULT_SIZE = (256, 128)
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


# ----------------------------------------------------------------------------- loading a backbone


@dataclass
class LoadedBackbone:
    model: nn.Module
    name: str
    size: tuple[int, int]  # (H, W) the model expects
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str  # what was loaded, for messages and the results file
    options: dict = field(default_factory=dict)

    def transform(self):
        return reid_test_transform(ReidTransformConfig(size=self.size, mean=self.mean, std=self.std))


def select_backbone_tensors(tensors: dict[str, torch.Tensor], part: str = "teacher",
                            origin: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The backbone's tensors of a humanssl checkpoint: `backbone.*` of a fine-tuned model, else
    `<part>.backbone.*` of a pretraining run, else `base.*` of an official SOLIDER-REID model; a
    file with none of these is taken as a bare backbone state dict (a leading `module.` stripped)."""
    other = "student" if part == "teacher" else "teacher"
    for prefix in ("backbone.", f"{part}.backbone.", f"module.{part}.backbone.", f"{other}.backbone.",
                   "base.", "module.base."):  # base.: SOLIDER-REID / TransReID fine-tuned models
        found = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if found:
            return found
    return {k.removeprefix("module."): v for k, v in tensors.items()}


def load_state_into(model: nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    load_state_checked(model, state, f"the weights in {origin}")


def read_saved_config(step_dir: Path) -> dict:
    for folder in (step_dir, step_dir.parent.parent):
        path = folder / checkpoint.CONFIG
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text())
            except yaml.YAMLError as err:
                raise UserError(f"the config saved with the checkpoint, {path}, is not valid YAML: {err}") from None
            return data if isinstance(data, dict) else {}
    return {}


def settings_from_config(saved: dict) -> tuple[str | None, dict, tuple, tuple, tuple]:
    """(backbone name, backbone options, size, mean, std) of a fine-tuning or pretraining config."""
    model = saved.get("model") or {}
    name = model.get("backbone")
    options = dict(model.get("backbone_options") or {})
    if "transforms" in saved:  # a fine-tuning run
        tf = saved["transforms"]
        return name, options, tuple(tf["size"]), tuple(tf["mean"]), tuple(tf["std"])
    if model.get("strides") is not None:  # a pretraining run's Swin strides (model.strides)
        options.setdefault("strides", tuple(model["strides"]))
    crops = saved.get("crops") or {}  # a pretraining run: its global crops
    return (name, options, tuple(crops.get("global_size", DEFAULT_SIZE)), tuple(crops.get("mean", IMAGENET[0])),
            tuple(crops.get("std", IMAGENET[1])))


def load_backbone(ckpt: str | Path, backbone: str | None = None, *, part: str = "teacher",
                  options: dict | None = None, size: tuple[int, int] | None = None,
                  mean=None, std=None) -> LoadedBackbone:
    """The backbone held by `ckpt` (a run folder, a checkpoint folder or a weights file);
    `size`, `mean`, `std` replace what the checkpoint's config says."""
    loaded = _load_backbone(ckpt, backbone, part, options, size)
    if mean is not None:
        loaded.mean = tuple(mean)
    if std is not None:
        loaded.std = tuple(std)
    loaded.transform()  # checks size, mean and std now, with a message naming them
    return loaded


def _load_backbone(ckpt, backbone, part, options, size) -> LoadedBackbone:
    path = Path(ckpt)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path} (expected a run folder, a checkpoint folder or a weights file)")
    extra = dict(options or {})
    if path.is_file() and path.name != checkpoint.WEIGHTS:
        return _from_file(path, backbone, part, extra, size)
    step = checkpoint.resolve(path.parent if path.is_file() else path)
    saved = read_saved_config(step)
    if saved.get("task") == "svll-reid":  # a CLIP-ReID model, not a registry backbone
        from humanssl.finetune_svll_reid import load_for_evaluation

        return load_for_evaluation(step, size)
    name, saved_options, saved_size, mean, std = settings_from_config(saved)
    name = backbone or name
    if name is None:
        raise UserError(f"{step}: no config.yaml names the backbone; pass --backbone NAME")
    model = create_backbone(name, **{**saved_options, **extra})
    load_state_into(model, select_backbone_tensors(checkpoint.load_weights(step), part), str(step / checkpoint.WEIGHTS))
    return LoadedBackbone(model, name, tuple(size or saved_size), mean, std, str(step), {**saved_options, **extra})


def _from_file(path: Path, backbone: str | None, part: str, options: dict, size) -> LoadedBackbone:
    if backbone is None:
        raise UserError(f"{path} is a weights file, which does not say which backbone it holds; "
                        "pass --backbone NAME (e.g. swin_tiny)")
    if path.suffix == ".safetensors":
        model = create_backbone(backbone, **options)
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise UserError(f"cannot read weights {path}: {err}") from None
        load_state_into(model, select_backbone_tensors(tensors, part), str(path))
    else:  # .pth/.pt: the backbone registry's loader (official SOLIDER files included)
        model = create_backbone(backbone, weights=str(path), **options)
    return LoadedBackbone(model, backbone, tuple(size or DEFAULT_SIZE), IMAGENET[0], IMAGENET[1], str(path), options)


# ----------------------------------------------------------------------------- metrics


def percent(result) -> dict:
    d = result.as_dict()
    return {**{k: 100.0 * d[k] for k in METRICS if k in d},
            "valid_queries": d["valid_queries"], "skipped_queries": d["skipped_queries"]}


def load_rerank(echo: Callable = print):
    """`humanssl.eval.rerank.re_rank`, or None with a message when this installation lacks it."""
    try:
        from humanssl.eval.rerank import re_rank
    except ImportError:
        echo("re-ranking skipped: humanssl.eval.rerank is not available in this installation")
        return None
    return re_rank


def score_split(qf, gf, query, gallery, *, use_cameras=True, rerank=False, echo: Callable = print) -> dict:
    """{'plain': metrics[, 'rerank': metrics]} in percent for one query/gallery split."""
    q_pids = [it.pid for it in query]
    g_pids = [it.pid for it in gallery]
    q_cams = [it.camid for it in query] if use_cameras else None
    g_cams = [it.camid for it in gallery] if use_cameras else None
    out = {"plain": percent(evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams, metric="cosine",
                                              use_cameras=use_cameras))}
    if rerank:
        re_rank = load_rerank(echo)
        if re_rank is not None:
            dist = re_rank(qf, gf, k1=20, k2=6, lambda_value=0.3)
            out["rerank"] = percent(evaluate(dist, q_pids, g_pids, q_cams, g_cams, use_cameras=use_cameras))
    return out


def mean_scores(scores: list[dict]) -> dict:
    out = {}
    for mode in scores[0]:
        runs = [s[mode] for s in scores if mode in s]
        out[mode] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    return out


def score_backbone(model: nn.Module | None, ds, transform, device, *, flip=False, rerank=False,
                   batch_size=128, num_workers=0, progress=False, echo: Callable = print,
                   ranks: tuple[int, Path] | None = None) -> dict:
    """Metrics of a backbone (None: raw pixels) on a parsed re-id dataset. VehicleID: the mean
    over its 10 seeded query/gallery draws, without camera filtering. `ranks=(n, folder)` also
    draws the first n queries' top-10 lists."""
    kw = dict(device=device, batch_size=batch_size, flip=flip, num_workers=num_workers, progress=progress)
    if isinstance(ds, VehicleIDDataset):
        items = list(ds.test_items)
        feats = extract_features(model, ReidImages(items, transform), desc="test images", **kw)
        row = {it.path: i for i, it in enumerate(items)}
        trials = ds.trials(10)
        per_trial = []
        for query, gallery in trials:
            qf = feats[[row[it.path] for it in query]]
            gf = feats[[row[it.path] for it in gallery]]
            per_trial.append(score_split(qf, gf, query, gallery, use_cameras=False, rerank=rerank, echo=echo))
            rerank = rerank and "rerank" in per_trial[-1]  # ask (and warn) once
        result = {**mean_scores(per_trial), "trials": len(trials)}
        if ranks:
            query, gallery = trials[0]
            _draw(ranks, feats[[row[it.path] for it in query]], feats[[row[it.path] for it in gallery]],
                  query, gallery, use_cameras=False)
        return result
    qf = extract_features(model, ReidImages(ds.query, transform), desc="query", **kw)
    gf = extract_features(model, ReidImages(ds.gallery, transform), desc="gallery", **kw)
    result = score_split(qf, gf, ds.query, ds.gallery, rerank=rerank, echo=echo)
    if ranks:
        _draw(ranks, qf, gf, ds.query, ds.gallery, use_cameras=True)
    return result


def _draw(ranks, qf, gf, query, gallery, use_cameras: bool) -> None:
    from humanssl.eval.rank_pictures import save_rank_pictures

    n, folder = ranks
    n = min(int(n), len(query))
    dist = 1.0 - qf[:n] @ gf.T
    save_rank_pictures(folder, dist, query, gallery, use_cameras=use_cameras)


def table(rows: dict[str, dict], title: str) -> str:
    """Rows of {'plain': metrics[, 'rerank': metrics]} as one text table."""
    width = max([len(title)] + [len(name) + 17 for name in rows])
    lines = [f"{title:<{width}}" + "".join(f"{m:>7}" for m in METRICS)]
    for name, score in rows.items():
        for mode, label in (("plain", ""), ("rerank", " + re-ranking")):
            if mode in score:
                cells = (f"{score[mode][m]:7.1f}" if m in score[mode] else f"{'-':>7}" for m in METRICS)
                lines.append(f"{name + label:<{width}}" + "".join(cells))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- commands


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {requested}: no CUDA device is available here; use --device cpu")
    return torch.device(requested)


def run_evaluate_reid(ckpt, data_root, dataset: str = "market1501", *, backbone: str | None = None,
                      part: str = "teacher", options: dict | None = None, dataset_options: dict | None = None,
                      size=None, mean=None, std=None, rerank=False, flip=False, save_ranks: int = 0, ranks_dir=None, output=None,
                      batch_size=128, num_workers=0, device="auto", progress=True, echo: Callable = print) -> dict:
    loaded = load_backbone(ckpt, backbone, part=part, options=options, size=size, mean=mean, std=std)
    ds = load_reid_dataset(dataset, data_root, **(dataset_options or {}))
    dev = pick_device(device)
    echo(f"backbone {loaded.name} from {loaded.source}; input {loaded.size[0]}x{loaded.size[1]}")
    echo(ds.summary())
    ranks = None
    if save_ranks:
        if ranks_dir:
            folder = Path(ranks_dir)
        else:
            folder = Path(output).parent / f"{Path(output).stem}_ranks" if output else Path("ranks")
        ranks = (int(save_ranks), folder)
    score = score_backbone(loaded.model.to(dev), ds, loaded.transform(), dev, flip=flip, rerank=rerank,
                           batch_size=batch_size, num_workers=num_workers, progress=progress, echo=echo, ranks=ranks)
    title = f"{ds.name}" + (f" (mean of {score['trials']} draws)" if "trials" in score else "")
    echo(table({"this model" + (" + flip" if flip else ""): score}, title))
    result = {"checkpoint": str(ckpt), "loaded_from": loaded.source, "backbone": loaded.name,
              "dataset": ds.name, "root": str(data_root), "flip": flip,
              "num_query": len(ds.query), "num_gallery": len(ds.gallery), **score}
    if ranks:
        result["rank_pictures"] = str(ranks[1])
        echo(f"rank pictures of the first {min(ranks[0], len(ds.query))} queries: {ranks[1]}")
    if output:
        write_results(output, result, echo)
    return result


def gather_images(inputs: list[str]) -> list[str]:
    paths = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and is_image_file(f.name))
            if not found:
                raise UserError(f"folder {p} holds no images (expected .jpg, .png, ... files in it or below)")
            paths += found
        elif p.is_file():
            paths.append(str(p))
        else:
            raise UserError(f"{p} does not exist (expected an image file or a folder of images)")
    if not paths:
        raise UserError("no images given to extract features from")
    return paths


def paths_file(output: Path) -> Path:
    return output.with_name(output.stem + ".paths.txt")


def run_extract(ckpt, inputs: list[str], output, *, backbone: str | None = None, part: str = "teacher",
                options: dict | None = None, size=None, mean=None, std=None, flip=False, batch_size=128,
                num_workers=0, device="auto", progress=True, echo: Callable = print) -> tuple[np.ndarray, list[str]]:
    output = Path(output)
    if output.suffix != ".npy":
        raise UserError(f"-o {output}: expected a .npy file name")
    loaded = load_backbone(ckpt, backbone, part=part, options=options, size=size, mean=mean, std=std)
    paths = gather_images(inputs)
    dev = pick_device(device)
    items = [(p, 0, 0) for p in paths]
    feats = extract_features(loaded.model.to(dev), ReidImages(items, loaded.transform()), dev, batch_size,
                             flip=flip, num_workers=num_workers, progress=progress, desc="extracting").numpy()
    output.parent.mkdir(parents=True, exist_ok=True)
    np.save(output, feats)
    paths_file(output).write_text("".join(p + "\n" for p in paths))
    echo(f"{feats.shape[0]} features of dimension {feats.shape[1]} from {loaded.name} ({loaded.source}): "
         f"{output}, image paths in {paths_file(output)}")
    return feats, paths


def parse_options(items: list[str] | None, what: str) -> dict[str, Any]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise UserError(f"{what} '{item}' is not of the form key=value")
        key, text = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = text
    return out
