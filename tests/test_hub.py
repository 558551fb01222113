import argparse
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from humanssl.errors import UserError
from humanssl.hub import (
    convert_solider,
    export_solider,
    extract_backbone,
    load_swin_state,
    load_swin_weights,
    microsoft_to_solider,
    solider_to_microsoft,
    swin_from_checkpoint,
)
from humanssl.hub.swin_keys import merge_permutation, resize_bias_table
from humanssl.models import swin
from humanssl.models.backbones import create_backbone
from humanssl.models.swin_layers import PatchMerging, relative_position_index
from tests.fixtures import conformance, needs_fixture, require_fixture

LISTING = ("solider", "mini_swin_keys.json")


class Smuggled:  # stands for any code-carrying object in an untrusted pickle
    def __init__(self, value):
        self.value = value


def fake_state(entries, seed=0):
    """Random tensors of the listed shapes (integer buffers get the real index)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for e in entries:
        if e["dtype"] == "int64":
            state[e["key"]] = relative_position_index(int((e["shape"][0]) ** 0.5))
        else:
            state[e["key"]] = torch.randn(e["shape"], generator=g)
    return state


def head_state(entries):
    return {e["key"]: torch.zeros(e["shape"]) for e in entries}


def full_checkpoint(teacher, student, head):
    """The layout of SOLIDER's checkpoint.pth (and of the released swin_*.pth)."""
    return {
        "student": {**{f"module.backbone.{k}": v for k, v in student.items()},
                    **{f"module.{k}": v for k, v in head.items()}},
        "teacher": {**{f"backbone.{k}": v for k, v in teacher.items()}, **head},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
        "epoch": 3,
        "args": argparse.Namespace(arch="swin_tiny", lr=5e-4, data_path="/data/lup"),
        "dino_loss": {"center": torch.zeros(1, 8)},
        "fp16_scaler": None,
    }


@pytest.fixture(scope="module")
def mini():
    entries = json.loads(require_fixture(*LISTING).read_text())["state_dict"]
    head = {"head.mlp.0.weight": torch.zeros(4, 128), "head.last_layer.weight_g": torch.ones(16, 1)}
    return fake_state(entries, 0), fake_state(entries, 1), head


def assert_loaded(model, state):
    own = model.state_dict()
    assert set(own) == set(state)
    for k, v in state.items():
        assert torch.equal(own[k], v), k


@pytest.mark.parametrize("layout", ["full", "full-student", "teacher-only", "bare", "bare-ddp", "state_dict",
                                    "safetensors"])
def test_official_layouts_load_with_no_missing_keys(tmp_path, mini, layout):
    teacher, student, head = mini
    ckpt = full_checkpoint(teacher, student, head)
    path, which, expected = tmp_path / "w.pth", "teacher", teacher
    if layout == "full":
        torch.save(ckpt, path)
    elif layout == "full-student":
        torch.save(ckpt, path)
        which, expected = "student", student
    elif layout == "teacher-only":  # convert_model.py's checkpoint_tea.pth
        torch.save(ckpt["teacher"], path)
    elif layout == "bare":
        torch.save(teacher, path)
    elif layout == "bare-ddp":
        torch.save({f"module.{k}": v for k, v in teacher.items()}, path)
    elif layout == "state_dict":
        torch.save({"state_dict": ckpt["teacher"]}, path)
    else:
        path = tmp_path / "w.safetensors"
        save_file(ckpt["teacher"], path)
    model = swin.swin_mini()
    report = load_swin_weights(model, path, which=which)
    assert report.missing == [] and report.unexpected == []
    assert_loaded(model, expected)
    assert report.extracted.part == (which if layout.startswith("full") else None)


