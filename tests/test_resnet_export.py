"""`humanssl convert ssprl`: an SS-PRL run's ResNet-50 trunk in torchvision and Detectron2 naming."""

from __future__ import annotations

import pickle

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from humanssl.cli import main
from humanssl.hub.resnet_export import detectron2_name
from humanssl.methods.ssprl import SSPRL, SSPRLConfig
from humanssl.models.backbones import create_backbone


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A step folder holding a (random) SS-PRL method with a ResNet-50 trunk, as a run writes it."""
    torch.manual_seed(0)
    cfg = SSPRLConfig(nmb_ptypes=8, nmb_local_ptypes=[4, 4], hidden_mlp=64, feat_dim=16)
    method = SSPRL(cfg, backbone=create_backbone("resnet50", drop_path_rate=0.0))
    step = tmp_path_factory.mktemp("run") / "step_00000010"
    step.mkdir()
    save_file({k: v.contiguous() for k, v in method.state_dict().items()}, str(step / "model.safetensors"))
    return step, {k[len("backbone."):]: v for k, v in method.state_dict().items() if k.startswith("backbone.")}


def test_torchvision_export_loads_into_resnet50_with_only_fc_missing(run_dir, tmp_path, capsys):
    step, trunk = run_dir
    out = tmp_path / "trunk.pth"
    assert main(["convert", "ssprl", str(step), "-o", str(out)]) == 0
    assert "torchvision naming" in capsys.readouterr().out
    model = torchvision.models.resnet50(weights=None)
    report = model.load_state_dict(torch.load(out), strict=False)
    assert sorted(report.missing_keys) == ["fc.bias", "fc.weight"] and not report.unexpected_keys
    assert torch.equal(model.layer3[2].conv2.weight, trunk["layer3.2.conv2.weight"])
    # an existing output is kept unless --force
    assert main(["convert", "ssprl", str(step), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_detectron2_export_uses_its_backbone_names(run_dir, tmp_path):
    step, trunk = run_dir
    out = tmp_path / "trunk.pkl"
    assert main(["convert", "ssprl", str(step), "-o", str(out), "--to", "detectron2"]) == 0
    saved = pickle.loads(out.read_bytes())
    assert saved["matching_heuristics"] is True
    model = saved["model"]
    assert len(model) == len([k for k in trunk if not k.endswith("num_batches_tracked")])
    for name in ("stem.conv1.weight", "stem.conv1.norm.running_var", "res2.0.conv3.norm.weight",
                 "res2.0.shortcut.weight", "res2.0.shortcut.norm.bias", "res5.2.conv2.weight"):
        assert name in model, name
    assert (model["res4.5.conv1.norm.running_mean"] == trunk["layer3.5.bn1.running_mean"].numpy()).all()
    assert detectron2_name("layer4.0.downsample.1.weight") == "res5.0.shortcut.norm.weight"


def test_a_checkpoint_without_a_resnet_trunk_is_refused(tmp_path, capsys):
    step = tmp_path / "step_00000001"
    step.mkdir()
    save_file({"student.backbone.patch_embed.proj.weight": torch.zeros(2, 3, 4, 4)}, str(step / "model.safetensors"))
    assert main(["convert", "ssprl", str(step), "-o", str(tmp_path / "x.pth")]) == 2
    err = capsys.readouterr().err
    assert "no ResNet trunk" in err and "backbone.conv1.weight" in err
    assert not (tmp_path / "x.pth").exists()
