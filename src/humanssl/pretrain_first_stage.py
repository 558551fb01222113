"""A pretraining run that goes first, inside the folder of the run it starts (`first_stage.method`).

SOLIDER's faster official route is the reason: DINO first, then SOLIDER from its networks. The
first stage takes this run's resolved config, so the data world, seed and sizes are shared unless
`first_stage.overrides` changes them.
"""

from __future__ import annotations

from pathlib import Path

from humanssl.config import build, parse_override, set_dotted, to_dict
from humanssl.errors import UserError
from humanssl.pretrain_config import PretrainConfig

FOLDER = "first_stage"


def fixed_settings(run_dir: Path) -> dict:
    """What the first stage sets itself, whatever the overrides say: no stage of its own, fresh
    networks, no kNN, its own folder inside the run (resumed when there)."""
    return {"first_stage": {"method": None, "overrides": []}, "model.init": None, "knn.enabled": False,
            "train.output_dir": str(run_dir), "train.run_name": FOLDER, "train.resume": "auto"}


def first_stage_config(cfg: PretrainConfig, run_dir: Path) -> PretrainConfig:
    """The first stage's config. It writes to (and resumes from) run_dir/first_stage, reports no
    kNN (the run around it does) and has no first stage of its own."""
    if cfg.model.init is not None:
        raise UserError(f"model.init={cfg.model.init} and first_stage.method={cfg.first_stage.method} both say "
                        f"where the networks start; set one of them")
    tree = to_dict(cfg)
    tree["method"] = cfg.first_stage.method
    fixed = fixed_settings(run_dir)
    try:
        for item in cfg.first_stage.overrides:
            key, value = parse_override(item)
            if any(key == k or key.startswith(k + ".") for k in fixed):
                raise UserError(f"'{item}' sets {key}, which the first stage sets itself "
                                f"(it starts from fresh networks and writes to <run>/{FOLDER})")
            set_dotted(tree, key, value)
        for key, value in fixed.items():
            set_dotted(tree, key, value)
        return build(PretrainConfig, tree, prefix="")
    except UserError as err:
        raise UserError(f"first_stage.overrides: {err}") from None