@pytest.mark.filterwarnings("ignore:.*meta parameter")  # copying into a meta model is a no-op, as intended
@pytest.mark.parametrize("arch", ["tiny", "small", "base"])
def test_released_architectures_match_their_training_checkpoint_layout(arch):
    name = f"official_swin_{arch}_keys.json"
    ref = json.loads(require_fixture("solider", name).read_text())
    # Stride-0 stand-ins of the listed shapes: the full layout without the memory.
    fake = {e["key"]: torch.zeros(()).expand(e["shape"]) for e in ref["backbone_state_dict"]}
    head = {e["key"]: torch.zeros(()).expand(e["shape"]) for e in ref["dino_head_state_dict_in_checkpoint"]}
    ckpt = full_checkpoint(fake, fake, head)
    assert len(ckpt["teacher"]) == len(ref["backbone_state_dict"]) + 8
    with torch.device("meta"):
        model = getattr(swin, f"swin_{arch}")()
    for which in ("teacher", "student"):
        extracted = extract_backbone(ckpt, f"swin_{arch}.pth", which)
        assert len(extracted.ignored) == 8  # the DINO head
        report = load_swin_state(model, extracted)
        assert report.missing == [] and report.unexpected == [] and report.resized == []


def test_foreign_checkpoints_are_refused_clearly(tmp_path):
    vit = create_backbone("vit_mini", img_size=(32, 16))
    torch.save({"teacher": {f"backbone.{k}": v for k, v in vit.state_dict().items()}}, tmp_path / "dino_vit.pth")
    with pytest.raises(UserError, match=r"dino_vit\.pth: no SOLIDER Swin.*'backbone\.', 'module\.backbone\.'.*"
                                        r"backbone\.blocks\.0"):
        load_swin_weights(swin.swin_mini(), tmp_path / "dino_vit.pth")
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    with pytest.raises(UserError, match=r"list\.pth does not hold a state dict"):
        load_swin_weights(swin.swin_mini(), tmp_path / "list.pth")
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    with pytest.raises(UserError, match=r"cannot read checkpoint .*notes\.pth"):
        load_swin_weights(swin.swin_mini(), tmp_path / "notes.pth")
    with pytest.raises(UserError, match="not found"):
        load_swin_weights(swin.swin_mini(), tmp_path / "absent.pth")
    timm_layout = {"layers.0.blocks.0.attn.qkv.weight": torch.zeros(3, 1),
                   "layers.1.downsample.reduction.weight": torch.zeros(2, 4)}
    torch.save(timm_layout, tmp_path / "timm_swin.pth")
    with pytest.raises(UserError, match="timm's layout"):
        load_swin_weights(swin.swin_mini(), tmp_path / "timm_swin.pth")


