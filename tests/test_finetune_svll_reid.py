"""`humanssl finetune svll-reid` end to end on tiny synthetic Market-1501 folders and a tiny random CLIP."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from humanssl.cli import demo_config_path, main
from humanssl.config import load_config
from humanssl.engine import checkpoint
from humanssl.errors import UserError

pytest.importorskip("open_clip")

from humanssl.evaluate import run_evaluate_reid  # noqa: E402
from humanssl.finetune_svll_reid import FROZEN, TRAINED, run_finetune_svll_reid  # noqa: E402
from humanssl.finetune_svll_reid_config import SvllReidConfig  # noqa: E402
from tests.quiet import quiet

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEMO = "demo_finetune_svll_reid.yaml"
FAST = ["train.num_workers=0", "train.progress=false", "train.device=cpu", "train.log_every=1",
        "data.synthetic.distractors=5", "data.synthetic.junk=2"]
TINY = FAST + ["data.synthetic.train_ids=8", "data.synthetic.test_ids=6", "data.synthetic.images_per_camera=1",
               "sampler.p=4", "sampler.k=2", "stage1.batch_size=8", "eval.baselines=false"]



def config(tmp_path, *overrides):
    return load_config(SvllReidConfig, demo_config_path(DEMO), [f"train.output_dir={tmp_path}", *overrides])


pytestmark = pytest.mark.usefixtures("one_thread")


def test_stage2_improves_retrieval_over_the_frozen_clip_encoder(tmp_path):
    cfg = config(tmp_path, *FAST, "data.synthetic.train_ids=30", "data.synthetic.test_ids=30", "sampler.p=8",
                 "sampler.k=2", "stage1.epochs=3", "stage1.batch_size=32", "stage2.epochs=8", "stage2.milestones=[7]",
                 "stage2.visual_ssl=false", "train.log_every=20")
    summary = run_finetune_svll_reid(cfg, echo=quiet)
    scores = summary["eval"]
    frozen, trained = (scores[k]["plain"]["mAP"] for k in (FROZEN, TRAINED))
    assert summary["finished"] and trained >= frozen + 10, scores
    log = [json.loads(line) for line in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    first = {r["stage"]: r for r in reversed(log) if "stage" in r}
    last = {r["stage"]: r for r in log if "stage" in r}
    assert last["stage1"]["i2t"] + last["stage1"]["t2i"] < first["stage1"]["i2t"] + first["stage1"]["t2i"]
    assert "language_ssl" in last["stage1"] and "visual_ssl" not in last["stage2"]


def test_checkpoint_is_an_evaluate_reid_checkpoint_with_official_keys(tmp_path):
    summary = run_finetune_svll_reid(config(tmp_path, *TINY, "train.run_name=r", "train.max_steps=2"), echo=quiet)
    run = tmp_path / "r"
    step = checkpoint.resolve(run)
    weights = load_file(str(step / checkpoint.WEIGHTS))
    assert {"pid_of_label", "sie_sizes", "model.cv_embed", "model.prompt_learner.cls_ctx",
            "model.image_mlp.layer3.weight", "model.text_mlp.layer3.weight"} <= set(weights)
    assert weights["sie_sizes"].tolist() == [6, 1]
    assert json.loads((step / "pid2label.json").read_text()) == json.loads((run / "pid2label.json").read_text())
    data = run / "synthetic_market1501"
    result = run_evaluate_reid(run, data, echo=quiet, progress=False)
    assert result["plain"]["mAP"] == pytest.approx(summary["eval"][TRAINED]["plain"]["mAP"])
    assert result["backbone"] == "svll-reid ViT-B-16"
    assert main(["evaluate", "reid", "--checkpoint", str(run), "--data", str(data), "--no-progress",
                 "--num-workers", "0"]) == 0


def test_resume_between_and_inside_stages_equals_an_uninterrupted_run(tmp_path):
    common = [*TINY, "train.max_steps=3", "train.checkpoint_every=1"]
    run_finetune_svll_reid(config(tmp_path, *common, "train.run_name=full"), echo=quiet)
    final = load_file(str(checkpoint.resolve(tmp_path / "full") / checkpoint.WEIGHTS))
    for cut in (2, 3, 4):  # inside stage 1, at its end, inside stage 2
        name = f"cut{cut}"
        cut_run = run_finetune_svll_reid(config(tmp_path, *common, f"train.run_name={name}",
                                                f"train.stop_after_steps={cut}"), echo=quiet)
        assert not cut_run["finished"]
        resumed = run_finetune_svll_reid(config(tmp_path, *common, f"train.run_name={name}", "train.resume=auto"),
                                         echo=quiet)
        assert resumed["finished"] and resumed["steps"] == 6
        got = load_file(str(checkpoint.resolve(tmp_path / name) / checkpoint.WEIGHTS))
        for k in final:
            assert torch.equal(final[k], got[k]), (cut, k)


def test_ssl_switches_reach_the_losses(tmp_path):
    summary = run_finetune_svll_reid(config(tmp_path, *TINY, "train.run_name=nossl", "train.max_steps=1",
                                            "stage1.language_ssl=false", "stage2.visual_ssl=false"), echo=quiet)
    log = [json.loads(line) for line in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert [sorted(k for k in r if k in ("i2t", "t2i", "id", "triplet", "language_ssl", "visual_ssl")) for r in log] \
        == [["i2t", "t2i"], ["i2t", "id", "triplet"]]
    weights = load_file(str(checkpoint.resolve(tmp_path / "nossl") / checkpoint.WEIGHTS))
    assert not any("_mlp." in k for k in weights)  # neither SSL term: plain CLIP-ReID


def test_user_mistakes_are_one_clear_line(tmp_path, capsys):
    market = str(CONFIGS / "svll_reid_market_vitb16.yaml")
    assert main(["finetune", "svll-reid", market, "data.root=/nowhere", f"train.output_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "clip.weights=PATH" in err and "never downloaded" in err and err.count("\n") == 1
    assert main(["finetune", "svll-reid", market, f"clip.weights={tmp_path / 'ViT-B-16.pt'}"]) == 2
    assert "is not a file" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was written before the check
    assert main(["finetune", "svll-reid", "train.epochs=5"]) == 2
    assert "stage1.epochs" in capsys.readouterr().err
    with pytest.raises(UserError, match="sampler.p=40"):
        run_finetune_svll_reid(config(tmp_path, *TINY, "sampler.p=40"), echo=quiet)


@pytest.mark.parametrize("name,size,stage1,stage2,view", [
    ("svll_reid_market_vitb16.yaml", [256, 128], (120, 256, 0.8), (16, 4, 5e-6), False),
    ("svll_reid_veri_vitb16.yaml", [256, 256], (60, 64, 2.0), (8, 4, 5e-6), True),
    ("svll_reid_vehicleid_vitb16.yaml", [256, 256], (60, 64, 0.8), (8, 4, 5e-5), True),
])
def test_official_recipes_load_with_their_numbers(name, size, stage1, stage2, view):
    cfg = load_config(SvllReidConfig, CONFIGS / name, ["clip.weights=ViT-B-16.pt"])
    assert list(cfg.transforms.size) == size and cfg.model.stride == 12 and cfg.model.sie_camera
    assert cfg.model.sie_view == view and cfg.model.sie_coe == 1.0
    assert (cfg.stage1.epochs, cfg.stage1.batch_size, cfg.stage1.ssl_loss_weight) == stage1
    assert (cfg.sampler.p, cfg.sampler.k, cfg.stage2.lr) == stage2
    assert cfg.stage1.prompt_aug_method == "mask" and cfg.stage1.prompt_aug_scale == 0.5
    assert cfg.stage2.visual_ssl and cfg.stage2.ssl_loss_weight == 0.8 and cfg.transforms.erasing_prob == 0.5
    assert cfg.train.seed == 1234


def test_cli_show_config_prints_the_demo(capsys):
    assert main(["finetune", "svll-reid", "--show-config", "sampler.p=4"]) == 0
    out = capsys.readouterr().out
    assert "task: svll-reid" in out and "random_init: true" in out and "batch_size: 16" in out


def test_both_stages_run_under_two_process_ddp(tmp_path):
    # Stage-1 batches of 4 split over 2 processes: a process often holds a single identity and
    # has no NT-Xent pair, yet must join every gradient all-reduce (the run would stall if not).
    import os
    import subprocess
    import sys

    args = [f"train.output_dir={tmp_path}", "train.run_name=d", *TINY, "stage1.batch_size=4",
            "stage1.epochs=1", "stage2.epochs=1"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "humanssl", "finetune", "svll-reid", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "2 process(es)" in done.stdout
    assert (checkpoint.resolve(tmp_path / "d") / "model.safetensors").is_file()
