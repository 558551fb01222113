import json

import numpy as np
import pytest
import torch

from humanssl.models import swin
from humanssl.models.backbones import create_backbone
from humanssl.models.swin_layers import relative_position_index, shift_window_mask
from tests.fixtures import conformance, needs_fixture, require_fixture

SOLIDER = ("solider",)
CASES = ["sw_1.0", "sw_0.2", "sw_mixed"]
TOL = dict(atol=1e-5, rtol=1e-4)


def _io():
    z = np.load(conformance(*SOLIDER, "mini_swin_io.npz"))
    return {k: torch.from_numpy(z[k]) for k in z.files}


def _fixture_model(**kwargs):
    from safetensors.torch import load_file

    model = swin.swin_mini(semantic_weight=0.2, **kwargs)
    model.load_state_dict(load_file(str(conformance(*SOLIDER, "mini_swin_state_dict.safetensors"))))
    model.eval()
    return model


@pytest.fixture(scope="module")
def official():
    """The fixture model and the three lambda cases run as one batch of six (per-sample lambdas)."""
    model, io = _fixture_model(), _io()
    x = io["input"].repeat(len(CASES), 1, 1, 1)
    lam = torch.cat([io[f"semantic_weight__{case}"] for case in CASES])
    with torch.no_grad():
        pooled, outs = model(x, lam)
    return model, io, pooled.split(2), [o.split(2) for o in outs]


@needs_fixture(*SOLIDER, "mini_swin_io.npz")
@pytest.mark.parametrize("case", CASES)
def test_parity_with_official_outputs(official, case):
    _, io, pooled, outs = official
    c = CASES.index(case)
    torch.testing.assert_close(pooled[c], io[f"pooled__{case}"], **TOL)
    torch.testing.assert_close(outs[0][c], io["stage0"], **TOL)
    for i in (1, 2, 3):
        torch.testing.assert_close(outs[i][c], io[f"stage{i}__{case}"], **TOL)


@needs_fixture(*SOLIDER, "mini_swin_io.npz")
def test_default_lambda_is_the_constructor_value(official):
    model, io = official[:2]
    with torch.no_grad():
        pooled, _ = model(io["input"])
    torch.testing.assert_close(pooled, io["pooled__sw_0.2"], **TOL)


@needs_fixture(*SOLIDER, "mini_swin_io.npz")
@pytest.mark.parametrize("variant,strides", [("s4211", (4, 2, 1, 1)), ("s4221", (4, 2, 2, 1))])
def test_parity_stride_variants(official, variant, strides):
    io = official[1]
    model = _fixture_model(strides=strides)
    with torch.no_grad():
        pooled, outs = model(io["input"], io[f"variant_{variant}__semantic_weight"])
    torch.testing.assert_close(pooled, io[f"variant_{variant}__pooled"], **TOL)
    for i, out in enumerate(outs):
        torch.testing.assert_close(out.mean(1), io[f"variant_{variant}__stage{i}_chanmean"], **TOL)
        torch.testing.assert_close(out.mean((2, 3)), io[f"variant_{variant}__stage{i}_spatialmean"], **TOL)


@needs_fixture(*SOLIDER, "mini_swin_state_dict.safetensors")
def test_relative_position_index_equals_the_official_buffer():
    from safetensors.torch import load_file

    state = load_file(str(conformance(*SOLIDER, "mini_swin_state_dict.safetensors")))
    assert torch.equal(relative_position_index(7), state["stages.3.blocks.1.attn.w_msa.relative_position_index"])


def _listing(model):
    return [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]


@pytest.mark.parametrize("arch", ["tiny", "small", "base"])
def test_state_dict_equals_official_listing(arch):
    name = f"official_swin_{arch}_keys.json"
    ref = json.loads(require_fixture(*SOLIDER, name).read_text())
    with torch.device("meta"):
        model = getattr(swin, f"swin_{arch}")()
    assert _listing(model) == [(e["key"], e["shape"], e["dtype"]) for e in ref["backbone_state_dict"]]
    assert sum(p.numel() for p in model.parameters()) == ref["num_parameters_backbone"]
    assert model.num_features == ref["num_features"] and model.embed_dim == ref["num_features"][-1]


