"""`first_stage`: a pretraining run inside another's folder whose networks start it (SOLIDER's
faster official route, DINO then SOLIDER), with resume and bad input."""

import json

import pytest
import torch
from safetensors.torch import load_file

from humanssl.engine import checkpoint
from humanssl.errors import UserError
from humanssl.pretrain import run_pretrain
from tests.methods.test_solider_pretrain import tiny
from tests.quiet import quiet

METHOD = "first_stage.method=dino"
OVERRIDES = "first_stage.overrides=[train.max_steps=2,model.semantic_weight=0]"
FIRST = [METHOD, OVERRIDES]


def networks(run):
    weights = load_file(str(checkpoint.resolve(run) / "model.safetensors"))
    return {k: v for k, v in weights.items() if k.startswith(("student.", "teacher."))}


def test_the_first_stage_trains_inside_the_run_and_its_networks_start_the_second(tmp_path):
    # lr 0 in the second stage: its student must end exactly where the first stage left it (the
    # teacher still moves: its EMA pulls it towards that student)
    knn = ["knn.enabled=true", "knn.identities=4", "knn.cameras_per_identity=2", "knn.images_per_camera=1"]
    summary = run_pretrain(tiny(tmp_path, *FIRST, *knn, "train.max_steps=1", "optim.lr=0", "optim.min_lr=0",
                                "train.run_name=r"), echo=quiet)
    run = tmp_path / "r"
    assert summary["finished"] and summary["steps"] == 1
    first = run / "first_stage"
    assert checkpoint.resolve(first).name == "step_00000002"
    assert "method: dino" in (first / "config.yaml").read_text()
    assert "semantic_weight: 0.0" in (first / "config.yaml").read_text()
    before, after = networks(first), networks(run)
    students = [k for k in before if k.startswith("student.")]
    assert len(students) > 100 and all(torch.equal(before[k], after[k]) for k in students)
    scores = json.loads((run / "knn.json").read_text())
    assert {"raw pixels", "random init (lambda 0.2)", "dino stage (lambda 0.2)", "pretrained (lambda 0.2)"} <= set(scores)


def test_a_run_cut_in_its_first_stage_resumes_both_exactly(tmp_path):
    common = [METHOD, "train.max_steps=2"]
    run_pretrain(tiny(tmp_path, *common, OVERRIDES, "train.run_name=full"), echo=quiet)
    cut = "first_stage.overrides=[train.max_steps=2,model.semantic_weight=0,train.stop_after_steps=1]"
    lines = []
    stopped = run_pretrain(tiny(tmp_path, *common, cut, "train.run_name=cut"), echo=lines.append)
    assert not stopped["finished"] and not (tmp_path / "cut" / "checkpoints").exists()
    assert any("first stage stopped at step 1" in line for line in lines)
    resumed = run_pretrain(tiny(tmp_path, *common, OVERRIDES, "train.run_name=cut", "train.resume=auto"), echo=quiet)
    assert resumed["finished"] and resumed["steps"] == 2
    a, b = networks(tmp_path / "full"), networks(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # a finished run resumes from its own checkpoint: the first stage is not run again
    lines = []
    run_pretrain(tiny(tmp_path, *common, OVERRIDES, "train.run_name=cut", "train.resume=auto"), echo=lines.append)
    assert not any(line.startswith("first stage") for line in lines)


def test_bad_first_stage_settings_stop_before_anything_is_written(tmp_path):
    with pytest.raises(UserError, match=r"first_stage.overrides: unknown config key 'train.epochz'"):
        run_pretrain(tiny(tmp_path, "first_stage.method=dino", "first_stage.overrides=[train.epochz=3]"), echo=quiet)
    with pytest.raises(UserError, match=r"first_stage.overrides: .*'train.epochs' expects int"):
        run_pretrain(tiny(tmp_path, "first_stage.method=dino", "first_stage.overrides=[train.epochs=many]"), echo=quiet)
    with pytest.raises(UserError, match="first_stage.method"):  # SAIP's networks could not be handed over
        run_pretrain(tiny(tmp_path, "first_stage.method=saip"), echo=quiet)
    with pytest.raises(UserError, match="model.init=.* and first_stage.method=dino both"):
        run_pretrain(tiny(tmp_path, *FIRST, f"model.init={tmp_path}"), echo=quiet)
    assert not any(tmp_path.iterdir())
