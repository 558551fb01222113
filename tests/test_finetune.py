"""`humanssl finetune reid` end to end on tiny synthetic Market-1501 folders."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from humanssl.cli import main
from humanssl.config import load_config
from humanssl.data.reid import load_reid_dataset
from humanssl.engine import checkpoint
from humanssl.errors import UserError
from humanssl.finetune import build_backbone, run_finetune
from humanssl.finetune_config import FinetuneConfig, ModelConfig
from humanssl.models.backbones import create_backbone
from tests.quiet import quiet

SMALL = [  # 64x32 people, mini ResNet, CPU
    "data.dataset=synthetic", "data.synthetic.image_size=[64,32]", "data.synthetic.distractors=10",
    "data.synthetic.junk=5", "model.backbone=resnet_mini", "transforms.size=[64,32]", "transforms.padding=4",
    "optim.lr=0.1", "optim.warmup_epochs=1", "optim.min_lr=0.0", "train.num_workers=0",
    "train.progress=false", "train.device=cpu", "train.log_every=1",
]
TINY = SMALL + ["data.synthetic.train_ids=8", "data.synthetic.test_ids=6", "data.synthetic.images_per_camera=1",
                "data.synthetic.distractors=2", "data.synthetic.junk=1", "sampler.p=4", "sampler.k=2"]



def config(tmp_path, base, *more):
    return load_config(FinetuneConfig, None, base + [f"train.output_dir={tmp_path}", *more])


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("seed", [0, 1])
def test_fine_tuning_learns_identities(tmp_path, seed):
    cfg = config(tmp_path, SMALL, f"train.seed={seed}", "train.epochs=12", "data.synthetic.train_ids=40",
                 "data.synthetic.test_ids=30", "sampler.p=8", "sampler.k=4", "train.log_every=20")
    scores = run_finetune(cfg, echo=quiet)["eval"]
    raw, before, after = (scores[k]["plain"]["mAP"] for k in ("raw pixels", "before", "fine-tuned"))
    assert after >= before + 10, scores
    assert after > raw, scores


def test_outputs_pid2label_and_evaluation_during_training(tmp_path):
    cfg = config(tmp_path, TINY, "train.run_name=r", "train.epochs=2", "eval.every_epochs=1", "eval.rerank=true")
    summary = run_finetune(cfg, echo=quiet)
    run = tmp_path / "r"
    assert summary["finished"]
    ds = load_reid_dataset("market1501", run / "synthetic_market1501")
    expected = {str(k): v for k, v in ds.pid2label.items()}
    step = checkpoint.resolve(run)
    assert json.loads((run / "pid2label.json").read_text()) == expected
    assert json.loads((step / "pid2label.json").read_text()) == expected
    weights = load_file(str(step / "model.safetensors"))
    assert weights["pid_of_label"].tolist() == [ds.label2pid[i] for i in range(ds.num_train_pids)]
    assert torch.all(weights["neck.bn.bias"] == 0)
    scores = json.loads((run / "eval.json").read_text())
    assert {"raw pixels", "before", "fine-tuned", "during training"} <= set(scores)
    assert set(scores["fine-tuned"]) == {"plain", "rerank"}
    assert [r["epoch"] for r in scores["during training"]] == [1.0]  # the last epoch is the final evaluation
    assert load_config(FinetuneConfig, run / "config.yaml").train.batch_size == 4 * 2


def test_resume_equals_an_uninterrupted_run(tmp_path):
    common = ["train.max_steps=6", "train.checkpoint_every=3", "eval.baselines=false"]
    run_finetune(config(tmp_path, TINY, *common, "train.run_name=full"), echo=quiet)
    cut = run_finetune(config(tmp_path, TINY, *common, "train.run_name=cut", "train.stop_after_steps=3"), echo=quiet)
    assert not cut["finished"]
    resumed = run_finetune(config(tmp_path, TINY, *common, "train.run_name=cut", "train.resume=auto"), echo=quiet)
    assert resumed["finished"] and resumed["steps"] == 6
    a = load_file(str(checkpoint.resolve(tmp_path / "full") / "model.safetensors"))
    b = load_file(str(checkpoint.resolve(tmp_path / "cut") / "model.safetensors"))
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_init_from_a_pretraining_run_a_safetensors_and_a_pth(tmp_path):
    torch.manual_seed(1)
    teacher = create_backbone("resnet_mini").state_dict()
    student = {k: v + 1 if v.is_floating_point() else v for k, v in teacher.items()}
    tensors = {**{f"teacher.backbone.{k}": v for k, v in teacher.items()},
               **{f"student.backbone.{k}": v for k, v in student.items()}}
    checkpoint.save_checkpoint(tmp_path / "pre" / "checkpoints", 10, tensors, {}, "model:\n  backbone: resnet_mini\n")
    save_file(teacher, str(tmp_path / "bare.safetensors"))
    torch.save({"state_dict": student}, tmp_path / "bare.pth")
    cases = [(str(tmp_path / "pre"), "teacher", teacher), (str(tmp_path / "pre"), "student", student),
             (str(tmp_path / "bare.safetensors"), "teacher", teacher), (str(tmp_path / "bare.pth"), "teacher", student)]
    for init, part, expected in cases:
        got = build_backbone(ModelConfig(backbone="resnet_mini", init=init, init_part=part)).state_dict()
        for k, v in expected.items():
            assert torch.equal(got[k], v), (init, part, k)
    with pytest.raises(UserError, match="do not fit|do not match"):
        build_backbone(ModelConfig(backbone="resnet18", init=str(tmp_path / "pre")))
    with pytest.raises(UserError, match="model.init"):
        build_backbone(ModelConfig(backbone="resnet_mini", init=str(tmp_path / "nothing-here")))


def test_user_mistakes_are_one_clear_message(tmp_path, capsys):
    with pytest.raises(UserError, match="Market-1501"):
        run_finetune(config(tmp_path, TINY, "data.dataset=market1501", f"data.root={tmp_path / 'empty'}"), echo=quiet)
    with pytest.raises(UserError, match="data.root is required"):
        run_finetune(config(tmp_path, TINY, "data.dataset=msmt17"), echo=quiet)
    with pytest.raises(UserError, match="sampler.p=9"):
        run_finetune(config(tmp_path, TINY, "sampler.p=9", "train.run_name=p9"), echo=quiet)
    assert main(["finetune", "reid", "loss.triplet_margn=0.3"]) == 2
    err = capsys.readouterr().err
    assert "loss.triplet_margn" in err and "triplet_margin" in err and err.count("\n") == 1


def test_cli_show_config_prints_the_demo(capsys):
    assert main(["finetune", "reid", "--show-config", "sampler.p=4"]) == 0
    out = capsys.readouterr().out
    assert "backbone: resnet_mini" in out and "dataset: synthetic" in out and "batch_size: 16" in out