@needs_fixture(*SOLIDER, "mini_swin_keys.json")
def test_mini_listing_and_plain_swin_without_controller():
    ref = json.loads(conformance(*SOLIDER, "mini_swin_keys.json").read_text())
    with torch.device("meta"):
        model, plain = swin.swin_mini(semantic_weight=0.2), swin.swin_mini(semantic_weight=-1)
    assert _listing(model) == [(e["key"], e["shape"], e["dtype"]) for e in ref["state_dict"]]
    assert set(model.state_dict()) - set(plain.state_dict()) == set(ref["keys_absent_when_semantic_weight_negative"])
    assert not plain.has_controller


@pytest.fixture(scope="module")
def random_mini():
    torch.manual_seed(0)
    model = swin.swin_mini()
    with torch.no_grad():  # make the controller and the bias tables matter
        for name, p in model.named_parameters():
            if "semantic" in name or "bias_table" in name:
                p.normal_(0, 0.5)
    return model.eval()


def test_per_sample_lambda_equals_per_batch(random_mini):
    x = torch.randn(3, 3, 32, 16)
    with torch.no_grad():
        ref, ref_outs = random_mini(x, 0.3)
        rows, row_outs = random_mini(x, torch.tensor([[0.3, 0.7]] * 3))
        lams, _ = random_mini(x, torch.full((3,), 0.3))
        other, _ = random_mini(x, 0.9)
    torch.testing.assert_close(rows, ref)
    torch.testing.assert_close(lams, ref)
    for a, b in zip(row_outs, ref_outs):
        torch.testing.assert_close(a, b)
    assert (other - ref).abs().max() > 1e-2  # lambda does reach the pooled feature


def test_mixed_lambdas_act_per_sample(random_mini):
    x = torch.randn(2, 3, 32, 16)
    with torch.no_grad():
        mixed, outs = random_mini(x, torch.tensor([0.0, 1.0]))
        first, first_outs = random_mini(x[:1], 0.0)
        second, _ = random_mini(x[1:], 1.0)
    torch.testing.assert_close(mixed, torch.cat([first, second]), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(outs[0][:1], first_outs[0], atol=1e-5, rtol=1e-4)  # stage 0 ignores lambda


def test_bad_semantic_weight_shape(random_mini):
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        random_mini(torch.randn(2, 3, 32, 16), torch.zeros(3, 2))


def test_shift_mask_separates_wrapped_regions():
    mask = shift_window_mask(14, 14, window=7, shift=3, device="cpu")
    assert mask.shape == (4, 49, 49)
    assert (mask[0] == 0).all()  # the top-left window never straddles the wrap-around
    # Bottom-right window: rows/cols 0-3 of the window are map, 4-6 wrapped round from the start.
    q = mask[3, 0]  # query at window (0, 0)
    assert q[1] == 0 and q[3 * 7 + 3] == 0
    assert q[4] == -100 and q[4 * 7] == -100 and q[6 * 7 + 6] == -100


def test_registry_swin_gives_pooled_features_at_any_size():
    net = create_backbone("swin_mini").eval()
    assert net.embed_dim == 128
    with torch.no_grad():
        for h, w in [(64, 32), (32, 16), (50, 30)]:
            assert net(torch.randn(2, 3, h, w)).shape == (2, 128)
        pooled, outs = net.forward_stages(torch.randn(1, 3, 64, 32), torch.tensor([[1.0, 0.0]]))
    assert pooled.shape == (1, 128) and [o.shape[1:] for o in outs] == [
        (16, 16, 8), (32, 8, 4), (64, 4, 2), (128, 2, 1)]


def test_training_forward_backward_with_drop_path():
    torch.manual_seed(0)
    net = create_backbone("swin_mini", drop_path_rate=0.1).train()
    net(torch.randn(2, 3, 32, 16)).sum().backward()
    idle = {n.split(".")[0] + "." + n.split(".")[1] for n, p in net.named_parameters() if p.grad is None}
    # The pooled feature reads stage 3 through norm3 only, and the last controller pair feeds
    # no stage (official layout); everything else learns.
    assert idle == {"norm0.weight", "norm0.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
                    "semantic_embed_w.3", "semantic_embed_b.3"}
