"""Checkpoints: one folder per saved step, written so that a crash never leaves a broken one.

Layout of a run folder:

    RUN/config.yaml                      resolved config of the run
    RUN/metrics.jsonl                    one JSON record per logged step
    RUN/checkpoints/step_00000100/       model.safetensors  (every tensor of the method:
                                                             student, teacher, heads, centres)
                                         state.pt           (optimizer, scaler, RNG, position)
                                         config.yaml
    RUN/checkpoints/latest               name of the newest complete step folder

A step folder is written under a temporary name and renamed into place only when every file
in it is on disk (rename is atomic on POSIX), and `latest` is replaced the same way. A process
killed at any moment leaves either the old checkpoint or the new one, plus at worst a
temporary folder that is ignored and cleaned up later.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from humanssl.errors import UserError

WEIGHTS = "model.safetensors"
STATE = "state.pt"
CONFIG = "config.yaml"
TMP_PREFIX = ".tmp-"


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def save_checkpoint(ckpt_root: Path, step: int, tensors: dict[str, torch.Tensor], state: dict,
                    config_yaml: str, keep: int = 2) -> Path:
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / step_dir_name(step)
    tmp = ckpt_root / f"{TMP_PREFIX}{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file(cpu_tensors(tensors), str(tmp / WEIGHTS))
    torch.save(state, tmp / STATE)
    (tmp / CONFIG).write_text(config_yaml)
    for f in tmp.iterdir():
        fsync_file(f)
    fsync_file(tmp)
    if final.exists():  # the same step saved again after a resume: swap, then drop the old one
        old = ckpt_root / f"{TMP_PREFIX}old-{final.name}-{os.getpid()}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
    write_atomically(ckpt_root / "latest", final.name)
    fsync_file(ckpt_root)
    prune(ckpt_root, keep, protect=final.name)
    return final


def cpu_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached contiguous CPU copies; tensors sharing memory are cloned (safetensors refuses aliases)."""
    out, seen = {}, set()
    for k, v in tensors.items():
        v = v.detach().to("cpu").contiguous()
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
        if v.numel() and key in seen:
            v = v.clone()
        seen.add(key)
        out[k] = v
    return out


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write `data` (text or bytes) to a temporary file beside `path`, then rename it over `path`."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}-{os.getpid()}")
    with open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def complete_steps(ckpt_root: Path) -> list[Path]:
    if not ckpt_root.is_dir():
        return []
    dirs = [p for p in ckpt_root.iterdir() if p.is_dir() and p.name.startswith("step_")]
    return sorted(d for d in dirs if (d / WEIGHTS).is_file() and (d / STATE).is_file())


def prune(ckpt_root: Path, keep: int, protect: str) -> None:
    """Keep the newest `keep` step folders and remove leftovers of interrupted writes."""
    for p in ckpt_root.iterdir():
        if p.name.startswith(TMP_PREFIX) and p.is_dir() and not p.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(p, ignore_errors=True)
    if keep <= 0:
        return
    steps = complete_steps(ckpt_root)
    for old in steps[:-keep]:
        if old.name != protect:
            shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(ckpt_root: Path) -> Path | None:
    pointer = ckpt_root / "latest"
    if pointer.is_file():
        target = ckpt_root / pointer.read_text().strip()
        if (target / WEIGHTS).is_file() and (target / STATE).is_file():
            return target
    steps = complete_steps(ckpt_root)
    return steps[-1] if steps else None


def resolve(path: str | Path) -> Path:
    """A step folder, a run folder or its checkpoints folder -> the step folder to load."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path} (expected a run folder or a checkpoint step folder)")
    if (path / WEIGHTS).is_file():
        return path
    for root in (path / "checkpoints", path):
        found = latest_checkpoint(root)
        if found is not None:
            return found
    raise UserError(
        f"no checkpoint in {path}: expected {WEIGHTS} and {STATE} in it or in checkpoints/step_*/ below it"
    )


def load_weights(step_dir: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(step_dir / WEIGHTS))
    except (SafetensorError, OSError) as err:
        raise UserError(f"cannot read weights {step_dir / WEIGHTS}: {err}") from None


def load_state(step_dir: Path) -> dict:
    try:
        return torch.load(step_dir / STATE, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same thing to a user
        raise UserError(f"cannot read training state {step_dir / STATE}: {err}") from None
