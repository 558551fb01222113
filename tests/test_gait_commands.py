"""`humanssl evaluate gait` and `humanssl gait-pretreat` end to end on tiny synthetic CASIA-B trees."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from humanssl.cli import main
from humanssl.data.gait import GaitDataWarning
from humanssl.data.synthetic_gait import write_casiab
from humanssl.engine.checkpoint import save_checkpoint
from humanssl.methods.selfgait import SelfGait, SelfGaitConfig
from humanssl.models.gaitset import GaitSet

pytestmark = pytest.mark.filterwarnings("ignore::humanssl.data.gait.GaitDataWarning")

TYPES = ("nm-01", "nm-05", "bg-01", "cl-01")
VIEWS = ("000", "090", "180")
SELFGAIT_NETS = ("online_network", "target_network", "conv_trans", "TP_1", "TP_2", "projection_1", "projection_2",
                 "predictor")


@pytest.fixture(scope="module")
def casia(tmp_path_factory):
    # Two test subjects (075, 076: the standard test split starts at 075), few walks, views, frames.
    return write_casiab(tmp_path_factory.mktemp("casia"), 2, seed=0, types=TYPES, views=VIEWS, frames=(3, 4),
                        first_id=75)


@pytest.fixture(scope="module")
def gaitset_state():
    torch.manual_seed(0)
    return GaitSet(hidden_dim=16).state_dict()


def evaluate(capsys, ckpt, data, *extra):
    rc = main(["evaluate", "gait", "--checkpoint", str(ckpt), "--data", str(data), "--num-workers", "0",
               "--no-progress", *extra])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_gaitset_safetensors_end_to_end(casia, gaitset_state, tmp_path, capsys):
    ckpt = tmp_path / "gaitset.safetensors"
    save_file(gaitset_state, str(ckpt))
    rc, out, err = evaluate(capsys, ckpt, casia, "-o", str(tmp_path / "res.json"), "--heatmaps", str(tmp_path / "hm"))
    assert rc == 0, err
    for cond in ("NM", "BG", "CL"):
        assert any(line.startswith(cond) for line in out.splitlines())
    text = (tmp_path / "res.json").read_text()
    assert "NaN" not in text  # strict JSON: missing cells are null
    res = json.loads(text)
    assert res["model"] == "gaitset" and res["distance"] == "euclidean" and res["dataset"] == "CASIA-B"
    assert res["conditions"] == ["NM", "BG", "CL"] and res["views"] == list(VIEWS)
    assert res["num_sequences"] == 2 * len(TYPES) * len(VIEWS) and res["num_subjects"] == 2
    for cond in res["conditions"]:
        for key in (f"{cond}_rank1", f"{cond}_rank1_incl", f"{cond}_mAP"):
            assert 0.0 <= res[key] <= 100.0
        assert res["rank1"][cond] == res[f"{cond}_rank1"]
        per_view = list(res["rank1_per_view"][cond].values())
        assert res["rank1"][cond] == pytest.approx(np.mean(per_view), abs=1e-3)
        matrix = np.array(res["rank1_matrix"][cond], dtype=float)
        assert matrix.shape == (len(VIEWS), len(VIEWS)) and ((matrix >= 0) & (matrix <= 100)).all()
        # Two subjects: a random guess is right half the time; with one probe per (subject, view)
        # and 2 subjects each cell is 0, 50 or 100.
        assert set(np.unique(matrix)) <= {0.0, 50.0, 100.0}
    pngs = sorted(p.name for p in (tmp_path / "hm").iterdir())
    assert pngs == ["rank1_BG.png", "rank1_CL.png", "rank1_NM.png"] and res["heatmaps"]
    assert Image.open(tmp_path / "hm" / "rank1_NM.png").size[0] > 100


def test_official_gaitset_encoder_file_gives_the_same_numbers(casia, gaitset_state, tmp_path, capsys):
    save_file(gaitset_state, str(tmp_path / "bare.safetensors"))
    torch.save({f"module.{k}": v for k, v in gaitset_state.items()}, tmp_path / "GaitSet_CASIA-B-80000-encoder.ptm")
    rc, _, err = evaluate(capsys, tmp_path / "bare.safetensors", casia, "-o", str(tmp_path / "a.json"))
    assert rc == 0, err
    rc, _, err = evaluate(capsys, tmp_path / "GaitSet_CASIA-B-80000-encoder.ptm", casia, "-o", str(tmp_path / "b.json"))
    assert rc == 0, err
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert a["rank1_matrix"] == b["rank1_matrix"] and a["mAP"] == b["mAP"]
    assert (tmp_path / "b_heatmaps" / "rank1_CL.png").is_file()  # default: beside -o


def test_selfgait_run_folder_and_official_file_agree(casia, tmp_path, capsys):
    torch.manual_seed(1)
    method = SelfGait(SelfGaitConfig(hidden_dim=16))
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints", 10, method.state_dict(), {"step": 10}, "method: selfgait\n")
    official = {f"{n}_state_dict": {f"module.{k}": v for k, v in getattr(method, n).state_dict().items()}
                for n in SELFGAIT_NETS}
    official["optimizer_state_dict"] = {"state": {}, "param_groups": []}
    torch.save(official, tmp_path / "model_10.pth")
    rc, out, err = evaluate(capsys, run, casia, "-o", str(tmp_path / "run.json"))
    assert rc == 0, err
    assert "selfgait" in out
    rc, _, err = evaluate(capsys, tmp_path / "model_10.pth", casia, "-o", str(tmp_path / "off.json"))
    assert rc == 0, err
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("run", "off"))
    assert a["model"] == b["model"] == "selfgait" and a["distance"] == "part_mean"
    assert a["rank1_matrix"] == b["rank1_matrix"] and a["mAP"] == b["mAP"]
    assert all(0.0 <= v <= 100.0 for v in a["rank1"].values())
    # The official divisor (/10) on 3 views gives 2/10 of the two-view mean.
    rc, _, err = evaluate(capsys, run, casia, "--official-divisor", "-o", str(tmp_path / "div.json"))
    assert rc == 0, err
    c = json.loads((tmp_path / "div.json").read_text())
    for cond in a["conditions"]:
        assert c["rank1"][cond] == pytest.approx(a["rank1"][cond] * 2 / 10, abs=1e-3)


def test_wrong_root(gaitset_state, tmp_path, capsys):
    save_file(gaitset_state, str(tmp_path / "g.safetensors"))
    rc, _, err = evaluate(capsys, tmp_path / "g.safetensors", tmp_path / "missing")
    assert rc == 2 and "missing" in err and "expected layout" in err


def test_data_without_test_subjects(gaitset_state, tmp_path, capsys):
    root = write_casiab(tmp_path / "train_only", 1, types=("nm-01",), views=("000",), frames=(5, 5))
    save_file(gaitset_state, str(tmp_path / "g.safetensors"))
    rc, _, err = evaluate(capsys, tmp_path / "g.safetensors", root)
    assert rc == 2 and "075-124" in err and "001" in err


@pytest.mark.parametrize("kind", ["missing", "not_gait", "text", "refused_pickle", "wrong_model"])
def test_wrong_checkpoint(kind, casia, tmp_path, capsys):
    ckpt = tmp_path / "ckpt.pth"
    extra = []
    expect = {"missing": "checkpoint not found", "not_gait": "neither a GaitSet encoder",
              "text": "not a torch or safetensors file", "refused_pickle": "safe loading refuses",
              "wrong_model": "has no TP_1.fc_bin"}[kind]
    if kind == "not_gait":
        torch.save({"module.conv1.weight": torch.zeros(3, 3)}, ckpt)
    elif kind == "text":
        ckpt.write_text("this is not a checkpoint\n")
    elif kind == "refused_pickle":
        torch.save({"fc_bin.0": torch.zeros(62, 128, 4), "note": Fraction(1, 2)}, ckpt)
    elif kind == "wrong_model":
        torch.save({f"module.{k}": v for k, v in GaitSet(hidden_dim=4).state_dict().items()}, ckpt)
        extra = ["--model", "selfgait"]
    rc, _, err = evaluate(capsys, ckpt, casia, *extra)
    assert rc == 2 and expect in err and "Traceback" not in err
    assert str(ckpt) in err


def test_gaitset_weights_of_the_wrong_shape(casia, gaitset_state, tmp_path, capsys):
    state = dict(gaitset_state)
    state["gl_layer1.conv.weight"] = torch.zeros(8, 32, 3, 3)
    save_file(state, str(tmp_path / "bad.safetensors"))
    rc, _, err = evaluate(capsys, tmp_path / "bad.safetensors", casia)
    assert rc == 2 and "bad.safetensors" in err and "gl_layer1" in err


def test_gait_pretreat_command(tmp_path, capsys):
    src = write_casiab(tmp_path / "raw", 1, types=("nm-01",), views=("000", "090"), frames=(5, 5), raw=True)
    rc = main(["gait-pretreat", str(src), str(tmp_path / "out"), "--workers", "0", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "2 of 2 sequences written" in out and "10 frames kept" in out
    frames = sorted((tmp_path / "out" / "001" / "nm-01" / "090").glob("*.png"))
    assert len(frames) == 5 and Image.open(frames[0]).size == (44, 64)

    rc = main(["gait-pretreat", str(src), str(tmp_path / "pkl"), "--workers", "0", "--no-progress",
               "--output", "pickle", "--width", "64"])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "pkl" / "001" / "nm-01").rglob("*.pkl")) == ["000.pkl", "090.pkl"]


def test_gait_pretreat_wrong_source(tmp_path, capsys):
    rc = main(["gait-pretreat", str(tmp_path / "nothing"), str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "nothing" in err and "expected" in err



def test_unreadable_sequence_is_left_out_not_duplicated(casia, gaitset_state, tmp_path, capsys):
    import shutil

    root = shutil.copytree(casia, tmp_path / "casia")
    for frame in (root / "076" / "cl-01" / "180").glob("*.png"):
        frame.write_bytes(b"not a png")
    save_file(gaitset_state, str(tmp_path / "g.safetensors"))
    with pytest.warns(GaitDataWarning, match="skipping"):
        rc, out, err = evaluate(capsys, tmp_path / "g.safetensors", root, "-o", str(tmp_path / "r.json"))
    assert rc == 0, err
    assert "1 of 24 test sequences could not be read" in out
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["num_sequences"] == 23
    # CL probes from view 180: only subject 075's walk is left, so each cell is 0 or 100.
    assert set(np.array(res["rank1_matrix"]["CL"], dtype=float)[2]) <= {0.0, 100.0}
