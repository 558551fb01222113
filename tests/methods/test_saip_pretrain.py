"""`humanssl pretrain configs/saip_vit_tiny.yaml` end to end at tiny sizes, and the recipe's numbers."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from humanssl.cli import main
from humanssl.config import load_config
from humanssl.engine import checkpoint
from humanssl.engine.schedules import scaled_lr
from humanssl.pretrain_config import PretrainConfig

RECIPE = str(Path(__file__).resolve().parents[2] / "configs" / "saip_vit_tiny.yaml")
TINY = [
    "data.source=synthetic", "data.synthetic_images=16", "data.synthetic_identities=4",
    "model.backbone=saip_vit_mini", "crops.global_size=[128,64]", "crops.local_size=[64,32]",
    "crops.local_number=2", "saip_views.reference_size=[80,80]", "saip_views.procedural_backgrounds=4",
    "saip.out_dim=32", "saip.hidden_dim=16", "saip.bottleneck_dim=8", "saip.decoder_embed_dim=16",
    "saip.decoder_depth=1", "saip.decoder_num_heads=2", "saip.css_hidden_dim=16", "saip.css_num_heads=2",
    "train.batch_size=4", "train.accumulation=1", "train.num_workers=0", "train.progress=false",
    "train.log_every=1", "train.device=cpu", "optim.warmup_epochs=1",
]


# the official teacher: EMA after every micro-batch, momentum indexed within the epoch
OFFICIAL_EMA = ["saip.ema_every_micro_batch=true", "saip.momentum_index=epoch_step", "train.accumulation=2",
                "train.batch_size=2"]


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_recipe_carries_the_official_numbers():
    cfg = load_config(PretrainConfig, RECIPE, ["data.root=/data"])
    assert cfg.method == "saip" and cfg.model.backbone == "saip_vit_tiny" and cfg.model.drop_path == 0.0
    assert cfg.crops.local_number == 7 and tuple(cfg.crops.local_size) == (128, 64)
    assert tuple(cfg.saip_views.reference_size) == (224, 224)
    o, t = cfg.optim, cfg.train
    assert tuple(o.betas) == (0.9, 0.95) and o.weight_decay == o.weight_decay_end == 0.05 and o.clip_grad == 0
    assert scaled_lr(o.lr, t.batch_size * t.accumulation * 8) == 2.0e-3 and o.min_lr == 0 and o.warmup_epochs == 10
    assert cfg.saip.out_dim == 65536 and cfg.saip.mask_ratio == 0.75 and cfg.saip.teacher_temp == 0.04


@pytest.mark.parametrize("mode", [[], OFFICIAL_EMA], ids=["default", "official-ema"])
def test_cli_runs_the_recipe_at_tiny_sizes_and_resumes_exactly(tmp_path, mode):
    def run(name, *more):
        return main(["pretrain", RECIPE, *TINY, f"train.output_dir={tmp_path}", f"train.run_name={name}",
                     "train.max_steps=3", "train.checkpoint_every=1", "knn.enabled=false", *mode, *more])

    assert run("full") == 0
    logged = records(tmp_path / "full")
    assert [r["step"] for r in logged] == [1, 2, 3]
    for r in logged:
        terms = [r[k] for k in ("csm_rep", "csm_att", "csr", "css_inst", "css_roi")]
        assert all(torch.isfinite(torch.tensor(terms))) and abs(sum(terms) - r["loss"]) < 1e-4
    assert logged[-1]["csm_att"] > 0  # the student has moved away from its teacher
    full = load_file(str(checkpoint.resolve(tmp_path / "full") / "model.safetensors"))
    assert "teacher.backbone.pos_embed" in full and "student.css_decoder.kernel_pred.weight" in full

    assert run("cut", "train.stop_after_steps=2") == 0
    assert run("cut", "train.resume=auto") == 0
    cut = load_file(str(checkpoint.resolve(tmp_path / "cut") / "model.safetensors"))
    assert full.keys() == cut.keys()
    assert all(torch.equal(full[k], cut[k]) for k in full)


def test_cli_reports_a_wrong_backbone_in_one_line(tmp_path, capsys):
    assert main(["pretrain", RECIPE, *TINY, "model.backbone=vit_small", f"train.output_dir={tmp_path}"]) == 2
    assert "model.backbone" in capsys.readouterr().err


def test_saip_vit_init_reaches_student_and_teacher():
    from humanssl.pretrain import build_method

    cfg = load_config(PretrainConfig, None, ["method=saip", *TINY, "saip.vit_init=dino"])
    method = build_method(cfg)
    student, teacher = method.student.backbone.pos_embed, method.teacher.backbone.pos_embed
    assert student.std() < 0.03 and torch.equal(student, teacher)
