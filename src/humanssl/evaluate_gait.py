"""`humanssl evaluate gait`: a gait encoder from a checkpoint, features of the test sequences
(all frames, packed batches), and the standard cross-view protocol of `humanssl.eval.gait`.

A checkpoint is any of
  * a humanssl run folder, checkpoint folder or its model.safetensors: a SelfGait pretraining
    run (`online_network.*`, `conv_trans.*`, `TP_1.*`: the online chain, as the official
    `transform()` uses) or any run whose tensors hold a GaitSet / SelfGait encoder under some
    prefix (`backbone.`, `module.`, ...);
  * an official GaitSet `*-encoder.ptm` (a DataParallel state dict: `module.` is stripped);
  * an official SelfGait `model_<iter>.pth` (one `<network>_state_dict` entry per network,
    each DataParallel-prefixed);
  * a bare .safetensors / .pth state dict of either encoder.
Torch pickles are opened with `weights_only=True` (humanssl.hub.reading); a file holding other
pickled objects is refused unless --trust-checkpoint is given.

The model (GaitSet or SelfGait) is recognised from the tensor names unless --model says it; its
width (hidden_dim, the micro-motion reduction) is read from the tensor shapes. The default
distance is each system's own: Euclidean on the flattened 62 x 256 GaitSet embedding, the
mean per-strip distance for SelfGait's 31 strips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from humanssl.data.gait import GaitSequences, collate_packed, load_casiab, load_oumvlp
from humanssl.data.gait.sequences import GaitSequence
from humanssl.data.gait.splits import CASIAB_TEST, oumvlp_train_ids
from humanssl.engine import checkpoint
from humanssl.errors import UserError
from humanssl.eval.gait import DISTANCES, GaitResult, evaluate_gait, result_heatmaps
from humanssl.models.backbones import load_state_checked
from humanssl.results_file import write_results

MODELS = ("gaitset", "selfgait")
DATASETS = ("casiab", "oumvlp")
DEFAULT_DISTANCE = {"gaitset": "euclidean", "selfgait": "part_mean"}
# A tensor that only this model has, to find the model and the prefix its names sit under.
ANCHORS = {"gaitset": "fc_bin.0", "selfgait": "TP_1.fc_bin"}
SELFGAIT_PARTS = ("online_network.", "conv_trans.", "TP_1.")  # the retrieval chain of the method
GAITSET_PARTS = ("set_layer", "gl_layer", "fc_bin.")


# ----------------------------------------------------------------------------- reading weights


def read_gait_tensors(ckpt, trust_checkpoint: bool = False) -> tuple[dict[str, torch.Tensor], str]:
    """Every tensor of `ckpt` under one flat naming, and what was read (for messages)."""
    path = Path(ckpt)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path} (expected a run folder, a checkpoint folder, an official "
                        f"GaitSet *-encoder.ptm, an official SelfGait model_*.pth or a .safetensors file)")
    if path.is_dir() or path.name == checkpoint.WEIGHTS:
        step = checkpoint.resolve(path if path.is_dir() else path.parent)
        return checkpoint.load_weights(step), str(step / checkpoint.WEIGHTS)
    from humanssl.hub.reading import read_checkpoint

    return flatten_official(read_checkpoint(path, trust_checkpoint=trust_checkpoint), path), str(path)


def flatten_official(obj, path) -> dict[str, torch.Tensor]:
    """A loaded file -> flat {name: tensor}: SelfGait's `<name>_state_dict` entries become
    `<name>.*`, a `state_dict`/`model` wrapper is opened, `module.` is stripped everywhere."""
    if not isinstance(obj, dict):
        raise UserError(f"{path} holds a {type(obj).__name__}, not a state dict; expected GaitSet or SelfGait weights")
    nested = {k[:-len("_state_dict")]: v for k, v in obj.items()
              if isinstance(k, str) and k.endswith("_state_dict") and k != "optimizer_state_dict" and isinstance(v, dict)}
    if nested:  # official SelfGait: online_network_state_dict, conv_trans_state_dict, TP_1_state_dict, ...
        flat = {f"{net}.{k.removeprefix('module.')}": v for net, state in nested.items() for k, v in state.items()}
    else:
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
        flat = {str(k).removeprefix("module."): v for k, v in obj.items()}
    tensors = {k: v for k, v in flat.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise UserError(f"{path} holds no tensors (keys: {', '.join(map(str, list(obj)[:6]))}); "
                        f"expected GaitSet or SelfGait weights")
    return tensors


def find_prefix(tensors: dict[str, torch.Tensor], model: str) -> str | None:
    """The prefix under which `model`'s anchor tensor sits (teacher before student), or None."""
    anchor = ANCHORS[model]
    found = [k[:-len(anchor)] for k in tensors if k.endswith(anchor) and (k == anchor or k[:-len(anchor)].endswith("."))]
    if model == "gaitset":  # SelfGait's TP_1.fc_bin / online_network.fc_bin are no GaitSet anchor
        found = [p for p in found if not p.endswith(("TP_1.", "TP_2.", "online_network.", "target_network."))]
    if not found:
        return None
    return sorted(found, key=lambda p: ("student" in p, len(p)))[0]


