"""Opening checkpoint files without running code from them.

A .pth file is a pickle, and unpickling can run arbitrary code. Files are first read with
`torch.load(weights_only=True)`, which only rebuilds tensors and plain containers; the
`argparse.Namespace` that SOLIDER's training checkpoints carry (their `args` entry) is added
to that allow-list since it is a bag of attributes. Anything else pickled in the file is
refused unless the caller says it trusts the file (`--trust-checkpoint` on the command line).
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path
from typing import Any

import torch

from humanssl.errors import UserError

SAFE_EXTRA_GLOBALS = [argparse.Namespace]


def read_checkpoint(path: str | Path, trust_checkpoint: bool = False) -> Any:
    """The object stored in a .safetensors or torch file, on the CPU. A folder is read as a
    humanssl run (or step) folder: its newest complete checkpoint's weights."""
    path = Path(path)
    if path.is_dir():
        from humanssl.engine.checkpoint import WEIGHTS, resolve

        path = resolve(path) / WEIGHTS
    if not path.is_file():
        raise UserError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:  # noqa: BLE001 - a corrupt file means the same thing to a user
            raise UserError(f"cannot read safetensors file {path}: {err}") from None
    try:
        return _torch_load(path, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch words a refused object and a file that is no pickle at all alike; the latter
        # shows up as an opcode the restricted unpickler does not know.
        refused = "Weights only load failed" in str(err) and "Unsupported operand" not in str(err)
        if refused and not trust_checkpoint:
            raise UserError(
                f"{path} contains pickled Python objects that safe loading refuses "
                f"({_refused_global(err)}); loading them can run code from the file. If you trust "
                f"its origin, pass --trust-checkpoint (trust_checkpoint=True in Python)"
            ) from None
        if not refused:
            raise UserError(f"cannot read checkpoint {path}: not a torch or safetensors file ({err})") from None
    except Exception as err:  # noqa: BLE001
        raise UserError(f"cannot read checkpoint {path}: not a torch or safetensors file ({err})") from None
    try:
        return _torch_load(path, weights_only=False)
    except Exception as err:  # noqa: BLE001 - e.g. a class the pickle names is not importable here
        raise UserError(f"cannot read checkpoint {path} even as a trusted pickle: {err}") from None


def unwrap_state_dict(obj: Any, origin: str) -> dict[str, torch.Tensor]:
    """The tensors of a loaded checkpoint object: a `state_dict` or `model` wrapper is opened
    (the usual layouts of training scripts), anything that is not a tensor is left out."""
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict):
        raise UserError(f"{origin} does not hold a state dict (found {type(obj).__name__})")
    return {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}


def _torch_load(path: Path, weights_only: bool) -> Any:
    allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    if weights_only and allow is not None:
        with allow(SAFE_EXTRA_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    return torch.load(path, map_location="cpu", weights_only=weights_only)


def _refused_global(err: Exception) -> str:
    for line in str(err).splitlines():
        if "WeightsUnpickler error:" in line:
            reason = line.split("WeightsUnpickler error:", 1)[1].split(". Please", 1)[0].strip()
            if reason:
                return reason
    return "an object type outside the tensor allow-list"
