"""Writing a command's results as JSON (`-o results.json`), the same way for every command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable


def write_results(output, result: dict, echo: Callable = print) -> None:
    """Write `result` to `output` (folders made as needed) and say where it went."""
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    echo(f"results: {path}")


def record_evaluation(scores: dict, scores_path: Path, record: dict, log=None) -> None:
    """Add one evaluation made during training to `scores["during training"]` (replacing an
    earlier one of the same step, which a resumed run repeats), rewrite the scores file and,
    when the run has a metrics log, append it there too."""
    history = [r for r in scores.get("during training", []) if r["step"] != record["step"]]
    scores["during training"] = history + [record]
    Path(scores_path).write_text(json.dumps(scores, indent=2))
    if log is not None:
        log.write(record)