def detect_model(tensors: dict[str, torch.Tensor], origin: str) -> str:
    for model in ("selfgait", "gaitset"):
        if find_prefix(tensors, model) is not None:
            return model
    shown = ", ".join(sorted(tensors)[:5])
    raise UserError(f"{origin} holds neither a GaitSet encoder (fc_bin.0, set_layer*, gl_layer*) nor a SelfGait "
                    f"encoder (online_network.*, conv_trans.*, TP_1.*); its first tensors: {shown}")


def encoder_state(tensors: dict[str, torch.Tensor], model: str, origin: str) -> dict[str, torch.Tensor]:
    prefix = find_prefix(tensors, model)
    if prefix is None:
        want = "fc_bin.0 (GaitSet)" if model == "gaitset" else "TP_1.fc_bin (SelfGait's online chain)"
        raise UserError(f"--model {model}: {origin} has no {want}; its first tensors: "
                        f"{', '.join(sorted(tensors)[:5])}")
    parts = SELFGAIT_PARTS if model == "selfgait" else GAITSET_PARTS
    return {k[len(prefix):]: v for k, v in tensors.items()
            if k.startswith(prefix) and k[len(prefix):].startswith(parts)}


def build_encoder(model: str, state: dict[str, torch.Tensor], origin: str) -> nn.Module:
    """The encoder with its width read from the weights, and the weights loaded (all or an error)."""
    if model == "gaitset":
        from humanssl.models.gaitset import GaitSet

        fc = state["fc_bin.0"]
        if fc.ndim != 3 or fc.shape[0] != 62 or fc.shape[1] != 128:
            raise UserError(f"{origin}: fc_bin.0 is {tuple(fc.shape)}; expected GaitSet's (62, 128, hidden_dim)")
        net = GaitSet(hidden_dim=int(fc.shape[2]))
    else:
        from humanssl.models.selfgait import SelfGaitEncoder

        fc = state["TP_1.fc_bin"]
        reduce = state.get("conv_trans.conv_list_1.0.0.weight")
        if fc.ndim != 3 or reduce is None or reduce.shape[0] < 1:
            raise UserError(f"{origin}: expected SelfGait's TP_1.fc_bin (31, 128, hidden_dim) and "
                            f"conv_trans.conv_list_1.0.0.weight; got TP_1.fc_bin {tuple(fc.shape)}")
        net = SelfGaitEncoder(hidden_dim=int(fc.shape[2]), div=max(1, 128 // int(reduce.shape[0])))
    load_state_checked(net, state, f"the {model} weights in {origin}")
    return net


@dataclass
class LoadedGaitModel:
    model: nn.Module
    name: str  # gaitset | selfgait
    source: str


def load_gait_model(ckpt, model: str | None = None, trust_checkpoint: bool = False) -> LoadedGaitModel:
    if model is not None and model not in MODELS:
        raise UserError(f"--model {model!r} is not known; expected one of {', '.join(MODELS)}")
    tensors, source = read_gait_tensors(ckpt, trust_checkpoint)
    name = model or detect_model(tensors, source)
    return LoadedGaitModel(build_encoder(name, encoder_state(tensors, name, source), source), name, source)


# ----------------------------------------------------------------------------- data and features


def test_sequences(dataset: str, root) -> tuple[str, list[GaitSequence]]:
    """(protocol name, the standard test split's sequences) of a dataset folder."""
    if dataset == "casiab":
        seqs = load_casiab(root)
        test = [s for s in seqs if s.subject in set(CASIAB_TEST)]
        expected = "subjects 075-124 (the standard CASIA-B test split)"
        protocol = "casia-b"
    elif dataset == "oumvlp":
        seqs = load_oumvlp(root)
        train = set(oumvlp_train_ids({s.subject for s in seqs}))
        test = [s for s in seqs if s.subject not in train]
        expected = "even subject ids or 10307 (the standard OU-MVLP test split)"
        protocol = "ou-mvlp"
    else:
        raise UserError(f"--dataset {dataset!r} is not known; expected one of {', '.join(DATASETS)}")
    if not test:
        have = sorted({s.subject for s in seqs})
        raise UserError(f"{root}: no test sequences; the data holds subjects {have[0]}..{have[-1]}, expected {expected}")
    return protocol, test


@torch.no_grad()
def extract_gait_features(model: nn.Module, sequences: list[GaitSequence], device: torch.device,
                          batch_size: int = 4, num_workers: int = 0, progress: bool = False,
                          echo: Callable = print) -> tuple[torch.Tensor, list[GaitSequence]]:
    """(n, parts, dim) float32 CPU features of every sequence, all frames; whole sequences are
    packed along the frame axis, `batch_size` sequences per forward pass. Sequences that cannot
    be read are left out (and counted); returns the features and the sequences they belong to."""
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1 (sequences per forward pass); got {batch_size}")
    ds = GaitSequences(sequences, "all")
    loader = DataLoader(ds, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_packed)
    was_training = model.training
    model.eval()
    feats, kept = [], []
    try:
        for batch in tqdm(loader, desc="gait features", disable=not progress, dynamic_ncols=True):
            out = model(batch["silhouettes"].to(device), batch["batch_frame"]).float().cpu()
            index = batch["index"].tolist()
            for row, i in enumerate(index):
                seq = sequences[i]
                # GaitSequences hands out the next readable sequence for an unreadable one: drop those.
                if (batch["subject"][row], batch["seq_type"][row], batch["view"][row]) == (seq.subject, seq.seq_type,
                                                                                          seq.view):
                    feats.append(out[row])
                    kept.append(seq)
    finally:
        model.train(was_training)
    if not kept:
        raise UserError("none of the test sequences could be read")
    if len(kept) < len(sequences):
        echo(f"{len(sequences) - len(kept)} of {len(sequences)} test sequences could not be read and are left out")
    return torch.stack(feats), kept


# ----------------------------------------------------------------------------- report


def _num(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else round(float(x), 4)


def result_json(result: GaitResult) -> dict:
    """Means, per-view rank-1 and the rank-1 matrices, NaN written as null."""
    out = {k: _num(v) for k, v in result.as_dict().items()}
    out["conditions"] = list(result.conditions)
    out["views"] = list(result.views)
    out["rank1"] = {c: _num(result.rank1_excl[c]) for c in result.conditions}
    out["mAP"] = {c: _num(result.mAP_excl[c]) for c in result.conditions}
    out["rank1_per_view"] = {c: {v: _num(x) for v, x in zip(result.views, result.rank1_excl_per_view[c])}
                             for c in result.conditions}
    out["rank1_matrix"] = {c: [[_num(x) for x in row] for row in result.acc[i, :, :, 0]]
                           for i, c in enumerate(result.conditions)}
    return out


def gait_table(result: GaitResult, title: str) -> str:
    """Rank-1 (%) per probe view (identical views excluded), their mean, and mAP, per condition."""
    def cell(x) -> str:
        return f"{x:7.1f}" if np.isfinite(x) else f"{'-':>7}"

    lines = [title, f"{'probe':<6}" + "".join(f"{v:>7}" for v in result.views) + f"{'mean':>8}{'mAP':>7}"]
    for c in result.conditions:
        per_view = result.rank1_excl_per_view[c]
        lines.append(f"{c:<6}" + "".join(cell(x) for x in per_view)
                     + f" {cell(result.rank1_excl[c])}{cell(result.mAP_excl[c])}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the command


def run_evaluate_gait(ckpt, data_root, dataset: str = "casiab", *, model: str | None = None,
                      distance: str | None = None, official_divisor: bool = False, output=None, heatmaps=None,
                      trust_checkpoint: bool = False, batch_size: int = 4, num_workers: int = 0, device: str = "auto",
                      progress: bool = True, echo: Callable = print) -> dict:
    from humanssl.evaluate import pick_device

    if distance is not None and distance not in DISTANCES:
        raise UserError(f"--distance {distance!r} is not known; expected one of {', '.join(DISTANCES)}")
    if dataset not in DATASETS:
        raise UserError(f"--dataset {dataset!r} is not known; expected one of {', '.join(DATASETS)}")
    loaded = load_gait_model(ckpt, model, trust_checkpoint)
    distance = distance or DEFAULT_DISTANCE[loaded.name]
    dev = pick_device(device)
    protocol, seqs = test_sequences(dataset, data_root)
    echo(f"{loaded.name} from {loaded.source}; {len(seqs)} test sequences of "
         f"{len({s.subject for s in seqs})} subjects; distance {distance}")
    feats, kept = extract_gait_features(loaded.model.to(dev), seqs, dev, batch_size, num_workers, progress, echo)
    result = evaluate_gait(feats, [s.subject for s in kept], [s.seq_type for s in kept], [s.view for s in kept],
                           protocol, distance, official_divisor=official_divisor)
    divisor = "official /10 divisor" if official_divisor else "identical views excluded"
    echo(gait_table(result, f"{result.protocol} rank-1 (%) per probe view, {divisor}; mean over probe views; mAP (%)"))
    report = {"checkpoint": str(ckpt), "loaded_from": loaded.source, "model": loaded.name,
              "dataset": result.protocol, "root": str(data_root), "distance": distance,
              "official_divisor": official_divisor, "num_sequences": len(kept),
              "num_subjects": len({s.subject for s in kept}), **result_json(result)}
    folder = Path(heatmaps) if heatmaps else (Path(output).parent / f"{Path(output).stem}_heatmaps" if output else None)
    if folder is not None:
        report["heatmaps"] = [str(p) for p in result_heatmaps(result, folder)]
        echo(f"rank-1 heat-maps ({len(result.views)}x{len(result.views)} views): {folder}")
    if output:
        write_results(output, report, echo)
    return report


def run_gait_pretreat(src, dst, workers: int = 4, output: str = "png", width: int = 44, progress: bool = True,
                      echo: Callable = print):
    from humanssl.data.gait import run_pretreat

    if workers < 0:
        raise UserError(f"--workers must be >= 0; got {workers}")
    report = run_pretreat(src, dst, workers, width=width, output=output, progress=progress)
    echo(f"gait-pretreat {src} -> {dst}: {report.summary()}")
    return report
