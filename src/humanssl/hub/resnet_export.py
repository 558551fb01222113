"""A pretrained ResNet trunk (e.g. an SS-PRL run's) written for detection and segmentation code:
torchvision's `resnet50().load_state_dict` layout, or Detectron2's backbone naming.

Detectron2 reads a `.pkl` holding {"model": {name: numpy array}, "matching_heuristics": True}.
Its ResNet names the stem `stem.conv1` (with its BN as `stem.conv1.norm`), the stages
`res2`..`res5` (torchvision's `layer1`..`layer4`), a block's BNs `convK.norm` and the projection
`shortcut` / `shortcut.norm`. Frozen BN has no `num_batches_tracked`, so those are dropped.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import torch

from humanssl.engine import checkpoint
from humanssl.errors import UserError

LAYOUTS = ("torchvision", "detectron2")
PREFIX = "backbone."  # where a pretraining run keeps its trunk (SS-PRL's `backbone`)


def trunk_from_run(path: str | Path) -> dict[str, torch.Tensor]:
    """The trunk's tensors of a run / checkpoint folder, under torchvision ResNet names."""
    tensors = checkpoint.load_weights(checkpoint.resolve(path))
    trunk = {k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX)}
    if "conv1.weight" not in trunk or not any(k.startswith("layer1.") for k in trunk):
        raise UserError(f"{path}: no ResNet trunk in this checkpoint (expected '{PREFIX}conv1.weight' and "
                        f"'{PREFIX}layer1.*' keys, as an SS-PRL run writes)")
    return trunk


def detectron2_name(name: str) -> str:
    if not name.startswith("layer"):
        name = "stem." + name  # conv1 / bn1 of the stem
    name = re.sub(r"^layer(\d)", lambda m: f"res{int(m.group(1)) + 1}", name)
    name = re.sub(r"\bbn(\d)\b", r"conv\1.norm", name)
    return name.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")


def export_resnet_trunk(src: str | Path, out: str | Path, layout: str) -> int:
    """Write the trunk of `src` to `out` in `layout`; returns the number of tensors written."""
    if layout not in LAYOUTS:
        raise UserError(f"--to {layout!r}: expected one of {', '.join(LAYOUTS)}")
    trunk = trunk_from_run(src)
    if layout == "torchvision":
        buffer = io.BytesIO()
        torch.save(trunk, buffer)
        data, written = buffer.getvalue(), len(trunk)
    else:
        model = {detectron2_name(k): v.numpy() for k, v in trunk.items() if not k.endswith("num_batches_tracked")}
        data = pickle.dumps({"model": model, "__author__": "humanssl", "matching_heuristics": True})
        written = len(model)
    checkpoint.write_atomically(Path(out), data)  # never a half-written file under the final name
    return written
