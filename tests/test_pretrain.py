"""`humanssl pretrain` end to end on tiny shapes: outputs, exact resume, bad inputs."""

import json
import re

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from humanssl.cli import main
from humanssl.config import load_config
from humanssl.engine import checkpoint
from humanssl.errors import UserError
from humanssl.pretrain import run_pretrain
from humanssl.pretrain_config import PretrainConfig

TINY = [
    "data.synthetic_images=48", "data.synthetic_identities=8",
    "crops.global_size=[32,16]", "crops.local_number=2", "crops.local_size=[16,8]",
    "model.backbone=vit_mini", "model.drop_path=0.1",
    "dino.out_dim=64", "dino.hidden_dim=32", "dino.bottleneck_dim=16",
    "train.batch_size=8", "train.num_workers=0", "train.progress=false", "train.log_every=1",
    "train.device=cpu", "knn.identities=6", "knn.cameras_per_identity=2", "knn.images_per_camera=1",
]


def tiny(tmp_path, *more):
    return load_config(PretrainConfig, None, TINY + [f"train.output_dir={tmp_path}", *more])


def test_run_writes_config_checkpoint_log_and_knn(tmp_path):
    summary = run_pretrain(tiny(tmp_path, "train.epochs=2", "train.run_name=r"), echo=lambda *a: None)
    run = tmp_path / "r"
    assert summary["finished"] and summary["steps"] == 2 * (48 // 8)
    assert load_config(PretrainConfig, run / "config.yaml").train.epochs == 2
    assert len((run / "metrics.jsonl").read_text().splitlines()) == summary["steps"]
    assert set(json.loads((run / "knn.json").read_text())) == {"raw pixels", "random init", "pretrained"}
    weights = load_file(str(checkpoint.resolve(run) / "model.safetensors"))
    assert any(k.startswith("teacher.backbone.") for k in weights)
    assert any(k.startswith("student.head.last_layer.weight_v") for k in weights)
    assert (run / "summary.png").is_file()


# crops.on_device: the crops are drawn on the device from the trainer's RNG, which checkpoints keep.
@pytest.mark.parametrize("where", [[], ["crops.on_device=true"]], ids=["loader_crops", "device_crops"])
def test_resume_auto_is_bitwise_exact(tmp_path, where):
    common = ["train.max_steps=20", "train.checkpoint_every=10", "knn.enabled=false", *where]
    run_pretrain(tiny(tmp_path, *common, "train.run_name=full"), echo=lambda *a: None)
    stopped = run_pretrain(tiny(tmp_path, *common, "train.run_name=cut", "train.stop_after_steps=10"),
                           echo=lambda *a: None)
    assert not stopped["finished"] and stopped["steps"] == 10
    resumed = run_pretrain(tiny(tmp_path, *common, "train.run_name=cut", "train.resume=auto"), echo=lambda *a: None)
    assert resumed["finished"] and resumed["steps"] == 20
    a = load_file(str(checkpoint.resolve(tmp_path / "full") / "model.safetensors"))
    b = load_file(str(checkpoint.resolve(tmp_path / "cut") / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_device_crops_are_refused_for_methods_with_their_own_views(tmp_path):
    with pytest.raises(UserError, match="crops.on_device=true is for method=dino or solider"):
        run_pretrain(tiny(tmp_path, "method=ssprl", "crops.on_device=true"), echo=lambda *a: None)


def test_existing_run_is_never_overwritten(tmp_path):
    run_pretrain(tiny(tmp_path, "train.max_steps=1", "knn.enabled=false", "train.run_name=r"), echo=lambda *a: None)
    with pytest.raises(UserError, match="already holds checkpoints"):
        run_pretrain(tiny(tmp_path, "train.max_steps=1", "knn.enabled=false", "train.run_name=r"), echo=lambda *a: None)


def write_images(folder, n, size=(16, 32)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", size, (i * 7 % 255, 80, 160)).save(folder / f"img_{i:04d}.png")


def test_missing_and_empty_data_folder(tmp_path):
    with pytest.raises(UserError, match="does-not-exist"):
        run_pretrain(tiny(tmp_path, "data.source=folder", f"data.root={tmp_path / 'does-not-exist'}"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty"):
        run_pretrain(tiny(tmp_path, "data.source=folder", f"data.root={tmp_path / 'empty'}"))
    with pytest.raises(UserError, match="data.root is required"):
        run_pretrain(tiny(tmp_path, "data.source=folder"))


def test_a_few_corrupt_images_are_skipped(tmp_path):
    data = tmp_path / "imgs"
    write_images(data, 199)
    (data / "img_bad.jpg").write_bytes(b"not a jpeg at all")
    summary = run_pretrain(tiny(tmp_path, "data.source=folder", f"data.root={data}", "train.epochs=1",
                                "train.batch_size=25", "knn.enabled=false"), echo=lambda *a: None)
    assert summary["finished"] and summary["skipped_images"] == 1


def test_many_corrupt_images_stop_the_run_with_examples(tmp_path):
    data = tmp_path / "imgs"
    write_images(data, 30)
    for i in range(4):
        (data / f"broken_{i}.jpg").write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match=r"broken_\d\.jpg"):
        run_pretrain(tiny(tmp_path, "data.source=folder", f"data.root={data}", "train.epochs=1",
                          "knn.enabled=false"), echo=lambda *a: None)


def test_cli_reports_config_mistakes_in_one_line(capsys):
    assert main(["pretrain", "train.epochz=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "train.epochz" in err and "epochs" in err
    assert main(["pretrain", "train.epochs=many"]) == 2
    assert "expects int" in capsys.readouterr().err
    assert main(["pretrain", "missing.yaml"]) == 2
    assert "config file not found: missing.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("method", [[], ["method=solider"]], ids=["default", "named"])
def test_the_default_pretraining_demo_is_solider(capsys, method):
    assert main(["pretrain", "--show-config", "train.epochs=3", *method]) == 0
    out = capsys.readouterr().out
    assert "epochs: 3" in out and "method: solider" in out and "backbone: swin_mini" in out
    assert "on_device: true" in out
    assert "first_stage:\n  method: dino" in out


def test_the_default_demo_takes_solider_s_faster_route_dino_first(tmp_path):
    from humanssl.cli import DEMO_PRETRAIN_SOLIDER, demo_config_path
    from humanssl.pretrain_first_stage import first_stage_config

    cfg = load_config(PretrainConfig, demo_config_path(DEMO_PRETRAIN_SOLIDER), ["train.seed=1"])
    first = first_stage_config(cfg, tmp_path)
    assert (cfg.method, first.method, first.first_stage.method) == ("solider", "dino", None)
    assert first.model.semantic_weight == 0.0 and first.train.seed == 1 and not first.knn.enabled
    assert first.data == cfg.data and first.train.epochs == 10 * cfg.train.epochs  # the official 100 + 10
    assert (first.train.output_dir, first.train.run_name, first.train.resume) == (str(tmp_path), "first_stage", "auto")


def test_method_dino_without_a_config_runs_the_dino_demo(capsys):
    assert main(["pretrain", "method=dino", "--show-config"]) == 0
    out = capsys.readouterr().out
    assert "method: dino" in out and "backbone: resnet_mini" in out


def test_method_ssprl_without_a_config_runs_the_ssprl_demo(capsys):
    assert main(["pretrain", "method=ssprl", "--show-config"]) == 0
    out = capsys.readouterr().out
    assert "method: ssprl" in out and "backbone: resnet_mini" in out
    assert "lr: 10.0" in out and "size_crops:\n  - 56\n  - 24" in out


@pytest.mark.parametrize("override", ["model.init=/runs/dino", "train.run_name=other", "first_stage.method=dino"])
def test_a_first_stage_override_of_a_key_it_sets_itself_is_refused_by_name(tmp_path, override):
    from humanssl.cli import DEMO_PRETRAIN_SOLIDER, demo_config_path
    from humanssl.pretrain_first_stage import first_stage_config

    cfg = load_config(PretrainConfig, demo_config_path(DEMO_PRETRAIN_SOLIDER), [f"first_stage.overrides=[{override}]"])
    with pytest.raises(UserError, match=rf"first_stage.overrides: '{re.escape(override)}' sets {override.split('=')[0]}"):
        first_stage_config(cfg, tmp_path)
