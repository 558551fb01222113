import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from humanssl.errors import UserError
from humanssl.models.backbones import create_backbone
from humanssl.models.saip_vit import saip_vit_mini, saip_vit_tiny
from humanssl.models.saip_vit_layers import interpolate_pos_encoding
from tests.fixtures import conformance, needs_fixture

IO = ("saip", "mini_saipvit_io.npz")
WEIGHTS = ("saip", "mini_saipvit_state_dict.safetensors")
ATOL, RTOL = 1e-5, 1e-4


@pytest.fixture(scope="module")
def io():
    with np.load(conformance(*IO)) as z:
        return {k: torch.from_numpy(z[k]) for k in z.files}


@pytest.fixture(scope="module")
def mini():
    model = saip_vit_mini().eval()
    model.load_state_dict(load_file(str(conformance(*WEIGHTS))))
    return model


def _keys(path, prefix=""):
    entries = json.loads(conformance("saip", path).read_text())["state_dict"]
    return [(e["key"][len(prefix):], e["shape"]) for e in entries if e["key"].startswith(prefix)]


@needs_fixture("saip", "official_csl_vit_tiny_patch16_keys.json")
def test_tiny_keys_and_shapes_equal_the_official_backbone():
    with torch.device("meta"):
        model = saip_vit_tiny()
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == _keys("official_csl_vit_tiny_patch16_keys.json", prefix="backbone.")
    assert sum(p.numel() for p in model.parameters()) == 5_511_744


@needs_fixture("saip", "mini_saipvit_keys.json")
def test_mini_keys_and_shapes_equal_the_fixture():
    ours = [(k, list(v.shape)) for k, v in saip_vit_mini().state_dict().items()]
    assert ours == _keys("mini_saipvit_keys.json")


