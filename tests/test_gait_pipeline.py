"""`humanssl pretrain` (method: selfgait) and `humanssl finetune gait` end to end on tiny
synthetic CASIA-B trees: run folders, eval.json, init from a pretraining run, label rate,
a falling triplet loss, and clear errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from humanssl.cli import main
from humanssl.data.gait import GaitDataWarning
from humanssl.data.synthetic_gait import write_casiab
from humanssl.engine.run_dir import read_metrics
from humanssl.errors import UserError

NM = ("nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06")
VIEWS = ("000", "090")
TINY = ["train.num_workers=0", "train.progress=false", "train.checkpoint_every=0", "train.log_every=1",
        "data.frames=4", "eval.batch_size=8"]


@pytest.fixture(autouse=True)
def _quiet_views():
    # the tiny trees hold 2 of CASIA-B's 11 views on purpose
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GaitDataWarning)
        yield


@pytest.fixture(scope="module")
def casia(tmp_path_factory):
    root = tmp_path_factory.mktemp("casia")
    write_casiab(root, 4, seed=0, types=NM, views=VIEWS, frames=(5, 6), first_id=1)
    write_casiab(root, 3, seed=0, types=NM, views=VIEWS, frames=(5, 6), first_id=75)
    return root


def nm_rank1(run: Path, key: str) -> float:
    return json.loads((run / "eval.json").read_text())[key]["rank1"]["NM"]


def losses_on_a_fixed_batch(method, batch: dict, key: str, lr: float, steps: int) -> list[float]:
    """Train `method` with SGD on one batch for `steps` steps (its after_step included, e.g.
    BYOL's target update); the loss `key` of every step."""
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    losses = []
    for step in range(steps):
        loss = method.training_step(batch, step)[key]
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.after_step(step)
        losses.append(loss.item())
    return losses


def test_pretrain_then_finetune_with_few_labels(casia, tmp_path, capsys):
    out = tmp_path / "runs"
    rc = main(["pretrain", "method=selfgait", "data.source=casiab", f"data.root={casia}", "data.split=casiab",
               "sampler.p=2", "sampler.m=2", "train.max_steps=2", f"train.output_dir={out}", "train.run_name=pre",
               *TINY])
    assert rc == 0, capsys.readouterr().err
    pre = out / "pre"
    assert (pre / "checkpoints").is_dir() and (pre / "config.yaml").is_file()
    assert "method: selfgait" in (pre / "config.yaml").read_text()
    scores = json.loads((pre / "eval.json").read_text())
    assert set(scores) == {"random init", "pretrained"}

    rc = main(["finetune", "gait", "data.source=casiab", f"data.root={casia}", "data.split=casiab",
               f"model.init={pre}", "label_rate=0.5", "sampler.p=2", "sampler.m=2", "train.max_steps=2",
               f"train.output_dir={out}", "train.run_name=ft", *TINY])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "labelled for fine-tuning: 2 ids" in captured.out
    ft = out / "ft"
    # the encoder starts as the pretraining run's online chain: same test features, same score
    assert nm_rank1(ft, "before") == pytest.approx(nm_rank1(pre, "pretrained"))
    assert 0.0 <= nm_rank1(ft, "fine-tuned") <= 100.0
    losses = [r["triplet"] for r in read_metrics(ft / "metrics.jsonl") if "triplet" in r]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))


def test_fresh_part_fcs_keep_the_pretrained_setnet_and_micro_motion_only(casia, tmp_path, capsys):
    from humanssl.finetune_gait import build_encoder
    from humanssl.gait_config import GaitModelConfig

    out = tmp_path / "runs"
    assert main(["pretrain", "method=selfgait", "data.source=casiab", f"data.root={casia}", "data.split=casiab",
                 "sampler.p=2", "sampler.m=2", "train.max_steps=1", f"train.output_dir={out}", "train.run_name=pre",
                 "eval.enabled=false", *TINY]) == 0, capsys.readouterr().err
    kept = build_encoder(GaitModelConfig(init=str(out / "pre")))
    fresh = build_encoder(GaitModelConfig(init=str(out / "pre"), fresh_part_fcs=True))
    for name in ("online_network", "conv_trans"):
        for (k, a), (_, b) in zip(getattr(kept, name).state_dict().items(), getattr(fresh, name).state_dict().items()):
            assert torch.equal(a, b), f"{name}.{k}"
    assert not torch.equal(kept.TP_1.fc_bin, fresh.TP_1.fc_bin)
    with pytest.raises(UserError, match="model.init"):
        build_encoder(GaitModelConfig(fresh_part_fcs=True))


def test_triplet_finetuning_loss_falls_on_a_fixed_batch(casia):
    from humanssl.data.gait import FrameSampling, GaitSequences, collate_clips, load_casiab
    from humanssl.methods.gait_finetune import GaitFinetune
    from humanssl.models.selfgait import SelfGaitEncoder

    torch.manual_seed(0)
    np.random.seed(0)  # the frame windows come from the global NumPy RNG
    seqs = [s for s in load_casiab(casia) if s.subject in ("001", "002", "003") and s.seq_type in NM[:2]]
    ds = GaitSequences(seqs, FrameSampling("window", 4))
    batch = collate_clips([ds[i] for i in range(len(ds))])  # 3 ids x 2 walks x 2 views
    losses = losses_on_a_fixed_batch(GaitFinetune(SelfGaitEncoder(hidden_dim=16)), batch, "triplet", 0.5, 8)
    assert losses[0] > 0 and losses[-1] < 0.9 * losses[0], losses


