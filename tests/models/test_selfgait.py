"""SelfGait's networks (SetNet, micro-motion module, TP, MLP heads) against the official code's outputs."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from humanssl.errors import UserError
from humanssl.methods.selfgait import SelfGait
from humanssl.models.micro_motion import MicroMotionModule
from humanssl.models.selfgait import MLPHead, SelfGaitEncoder
from tests.fixtures import conformance, needs_fixture

KEYS = ("selfgait", "selfgait_keys.json")
INIT = ("selfgait", "selfgait_init_state_dict.npz")
IO = ("selfgait", "selfgait_io.npz")


def load_initial() -> SelfGait:
    init = np.load(conformance(*INIT))
    method = SelfGait()
    state = {k: torch.from_numpy(v.astype(np.float32) if v.dtype == np.float16 else v) for k, v in init.items()}
    result = method.load_state_dict(state, strict=False)
    # the fixture holds the five trained modules; the target ones are copies
    assert not result.unexpected_keys
    assert all(k.split(".")[0] in ("target_network", "TP_2", "projection_2") for k in result.missing_keys)
    method.initialize_target()
    return method


@needs_fixture(*KEYS)
def test_every_module_has_the_official_keys_in_order():
    spec = json.loads(conformance(*KEYS).read_text())["modules"]
    method = SelfGait()
    for name, keys in spec.items():
        mine = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
                for k, v in getattr(method, name).state_dict().items()]
        assert mine == keys, name


@needs_fixture(*INIT)
@needs_fixture(*IO)
def test_online_chain_forward_matches_official():
    io = np.load(conformance(*IO))
    method = load_initial().train()
    view = torch.from_numpy(io["view1"]).float()
    with torch.no_grad():
        frames = method.online_network(view)
        motion = method.conv_trans(frames)
        feature = method.TP_1(motion)
    assert frames.shape == (2, 30, 128, 31) and feature.shape == (2, 31, 128)
    tol = dict(rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(frames[0, :5].numpy(), io["setnet_out_view1_seq0_frames0to4"], **tol)
    np.testing.assert_allclose(frames.amax(1).numpy(), io["setnet_out_view1_framemax"], **tol)
    np.testing.assert_allclose(motion[0, :5].numpy(), io["mcm_out_view1_seq0_frames0to4"], **tol)
    np.testing.assert_allclose(motion.amax(1).numpy(), io["mcm_out_view1_framemax"], **tol)
    np.testing.assert_allclose(feature.numpy(), io["tp_out_view1"], **tol)


def test_grouped_micro_motion_equals_a_per_strip_loop():
    torch.manual_seed(0)
    mcm = MicroMotionModule(16, 16, p=3, div=4)
    x = torch.randn(2, 7, 16, 3)
    expected = []
    for i in range(3):
        part = x[..., i].permute(0, 2, 1)
        a1 = mcm.conv_list_1[i](part).sigmoid()
        a2 = mcm.conv_list_2[i](part).sigmoid()
        t1 = F.max_pool1d(part, 3, 1, 1) + F.avg_pool1d(part, 3, 1, 1)
        t2 = F.max_pool1d(part, 5, 1, 2) + F.avg_pool1d(part, 5, 1, 2)
        expected.append((t1 * a1 + t2 * a2).permute(0, 2, 1))
    torch.testing.assert_close(mcm(x), torch.stack(expected, -1), rtol=1e-5, atol=1e-6)


def test_mlp_head_pools_batchnorm_statistics_over_strips_and_samples():
    torch.manual_seed(0)
    head = MLPHead(8, 16, 4).train()
    x = torch.randn(3, 5, 8)  # (n, strips, channels)
    out = head(x)
    assert out.shape == (3, 5, 4)
    hidden = head.net[0](x.permute(1, 2, 0))  # (strips, 16, n)
    assert torch.allclose(head.net[1].running_mean, 0.1 * hidden.mean((0, 2)), atol=1e-6)


def test_per_strip_head_keeps_statistics_for_every_strip_over_the_samples_only():
    torch.manual_seed(0)
    head = MLPHead(8, 16, 4, norm="per_strip", parts=5).train()
    x = torch.randn(3, 5, 8)  # (n, strips, channels)
    shifted = x.clone()
    shifted[:, 2] += 10.0
    torch.testing.assert_close(head(shifted)[:, [0, 1, 3, 4]], head(x)[:, [0, 1, 3, 4]])  # strips stay apart
    head.net[1].reset_running_stats()
    out = head(x)
    assert out.shape == (3, 5, 4)
    hidden = head.net[0](x.permute(1, 2, 0))  # (strips, 16, n)
    torch.testing.assert_close(head.net[1].running_mean.view(5, 16), 0.1 * hidden.mean(2), rtol=1e-5, atol=1e-6)
    normed = head.net[1](hidden)
    torch.testing.assert_close(normed.mean(2), torch.zeros(5, 16), rtol=0, atol=1e-5)
    with pytest.raises(UserError, match="head_norm"):
        MLPHead(8, 16, 4, norm="layer")


def test_encoder_packed_sequences_equal_separate_runs():
    torch.manual_seed(0)
    encoder = SelfGaitEncoder(hidden_dim=16).eval()
    a = (torch.rand(1, 6, 32, 32) > 0.5).float()
    b = (torch.rand(1, 4, 32, 32) > 0.5).float()
    with torch.no_grad():
        separate = torch.cat([encoder(a), encoder(b)])
        packed = encoder(torch.cat([a, b], 1), [6, 4])
    assert packed.shape == (2, 31, 16)
    torch.testing.assert_close(packed, separate, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError):
        encoder.conv_trans(torch.zeros(1, 3, 128, 30))
