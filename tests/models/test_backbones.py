import inspect

import pytest
import torch
from safetensors.torch import save_file

from humanssl.errors import UserError
from humanssl.models import backbones
from humanssl.models.backbones import create_backbone, list_backbones
from humanssl.models.dino_head import DINOHead
from humanssl.models.multicrop import MultiCropWrapper

SMALL = ["vit_mini", "resnet_mini", "resnet18", "swin_mini", "saip_vit_mini"]
LARGE = ["vit_tiny", "vit_small", "resnet50", "swin_tiny", "swin_small", "swin_base", "saip_vit_tiny"]


def test_registry_lists_every_backbone():
    assert set(list_backbones()) == set(SMALL + LARGE)


@pytest.mark.parametrize("name", SMALL)
def test_small_backbones_two_sizes(name):
    net = create_backbone(name).eval()
    with torch.no_grad():
        for h, w in [(64, 32), (32, 16)]:
            assert net(torch.randn(2, 3, h, w)).shape == (2, net.embed_dim)


@pytest.mark.parametrize("name,dim", [("vit_tiny", 192), ("vit_small", 384), ("resnet50", 2048)])
def test_large_backbones(name, dim):
    net = create_backbone(name).eval()
    assert net.embed_dim == dim
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 32)).shape == (1, dim)


def test_vit_mini_token_grid():
    net = create_backbone("vit_mini")
    assert net.dynamic_img_size
    tokens = net.forward_features(torch.randn(1, 3, 64, 32))
    assert tokens.shape == (1, 1 + 8 * 4, net.embed_dim)


def test_unknown_name_and_option():
    with pytest.raises(UserError, match="vit_huge.*resnet50.*vit_mini"):
        create_backbone("vit_huge")
    with pytest.raises(UserError, match="drop_path.*accepts"):
        create_backbone("resnet18", drop_path=0.1)


@pytest.mark.parametrize("name", SMALL + LARGE)
def test_common_options_accepted_by_every_backbone(name):
    # The pretrain entry point passes these two to whichever backbone the config names.
    params = inspect.signature(getattr(backbones, name)).parameters
    assert {"drop_path_rate", "weights"} <= set(params)


def test_local_weights_round_trip(tmp_path):
    src = create_backbone("vit_mini", img_size=(32, 16))
    # Saved as a wrapper checkpoint would be: "backbone." prefix, plus a stray classifier.
    state = {f"backbone.{k}": v for k, v in src.state_dict().items()}
    state["backbone.head.weight"] = torch.zeros(3, 96)
    save_file(state, tmp_path / "w.safetensors")
    torch.save(src.state_dict(), tmp_path / "w.pth")
    x = torch.randn(1, 3, 32, 16)
    for f in ["w.safetensors", "w.pth"]:
        dst = create_backbone("vit_mini", img_size=(32, 16), weights=str(tmp_path / f)).eval()
        torch.testing.assert_close(dst(x), src.eval()(x))
    # Another grid: the position table is resampled instead of failing.
    bigger = create_backbone("vit_mini", img_size=(64, 32), weights=str(tmp_path / "w.pth"))
    assert bigger.pos_embed.shape == (1, 1 + 32, 96)
    # A 2:1 grid resampled to another 2:1 grid keeps its layout: corners stay corners.
    old = src.pos_embed[0, 1:].reshape(4, 2, 96)
    new = bigger.pos_embed[0, 1:].reshape(8, 4, 96)
    assert (new[0, 0] - old[0, 0]).abs().max() < (new[0, 0] - old[3, 1]).abs().max()
    with pytest.raises(UserError, match="not found"):
        create_backbone("vit_mini", weights=str(tmp_path / "missing.pth"))
    with pytest.raises(UserError, match="do not (match|fit)"):
        create_backbone("resnet_mini", weights=str(tmp_path / "w.pth"))


@pytest.mark.parametrize("name", ["vit_mini", "resnet_mini"])
def test_multicrop_grouping_equals_one_by_one(name):
    torch.manual_seed(0)
    backbone = create_backbone(name)
    model = MultiCropWrapper(backbone, DINOHead(backbone.embed_dim, 10, 32, 8)).eval()
    crops = [torch.randn(2, 3, 64, 32) for _ in range(2)] + [torch.randn(2, 3, 32, 16) for _ in range(3)]
    with torch.no_grad():
        out, feats = model(crops, return_backbone_feats=True)
        singles = torch.cat([model(c) for c in crops])
    assert out.shape == (5 * 2, 10) and feats.shape == (5 * 2, backbone.embed_dim)
    torch.testing.assert_close(out, singles, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(feats[4:6], backbone(crops[2]), atol=1e-5, rtol=1e-4)


def test_multicrop_groups_consecutive_sizes_only():
    calls = []

    class Spy(torch.nn.Module):
        def forward(self, x):
            calls.append(tuple(x.shape))
            return x.mean(dim=(2, 3))

    model = MultiCropWrapper(Spy(), torch.nn.Identity())
    a, b = torch.randn(2, 3, 8, 4), torch.randn(2, 3, 4, 2)
    out = model([a, a, b, b, b, a])
    assert calls == [(4, 3, 8, 4), (6, 3, 4, 2), (2, 3, 8, 4)]
    torch.testing.assert_close(out[10:], a.mean(dim=(2, 3)))


def test_registry_swin_trains_only_what_its_pooled_feature_reaches():
    # DDP waits for a gradient of every trainable parameter; unreached ones must be frozen.
    net = create_backbone("swin_mini")
    net(torch.randn(2, 3, 64, 32)).sum().backward()
    no_grad = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    frozen = [n for n, p in net.named_parameters() if not p.requires_grad]
    assert no_grad == [] and frozen, (no_grad, frozen)


def test_registry_swin_starts_from_its_own_init_unless_told_to_keep_torch_defaults():
    # the Swin's init: truncated normal (std 0.02) Linear weights; PyTorch's default for a
    # 128-input Linear is uniform(+-1/sqrt(128)), std about 0.051 (what SOLIDER's pre-training starts from)
    torch.manual_seed(0)
    own = create_backbone("swin_mini").stages[1].blocks[0].ffn.layers[1].weight.detach()
    torch.manual_seed(0)
    default = create_backbone("swin_mini", torch_default_init=True).stages[1].blocks[0].ffn.layers[1].weight.detach()
    assert own.std() == pytest.approx(0.02, abs=0.003)
    assert default.std() == pytest.approx(0.051, abs=0.004)