@needs_fixture(*IO)
@pytest.mark.parametrize("size", ["256x128", "128x64", "160x80", "112x56"])
def test_parity_with_official(size, io, mini):
    x = io[f"input_{size}"]
    with torch.no_grad():
        out = mini(x)
        pos = mini.pos_embed_for((x.shape[2] // 16, x.shape[3] // 16))
    inter, final = out.outs
    torch.testing.assert_close(inter, io[f"inter__{size}"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(final, io[f"final__{size}"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(pos, io[f"pos_embed_used__{size}"], atol=1e-6, rtol=0)
    assert out.mask is None and out.ids_restore is None
    if size == "256x128":
        torch.testing.assert_close(out.attn[0], io["last_attn_qk__256x128"], atol=ATOL, rtol=RTOL)
        torch.testing.assert_close(out.attn[1], io["last_attn_vv__256x128"], atol=ATOL, rtol=RTOL)


@needs_fixture(*IO)
def test_anchor_masked_forward_parity(io, mini):
    x, noise, recorded = io["input_320x160"], io["masked__anchor_noise"], io["masked__ids_shuffle"]
    with torch.no_grad():
        drawn = mini(x, 0.75, with_anchor_mask=True, noise=noise)
        replay = mini(x, 0.75, with_anchor_mask=True, noise=noise, ids_shuffle=recorded)
        inter_only = mini(x, 0.75, True, True, noise=noise, ids_shuffle=recorded)
    base_keep, removed = drawn.mask
    torch.testing.assert_close(base_keep, io["masked__base_mask_keep"], atol=0, rtol=0)
    torch.testing.assert_close(removed, io["masked__removed_mask"], atol=0, rtol=0)
    assert int(base_keep.sum()) == 32 and int((1 - removed).sum()) == 54
    # Our own draw keeps 50 of the 54 up-sampled "keep" tokens; which 4 are left out depends
    # on the sort's handling of ties, so parity is checked on the recorded order.
    kept = torch.argsort(drawn.ids_restore, dim=1)[0, :50]
    assert removed[0, kept].sum() == 0 and drawn.outs[1].shape == (1, 51, 32)
    torch.testing.assert_close(replay.ids_restore, io["masked__ids_restore"], atol=0, rtol=0)
    torch.testing.assert_close(replay.outs[0], io["masked__inter"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(replay.outs[1], io["masked__final"], atol=ATOL, rtol=RTOL)
    assert len(inter_only.outs) == 1
    torch.testing.assert_close(inter_only.outs[0], io["masked__inter"], atol=ATOL, rtol=RTOL)


def test_intermediate_only_stops_at_block_6_and_returns_its_attention():
    torch.manual_seed(0)
    model = saip_vit_mini().eval()
    x = torch.randn(1, 3, 64, 32)
    with torch.no_grad():
        full = model(x)
        part = model(x, get_intermediate_only=True)
        model.blocks[7].attn.qkv.weight.mul_(2)  # after block 6: changes final only
        changed = model(x)
    assert len(part.outs) == 1 and part.attn[0].shape == (1, 2, 9, 9)
    torch.testing.assert_close(part.outs[0], full.outs[0])
    torch.testing.assert_close(changed.outs[0], full.outs[0])
    assert not torch.allclose(changed.outs[1], full.outs[1])
    assert not torch.allclose(part.attn[1], full.attn[1])  # block 6's pair, not block 7's
    torch.testing.assert_close(part.attn[0].sum(-1), torch.ones(1, 2, 9))


def test_random_masking_keeps_the_smallest_noise():
    torch.manual_seed(0)
    model = saip_vit_mini().eval()
    x, noise = torch.randn(2, 3, 128, 64), torch.rand(2, 32)
    with torch.no_grad():
        out = model(x, 0.75, noise=noise)
        again = model(x, 0.75, noise=noise)
    assert out.outs[1].shape == (2, 1 + 8, 32)
    keep = torch.zeros(2, 32).scatter_(1, torch.argsort(noise, dim=1)[:, :8], 1.0)
    torch.testing.assert_close(out.mask, 1 - keep)
    assert torch.equal(torch.argsort(torch.argsort(noise, dim=1), dim=1), out.ids_restore)
    torch.testing.assert_close(again.outs[1], out.outs[1], atol=0, rtol=0)


def test_position_resampling_sequence_and_grid():
    model = saip_vit_mini()
    rows = torch.arange(16.0).repeat_interleave(8)  # each patch row of the 16x8 table holds its row index
    with torch.no_grad():
        model.pos_embed[0, 1:] = rows[:, None]
    grid = saip_vit_mini(pos_resample="grid")
    grid.load_state_dict(model.state_dict())
    seq_table, grid_table = model.pos_embed_for((8, 4)), grid.pos_embed_for((8, 4))
    assert seq_table.shape == grid_table.shape == (1, 33, 32)
    assert torch.equal(model.pos_embed_for((16, 8)), model.pos_embed)
    torch.testing.assert_close(seq_table[:, 0], model.pos_embed[:, 0])
    # 2-D: the rows of the 8x4 table stay constant; 1-D mixes neighbouring rows within a row.
    g = grid_table[0, 1:, 0].reshape(8, 4)
    s = seq_table[0, 1:, 0].reshape(8, 4)
    assert torch.allclose(g, g[:, :1].expand(8, 4), atol=1e-5)
    assert (s.max(1).values - s.min(1).values).max() > 0.1
    # The CSR decoder's use: a table without CLS row, 128 rows to 201.
    assert interpolate_pos_encoding(torch.randn(1, 128, 4), 201, with_cls_token=False).shape == (1, 201, 4)


@needs_fixture(*WEIGHTS)
def test_registry_model_loads_official_checkpoints(tmp_path, io):
    state = load_file(str(conformance(*WEIGHTS)))
    ckpt = {
        "teacher": {**{f"backbone.{k}": v for k, v in state.items()}, "csm_decoder.mlp.0.weight": torch.ones(2, 2)},
        "student": {f"module.backbone.{k}": v * 0 for k, v in state.items()},
        "epoch": 3,
    }
    torch.save(ckpt, tmp_path / "checkpoint.pth")
    net = create_backbone("saip_vit_mini", weights=str(tmp_path / "checkpoint.pth")).eval()
    x = io["input_128x64"]
    with torch.no_grad():
        pooled = net(x)
    assert pooled.shape == (2, net.embed_dim) == (2, 32)
    torch.testing.assert_close(pooled, io["final__128x64"][:, 0], atol=ATOL, rtol=RTOL)
    with pytest.raises(UserError, match="no SAIP backbone"):
        torch.save({"teacher": {"head.weight": torch.ones(1)}}, tmp_path / "other.pth")
        create_backbone("saip_vit_mini", weights=str(tmp_path / "other.pth"))
    with pytest.raises(UserError, match="do not (fit|match)"):
        create_backbone("saip_vit_mini", img_size=(128, 64), weights=str(tmp_path / "checkpoint.pth"))


def test_registry_model_trains_everything_but_inter_norm():
    net = create_backbone("saip_vit_mini", drop_path_rate=0.1)
    net(torch.randn(2, 3, 64, 32)).sum().backward()
    no_grad = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    frozen = [n for n, p in net.named_parameters() if not p.requires_grad]
    assert no_grad == [] and frozen == ["inter_norm.weight", "inter_norm.bias"]


def test_attention_pair_carries_gradients():
    model = saip_vit_mini()
    out = model(torch.randn(1, 3, 64, 32))
    out.attn[1].log().mean().backward()  # the vv map alone, as in the CSM attention term
    assert model.blocks[7].attn.qkv.weight.grad.abs().sum() > 0
    assert model.blocks[7].mlp.fc1.weight.grad is None


def test_user_mistakes_raise_user_error():
    model = saip_vit_mini()
    x = torch.randn(1, 3, 64, 32)
    cases = [
        (lambda: model(torch.randn(1, 1, 64, 32)), "shape"),
        (lambda: model(torch.randn(1, 3, 8, 32)), "smaller than one"),
        (lambda: model(x, 1.0), "mask_ratio"),
        (lambda: model(x, 0.5, with_anchor_mask=True, noise=torch.rand(1, 8)), "anchor cell"),
        (lambda: model(x, 0.5, noise=torch.rand(1, 128)), "per patch"),
        (lambda: saip_vit_mini(pos_resample="2d"), "pos_resample"),
    ]
    for call, words in cases:
        with pytest.raises(UserError, match=words):
            call()


def test_the_dino_init_replaces_the_official_position_table_and_xavier_weights():
    torch.manual_seed(0)
    official = saip_vit_mini()
    dino = saip_vit_mini(init="dino")
    pos, fc1 = official.pos_embed.detach(), official.blocks[0].mlp.fc1.weight.detach()
    assert pos.min() >= 0 and pos.mean() == pytest.approx(0.5, abs=0.05)  # the U[0, 1) draw, kept
    assert fc1.std() == pytest.approx((2 / (32 + 128)) ** 0.5, rel=0.1)  # Xavier for 32 -> 128
    pos, fc1 = dino.pos_embed.detach(), dino.blocks[0].mlp.fc1.weight.detach()
    assert pos.std() == pytest.approx(0.02, rel=0.15) and abs(pos.mean()) < 0.005
    assert fc1.std() == pytest.approx(0.02, rel=0.1)
    with pytest.raises(UserError, match="init must be one of official, dino"):
        saip_vit_mini(init="xavier")
