"""What every command that trains does first: join the process group and open the run folder.

Shared by `humanssl pretrain` and `humanssl finetune ...`, so both pick, name, resume and
describe their run folders the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import yaml

from humanssl.config import to_dict
from humanssl.engine import distributed
from humanssl.engine.run_dir import choose_run_dir
from humanssl.engine.settings import TrainConfig


def launch(run: Callable, cfg, train: TrainConfig, echo=print):
    """Call `run(cfg, dist, echo)` inside the process group; only rank 0 echoes."""
    dist = distributed.setup(train.device)
    try:
        return run(cfg, dist, echo if dist.is_main else (lambda *a, **k: None))
    finally:
        distributed.teardown()


def open_run(cfg, train: TrainConfig, kind: str, dist, echo) -> tuple[Path, Path | None, str]:
    """Choose the run folder (rank 0 decides, everyone follows), write the resolved config into
    it and say where it is. Returns (run_dir, checkpoint to resume from or None, config YAML)."""
    torch.manual_seed(train.seed)  # the same initial weights on every process
    run_dir, resume_from = distributed.broadcast_object(
        choose_run_dir(train.output_dir, train.run_name, kind, train.resume) if dist.is_main else None)
    config_yaml = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(config_yaml)
    echo(f"run folder: {run_dir}" + (f" (resuming from {resume_from.name})" if resume_from else ""))
    return run_dir, resume_from, config_yaml