def test_other_architecture_and_missing_keys_are_named(tmp_path, mini):
    teacher = mini[0]
    torch.save(teacher, tmp_path / "mini.pth")
    with torch.device("meta"):
        tiny = swin.swin_tiny()
    with pytest.raises(UserError, match=r"mini\.pth does not fit.*embed_dims 16, depths \(2, 2, 2, 2\)"):
        load_swin_weights(tiny, tmp_path / "mini.pth")
    partial = {k: v for k, v in teacher.items() if not k.startswith("norm3.")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(UserError, match=r"missing keys \(2\) \[norm3.bias, norm3.weight\]"):
        load_swin_weights(swin.swin_mini(), tmp_path / "partial.pth")
    report = load_swin_weights(swin.swin_mini(), tmp_path / "partial.pth", strict=False)
    assert report.missing == ["norm3.bias", "norm3.weight"] and "missing keys (2)" in report.summary()


def test_untrusted_pickle_is_refused_unless_trusted(tmp_path, mini):
    state = {f"backbone.{k}": v for k, v in mini[0].items()}
    torch.save({"teacher": state, "extra": Smuggled(1)}, tmp_path / "odd.pth")
    with pytest.raises(UserError, match=r"odd\.pth contains pickled Python objects.*Smuggled.*--trust-checkpoint"):
        load_swin_weights(swin.swin_mini(), tmp_path / "odd.pth")
    model = swin.swin_mini()
    load_swin_weights(model, tmp_path / "odd.pth", trust_checkpoint=True)
    assert_loaded(model, mini[0])


def test_merge_permutation_hand_worked():
    # Microsoft: [x(0,0) | x(1,0) | x(0,1) | x(1,1)], C channels each; unfold: per channel (0,0),(0,1),(1,0),(1,1).
    assert merge_permutation(1).tolist() == [0, 2, 1, 3]
    assert merge_permutation(2).tolist() == [0, 4, 2, 6, 1, 5, 3, 7]


def test_converted_patch_merging_computes_microsofts_merging():
    torch.manual_seed(0)
    c, h, w = 3, 4, 6
    x = torch.randn(2, h, w, c)
    ms_norm, ms_reduction = torch.nn.LayerNorm(4 * c), torch.nn.Linear(4 * c, 2 * c, bias=False)
    with torch.no_grad():
        ms_norm.weight.normal_(), ms_norm.bias.normal_()
    # Microsoft's PatchMerging, written out.
    cat = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    expected = ms_reduction(ms_norm(cat.view(2, -1, 4 * c)))
    ms_state = {"layers.0.downsample.norm.weight": ms_norm.weight, "layers.0.downsample.norm.bias": ms_norm.bias,
                "layers.0.downsample.reduction.weight": ms_reduction.weight}
    converted = microsoft_to_solider(ms_state)
    ours = PatchMerging(c, 2 * c)
    ours.load_state_dict({k.removeprefix("stages.0.downsample."): v for k, v in converted.items()})
    got, hw = ours(x.reshape(2, h * w, c), (h, w))
    assert hw == (h // 2, w // 2)
    torch.testing.assert_close(got, expected)


@needs_fixture("solider", "mini_swin_state_dict.safetensors")
def test_microsoft_round_trip_and_loading(tmp_path):
    from safetensors.torch import load_file

    solider_state = load_file(str(conformance("solider", "mini_swin_state_dict.safetensors")))
    ms = solider_to_microsoft(solider_state)
    assert "layers.1.downsample.reduction.weight" in ms and "norm.weight" in ms and "patch_embed.proj.weight" in ms
    assert not any(k.startswith(("semantic", "norm0", "stages")) or ".w_msa." in k or ".ffn." in k for k in ms)
    # What a Microsoft ImageNet file also holds: a classifier and cached shift masks.
    ms_file = {**ms, "head.weight": torch.zeros(10, 128), "head.bias": torch.zeros(10),
               "layers.0.blocks.1.attn_mask": torch.zeros(4, 49, 49)}
    back = microsoft_to_solider(ms_file)
    assert back.keys() == {k for k in solider_state if not k.startswith(("semantic", "norm0", "norm1", "norm2"))}
    for k, v in back.items():
        assert torch.equal(v, solider_state[k]), k
    assert solider_to_microsoft(back).keys() == ms.keys()

    torch.save({"model": ms_file}, tmp_path / "swin_mini_imagenet.pth")
    plain = swin.swin_mini(semantic_weight=-1)  # an ImageNet Swin has no controller
    report = load_swin_weights(plain, tmp_path / "swin_mini_imagenet.pth")
    assert report.extracted.source == "microsoft" and report.unexpected == []
    reference = swin.swin_mini(semantic_weight=-1)
    reference.load_state_dict({k: v for k, v in solider_state.items() if not k.startswith("semantic")})
    x = torch.randn(1, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(plain.eval()(x)[0], reference.eval()(x)[0])
    # Into a controller Swin: the controller and norm0-2 stay at init, as expected.
    report = load_swin_weights(swin.swin_mini(), tmp_path / "swin_mini_imagenet.pth")
    assert len(report.missing) == 16 + 6 and set(report.missing) == set(report.tolerated)


def test_bias_tables_resized_for_another_window(tmp_path, mini):
    torch.save(mini[0], tmp_path / "w7.pth")
    model = swin.swin_mini(window_size=5)
    report = load_swin_weights(model, tmp_path / "w7.pth")
    assert len(report.resized) == 8
    table = model.state_dict()["stages.0.blocks.0.attn.w_msa.relative_position_bias_table"]
    assert table.shape == (81, 1)
    assert torch.equal(model.stages[0].blocks[0].attn.w_msa.relative_position_index, relative_position_index(5))
    flat = resize_bias_table(torch.full((169, 2), 3.0), 81, "t")
    torch.testing.assert_close(flat, torch.full((81, 2), 3.0))  # a constant table stays constant
    ramp = torch.arange(13.0).repeat_interleave(13).view(169, 1)  # grows with dy
    resized = resize_bias_table(ramp, 81, "t").view(9, 9)
    assert (resized[1:] > resized[:-1]).all()  # still increasing along dy, not transposed


def test_convert_and_export_round_trip(tmp_path, mini):
    teacher, student, head = mini
    torch.save(full_checkpoint(teacher, student, head), tmp_path / "checkpoint.pth")
    out = tmp_path / "swin_mini.safetensors"
    extracted = convert_solider(tmp_path / "checkpoint.pth", out)
    assert extracted.part == "teacher" and len(extracted.ignored) == len(head)
    with safe_open(str(out), "pt") as f:
        assert set(f.keys()) == set(teacher)
        assert f.metadata()["source"] == "solider" and f.metadata()["semantic_controller"] == "true"
    export_solider(out, tmp_path / "checkpoint_tea.pth")
    tea = torch.load(tmp_path / "checkpoint_tea.pth", weights_only=True)
    assert set(tea) == {f"backbone.{k}" for k in teacher}
    model = swin_from_checkpoint(tmp_path / "checkpoint_tea.pth", semantic_weight=0.2)
    assert model.num_features == [16, 32, 64, 128]
    assert_loaded(model, teacher)
    reg = create_backbone("swin_mini", weights=str(out))
    assert_loaded(reg, teacher)
    with pytest.raises(UserError, match="unknown export layout"):
        export_solider(out, tmp_path / "x.pth", layout="onnx")


def test_convert_command_round_trip_and_keeps_existing_output(tmp_path, mini, capsys):
    from humanssl.cli import main

    teacher, student, head = mini
    torch.save(full_checkpoint(teacher, student, head), tmp_path / "checkpoint.pth")
    out = tmp_path / "swin_mini.safetensors"
    assert main(["convert", "solider", str(tmp_path / "checkpoint.pth"), "-o", str(out)]) == 0
    assert "SOLIDER Swin weights from the teacher" in capsys.readouterr().out
    assert_loaded(create_backbone("swin_mini", weights=str(out)), teacher)
    # An existing output is never overwritten without --force.
    before = out.read_bytes()
    assert main(["convert", "solider", str(tmp_path / "checkpoint.pth"), "-o", str(out), "--part", "student"]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["convert", "solider", str(out), "-o", str(tmp_path / "tea.pth"), "--to", "teacher"]) == 0
    assert set(torch.load(tmp_path / "tea.pth", weights_only=True)) == {f"backbone.{k}" for k in teacher}
    assert main(["convert", "solider", str(tmp_path / "nope.pth"), "-o", str(tmp_path / "x.safetensors")]) == 2


def test_solider_reid_fine_tuned_model_loads_its_base(tmp_path, mini):
    # SOLIDER-REID saves model.state_dict(): the Swin under "base.", then its re-id heads.
    teacher, _, _ = mini
    reid = {**{f"base.{k}": v for k, v in teacher.items()},
            "bottleneck.weight": torch.ones(128), "bottleneck.bias": torch.zeros(128),
            "classifier.weight": torch.zeros(751, 128)}
    torch.save(reid, tmp_path / "transformer_120.pth")
    assert_loaded(create_backbone("swin_mini", weights=str(tmp_path / "transformer_120.pth")), teacher)
