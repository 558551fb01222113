"""Where a run writes: picking or finding its folder, and its JSON-lines metrics log."""

from __future__ import annotations

import json
import time
from pathlib import Path

from humanssl.engine import checkpoint
from humanssl.errors import UserError


def choose_run_dir(output_dir: str, run_name: str | None, method: str, resume: str | None) -> tuple[Path, Path | None]:
    """The run folder and, when resuming, the checkpoint step folder to continue from.

    Never hands back a folder that already holds another run unless asked to resume it, so a
    new run cannot overwrite old results.
    """
    out = Path(output_dir)
    if resume not in (None, "", "auto"):
        step = checkpoint.resolve(resume)
        return step.parent.parent, step
    if run_name:
        run = out / run_name
    elif resume == "auto":
        run = newest_run(out, method) or out / default_name(method)
    else:
        run = out / default_name(method)
    if resume == "auto":
        return run, checkpoint.latest_checkpoint(run / "checkpoints")
    if (run / "checkpoints").is_dir() and any((run / "checkpoints").iterdir()):
        raise UserError(
            f"run folder {run} already holds checkpoints; continue it with train.resume=auto "
            f"or pick another train.run_name"
        )
    return run, None


def default_name(method: str) -> str:
    return f"{method}-{time.strftime('%Y%m%d-%H%M%S')}"


def newest_run(out: Path, method: str) -> Path | None:
    if not out.is_dir():
        return None
    runs = [p for p in out.iterdir() if p.is_dir() and p.name.startswith(f"{method}-")]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


class MetricsLog:
    """Appends one JSON object per line; on resume, records past the resumed step are dropped."""

    def __init__(self, path: Path, resume_from_step: int | None = None):
        self.path = path
        if resume_from_step is not None and path.is_file():
            kept = [line for line in path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= resume_from_step]
            path.write_text("".join(k + "\n" for k in kept))

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
