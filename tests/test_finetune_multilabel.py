"""`humanssl finetune multilabel` / `humanssl evaluate multilabel`: the method, the run, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from humanssl.cli import main
from humanssl.config import load_config
from humanssl.errors import UserError
from humanssl.finetune_multilabel import labelled_subset, run_finetune_multilabel
from humanssl.finetune_multilabel_config import MultilabelFinetuneConfig
from humanssl.methods.multilabel_finetune import MultilabelFinetune, multilabel_bce
from humanssl.models.backbones import create_backbone
from tests.quiet import quiet


def tiny_trunk():
    torch.manual_seed(0)
    return create_backbone("resnet_mini", width=8)


def test_bce_sums_classes_averages_images_and_skips_difficult_pairs():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    difficult = torch.tensor([[False, False, True], [False, False, False]])
    p = torch.sigmoid(logits)
    per_pair = -(labels * p.log() + (1 - labels) * (1 - p).log())
    assert torch.allclose(multilabel_bce(logits, labels), per_pair.sum() / 2)
    assert torch.allclose(multilabel_bce(logits, labels, difficult), (per_pair.sum() - per_pair[0, 2]) / 2)


def test_linear_mode_trains_only_the_head_and_keeps_the_trunks_bn_statistics():
    method = MultilabelFinetune(tiny_trunk(), 6, mode="linear").train()
    assert torch.allclose(method.head.bias, torch.full((6,), 0.1))
    stats = {k: v.clone() for k, v in method.backbone.state_dict().items()}
    batch = {"image": torch.randn(4, 3, 32, 32), "labels": torch.randint(0, 2, (4, 6)).float()}
    method.training_step(batch, 0)["bce"].backward()
    assert not method.backbone.training
    assert all(p.grad is None for p in method.backbone.parameters())
    assert method.head.weight.grad is not None and method.head.weight.grad.abs().sum() > 0
    assert all(torch.equal(v, method.backbone.state_dict()[k]) for k, v in stats.items())
    trained = {id(p) for g in method.param_groups() for p in g["params"]}
    assert trained == {id(method.head.weight), id(method.head.bias)}


def test_full_mode_trains_the_trunk_at_its_own_lr_scale():
    method = MultilabelFinetune(tiny_trunk(), 3, mode="full", trunk_lr_scale=0.01).train()
    batch = {"image": torch.randn(4, 3, 32, 32), "labels": torch.randint(0, 2, (4, 3)).float()}
    method.training_step(batch, 0)["bce"].backward()
    assert method.backbone.conv1.weight.grad.abs().sum() > 0
    groups = method.param_groups()
    trunk = {id(p) for g in groups if g.get("lr_scale") == 0.01 for p in g["params"]}
    assert trunk == {id(p) for p in method.backbone.parameters()}
    with pytest.raises(UserError, match="model.mode"):
        MultilabelFinetune(tiny_trunk(), 3, mode="probe")


def test_labelled_subset_is_the_asked_fraction_drawn_once():
    data = list(range(200))
    a, b = labelled_subset(data, 0.1, seed=3), labelled_subset(data, 0.1, seed=3)
    assert len(a) == 20 and list(a.indices) == list(b.indices)
    assert list(labelled_subset(data, 0.1, seed=4).indices) != list(a.indices)
    assert labelled_subset(data, 1.0, seed=3) is data
    with pytest.raises(UserError, match="label_fraction"):
        load_config(MultilabelFinetuneConfig, None, ["data.label_fraction=0"])


def tiny_overrides(tmp_path, **extra):
    items = {
        "data.synthetic.image_size": "[32,32]", "data.synthetic.train_images": 128,
        "data.synthetic.test_images": 96, "model.backbone": "resnet_mini", "model.backbone_options": "{width: 8}",
        "transforms.size": 32, "transforms.resize": 32, "transforms.scale": "[0.6,1.0]",
        "optim.lr": 2.0, "train.epochs": 12, "train.batch_size": 32, "train.num_workers": 0,
        "train.progress": "false", "train.output_dir": str(tmp_path), "train.run_name": "probe",
        "eval.every_epochs": 4, **extra,
    }
    return [f"{k}={v}" for k, v in items.items()]


def test_a_linear_probe_on_a_random_trunk_learns_and_evaluate_reproduces_its_map(tmp_path, capsys):
    # The SS-PRL-beats-random check is tests/test_ssprl_learns.py; this one is the probe alone.
    cfg = load_config(MultilabelFinetuneConfig, None, tiny_overrides(tmp_path))
    summary = run_finetune_multilabel(cfg, echo=quiet)
    scores = json.loads((tmp_path / "probe" / "eval.json").read_text())
    assert summary["finished"] and scores["final"]["epoch"] == 12
    assert [r["epoch"] for r in scores["during training"]] == [4, 8]
    assert scores["best"]["mAP"] == max([scores["final"]["mAP"]] + [r["eval_mAP"] for r in scores["during training"]])
    # chance level: a constant score gives each class's AP = its positive rate in the test set
    from humanssl.data.multilabel import build_multilabel

    labels = build_multilabel("synthetic", None, "test", seed=0, num_images=96, image_size=(32, 32)).label_matrix()
    chance = 100 * labels.mean(0).mean()
    assert scores["final"]["mAP"] > chance + 5, (scores["final"]["mAP"], chance)
    assert set(scores["final"]["per_class_ap"]) == {"person", "ball", "box", "tree", "car", "sign"}

    out = tmp_path / "results.json"
    assert main(["evaluate", "multilabel", "--checkpoint", str(tmp_path / "probe"), "--dataset", "synthetic",
                 "--num-workers", "0", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mAP" in printed and "person" in printed
    assert json.loads(out.read_text())["mAP"] == pytest.approx(scores["final"]["mAP"], abs=1e-6)


def test_evaluate_multilabel_explains_what_it_needs(tmp_path, capsys):
    weights = tmp_path / "trunk.pth"
    torch.save(nn.Linear(2, 2).state_dict(), weights)
    assert main(["evaluate", "multilabel", "--checkpoint", str(weights), "--dataset", "synthetic"]) == 2
    assert "finetune multilabel model.init=" in capsys.readouterr().err
    assert main(["evaluate", "multilabel", "--checkpoint", str(tmp_path / "nope"), "--dataset", "voc"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_init_from_a_pretraining_run_loads_its_trunk(tmp_path):
    from safetensors.torch import save_file

    trunk = tiny_trunk()
    torch.nn.init.constant_(trunk.conv1.weight, 0.5)
    path = tmp_path / "ssprl.safetensors"
    save_file({f"backbone.{k}": v.contiguous() for k, v in trunk.state_dict().items()}, str(path))
    from humanssl.finetune import build_backbone

    cfg = load_config(MultilabelFinetuneConfig, None, [f"model.init={path}", "model.backbone=resnet_mini",
                                                         "model.backbone_options={width: 8}"])
    loaded = build_backbone(cfg.model)
    assert torch.equal(loaded.conv1.weight, trunk.conv1.weight)
    assert np.isclose(float(loaded.conv1.weight.detach().mean()), 0.5)