def test_synthetic_source_writes_the_tree_into_the_run(tmp_path, capsys):
    out = tmp_path / "runs"
    rc = main(["finetune", "gait", "data.source=synthetic", "data.synthetic.train_ids=2", "data.synthetic.test_ids=2",
               "data.synthetic.types=[nm-01,nm-02,nm-03,nm-04,nm-05,nm-06]", "data.synthetic.views=['000','090']",
               "data.synthetic.frames=[4,4]", "label_rate=1.0", "sampler.p=2", "sampler.m=2", "train.max_steps=1",
               "eval.baselines=false", f"train.output_dir={out}", "train.run_name=syn", *TINY])
    assert rc == 0, capsys.readouterr().err
    tree = out / "syn" / "synthetic_casiab"
    assert sorted(p.name for p in tree.iterdir() if p.is_dir()) == ["001", "002", "075", "076"]
    assert nm_rank1(out / "syn", "fine-tuned") is not None


def test_too_few_labelled_ids_is_a_clear_error(casia, tmp_path, capsys):
    rc = main(["finetune", "gait", "data.source=casiab", f"data.root={casia}", "data.split=casiab",
               "label_rate=0.25", "sampler.p=2", f"train.output_dir={tmp_path}", *TINY])
    assert rc == 2
    err = capsys.readouterr().err
    assert "label_rate=0.25 keeps 1 labelled training subject" in err and "sampler.p=2" in err


def test_init_that_is_not_a_selfgait_run(casia, tmp_path, capsys):
    rc = main(["finetune", "gait", "data.source=casiab", f"data.root={casia}", "data.split=casiab",
               f"model.init={tmp_path / 'nowhere'}", "label_rate=1.0", "sampler.p=2", f"train.output_dir={tmp_path}", *TINY])
    assert rc == 2
    assert "model.init" in capsys.readouterr().err


def test_recipe_config_resolves_to_the_official_numbers(capsys):
    recipe = Path(__file__).resolve().parents[1] / "configs" / "selfgait_casiab.yaml"
    assert main(["pretrain", str(recipe), "--show-config"]) == 0
    shown = capsys.readouterr().out
    for line in ("method: selfgait", "lr: 0.06", "weight_decay: 0.0004", "momentum: 0.996", "p: 8", "m: 16",
                 "batch_size: 128", "max_steps: 80000", "frames: 30"):
        assert line in shown, line


def test_batches_grouped_by_view_hold_one_view_each(casia):
    from types import SimpleNamespace

    from humanssl.data.gait import load_casiab
    from humanssl.gait_config import GaitDataConfig, GaitPretrainSamplerConfig
    from humanssl.pretrain_gait import training_data

    seqs = [s for s in load_casiab(casia) if int(s.subject) < 75]
    one = SimpleNamespace(rank=0, world_size=1)
    by_view = GaitPretrainSamplerConfig(p=2, m=3, group_by="view")
    dataset, sampler = training_data(GaitDataConfig(frames=4), seqs, by_view, 0, one, by_view.group_by)
    batches = [sampler.batch(0, b) for b in range(6)]
    assert all(len(b) == 6 and len({seqs[i].view for i in b}) == 1 for b in batches)
    assert {seqs[b[0]].view for b in batches} == set(VIEWS)
    _, by_id = training_data(GaitDataConfig(frames=4), seqs, GaitPretrainSamplerConfig(p=2, m=3), 0, one)
    assert all(len({seqs[i].subject for i in by_id.batch(0, b)}) == 2 for b in range(6))


def test_pretrain_with_the_unofficial_view_options(casia, tmp_path, capsys):
    rc = main(["pretrain", "method=selfgait", "data.source=casiab", f"data.root={casia}", "data.split=casiab",
               "sampler.p=2", "sampler.m=2", "sampler.group_by=view", "selfgait.stretch=[0.6,1.4]",
               "selfgait.head_norm=per_strip", "train.max_steps=2", f"train.output_dir={tmp_path}",
               "train.run_name=pre", "eval.enabled=false", *TINY])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "batches of 4 (one view each)" in captured.out
    losses = [r["byol"] for r in read_metrics(tmp_path / "pre" / "metrics.jsonl") if "byol" in r]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.parametrize("options", [{}, {"head_norm": "per_strip", "stretch": (0.6, 1.4)}], ids=["official", "unofficial"])
def test_byol_loss_falls_on_a_fixed_batch(casia, options):
    from humanssl.data.gait import FrameSampling, GaitSequences, collate_clips, load_casiab
    from humanssl.methods.selfgait import SelfGait, SelfGaitConfig

    torch.manual_seed(0)
    np.random.seed(0)  # the frame windows come from the global NumPy RNG
    seqs = [s for s in load_casiab(casia) if int(s.subject) < 75 and s.seq_type in NM[:2]]
    ds = GaitSequences(seqs, FrameSampling("window", 4))
    batch = collate_clips([ds[i] for i in range(len(ds))])  # 4 ids x 2 walks x 2 views
    method = SelfGait(SelfGaitConfig(hidden_dim=16, mlp_hidden_size=32, projection_size=16, **options)).train()
    losses = losses_on_a_fixed_batch(method, batch, "byol", 0.05, 10)
    assert losses[0] > 0 and sum(losses[-3:]) / 3 < 0.7 * losses[0], losses
