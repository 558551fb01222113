"""`humanssl pretrain method=solider` end to end on tiny shapes: losses, checkpoint, resume, init."""

import json

import pytest
import torch
from safetensors.torch import load_file

from humanssl.config import load_config
from humanssl.engine import checkpoint
from humanssl.errors import UserError
from humanssl.pretrain import build_method, run_pretrain
from humanssl.pretrain_config import PretrainConfig
from tests.quiet import quiet

TINY = [
    "method=solider", "model.backbone=swin_mini", "model.drop_path=0.1",
    "data.synthetic_images=16", "data.synthetic_identities=4",
    # 96x32 global crops: a 3x1 last-stage map, the smallest that can have a foreground majority
    "crops.global_size=[96,32]", "crops.local_number=1", "crops.local_size=[48,16]",
    "dino.out_dim=32", "dino.hidden_dim=16", "dino.bottleneck_dim=8",
    "solider.part_head_hidden_dim=16", "solider.part_head_bottleneck_dim=8",
    "train.batch_size=4", "train.num_workers=0", "train.progress=false", "train.log_every=1",
    "train.device=cpu", "knn.enabled=false",
]


def tiny(tmp_path, *more):
    return load_config(PretrainConfig, None, TINY + [f"train.output_dir={tmp_path}", *more])


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_solider_steps_through_the_engine(tmp_path):
    summary = run_pretrain(tiny(tmp_path, "train.max_steps=4", "train.run_name=r"), echo=quiet)
    assert summary["finished"] and summary["steps"] == 4
    logged = records(tmp_path / "r")
    assert all(torch.isfinite(torch.tensor([r["dino"], r["semantic"]])).all() for r in logged)
    assert any(r["semantic"] > 0 for r in logged)
    # the share of crops the foreground test kept is logged, and only where the part task ran
    assert all(0.0 <= r["part_kept"] <= 1.0 and (r["part_kept"] > 0 or r["semantic"] == 0) for r in logged)
    assert all(r["loss"] == pytest.approx(r["dino"] + r["semantic"]) for r in logged)
    weights = load_file(str(checkpoint.resolve(tmp_path / "r") / "model.safetensors"))
    assert any(k.startswith("teacher.backbone.semantic_embed_w.") for k in weights)
    assert any(k.startswith("part_head.last_layer.weight_v") for k in weights)
    assert "loss.center" in weights


def test_solider_resume_is_bitwise_exact(tmp_path):
    common = ["train.max_steps=4", "train.checkpoint_every=2"]
    run_pretrain(tiny(tmp_path, *common, "train.run_name=full"), echo=quiet)
    run_pretrain(tiny(tmp_path, *common, "train.run_name=cut", "train.stop_after_steps=2"), echo=quiet)
    resumed = run_pretrain(tiny(tmp_path, *common, "train.run_name=cut", "train.resume=auto"), echo=quiet)
    assert resumed["finished"] and resumed["steps"] == 4
    a = load_file(str(checkpoint.resolve(tmp_path / "full") / "model.safetensors"))
    b = load_file(str(checkpoint.resolve(tmp_path / "cut") / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_init_from_a_dino_run_takes_its_student_and_teacher(tmp_path):
    run_pretrain(tiny(tmp_path, "method=dino", "train.max_steps=1", "train.run_name=dino"), echo=quiet)
    dino = load_file(str(checkpoint.resolve(tmp_path / "dino") / "model.safetensors"))
    method = build_method(tiny(tmp_path, f"model.init={tmp_path / 'dino'}"))
    state = method.state_dict()
    networks = [k for k in dino if k.startswith(("student.", "teacher."))]
    assert len(networks) > 100 and all(torch.equal(state[k], dino[k]) for k in networks)
    assert any(k.startswith("part_head.") for k in state) and not any(k.startswith("part_head.") for k in dino)
    assert torch.count_nonzero(state["loss.center"]) == 0  # as the official route: networks only

    with pytest.raises(UserError, match="do not fit"):
        build_method(tiny(tmp_path, f"model.init={tmp_path / 'dino'}", "dino.out_dim=64"))


def test_model_semantic_weight_sets_the_lambda_of_plain_calls(tmp_path):
    method = build_method(tiny(tmp_path, "method=dino", "model.semantic_weight=0.0"))
    x = torch.randn(2, 3, 96, 32)
    backbone = method.downstream_backbone().eval()
    torch.testing.assert_close(backbone(x), backbone.forward_stages(x, 0.0)[0])
    assert not torch.allclose(backbone(x), backbone.forward_stages(x, 1.0)[0])
    with pytest.raises(UserError, match="semantic_weight"):
        build_method(tiny(tmp_path, "method=dino", "model.backbone=resnet_mini", "model.semantic_weight=0.0"))


def test_center_per_lambda_keeps_one_dino_centre_per_lambda(tmp_path):
    summary = run_pretrain(tiny(tmp_path, "train.max_steps=2", "train.run_name=r", "solider.center_per_lambda=true"),
                           echo=quiet)
    assert summary["finished"]
    centre = load_file(str(checkpoint.resolve(tmp_path / "r") / "model.safetensors"))["loss.center"]
    assert centre.shape == (2, 32) and not torch.equal(centre[0], centre[1])


def test_model_strides_reach_the_swin_and_are_refused_elsewhere(tmp_path):
    method = build_method(tiny(tmp_path, "model.strides=[4,2,2,1]"))
    _, maps = method.student.backbone.forward_stages(torch.randn(1, 3, 64, 32), 0.2)
    assert [tuple(m.shape[-2:]) for m in maps] == [(16, 8), (8, 4), (4, 2), (4, 2)]
    with pytest.raises(UserError, match="strides"):
        build_method(tiny(tmp_path, "method=dino", "model.backbone=resnet_mini", "model.strides=[4,2,2,1]"))


def test_a_run_trained_with_model_strides_is_loaded_with_them(tmp_path):
    from humanssl.evaluate import load_backbone

    run_pretrain(tiny(tmp_path, "train.max_steps=1", "train.run_name=r", "model.strides=[4,2,2,1]"), echo=quiet)
    loaded = load_backbone(tmp_path / "r")
    _, maps = loaded.model.forward_stages(torch.randn(1, 3, 64, 32), 0.2)
    assert tuple(maps[-1].shape[-2:]) == (4, 2)  # stride 1 in the last merging, as trained


def test_model_torch_default_init_reaches_the_swin_and_is_refused_elsewhere(tmp_path):
    def spread(*more):
        return build_method(tiny(tmp_path, *more)).student.backbone.stages[1].blocks[0].ffn.layers[1].weight.detach().std()

    assert spread() < 0.025 < 0.04 < spread("model.torch_default_init=true")
    with pytest.raises(UserError, match="torch_default_init"):
        build_method(tiny(tmp_path, "method=dino", "model.backbone=resnet_mini", "model.torch_default_init=true"))
