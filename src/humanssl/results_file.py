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
