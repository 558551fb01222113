"""GaitSet (official SetNet) against the conformance fixtures from the official code."""

import json

import numpy as np
import pytest
import torch

from humanssl.errors import UserError
from humanssl.models.gaitset import GaitSet
from tests.fixtures import conformance, needs_fixture

FIX = ("gaitset", "gaitset_io.npz")
WEIGHTS = ("gaitset", "gaitset_state_dict.npz")


def load_official() -> GaitSet:
    weights = np.load(conformance(*WEIGHTS))
    model = GaitSet(hidden_dim=256)
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in weights.items()}, strict=True)
    return model.eval()


@needs_fixture("gaitset", "gaitset_keys.json")
def test_state_dict_keys_shapes_and_order_are_official():
    spec = json.loads(conformance("gaitset", "gaitset_keys.json").read_text())
    mine = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in GaitSet(256).state_dict().items()]
    assert mine == spec["state_dict"]


@needs_fixture(*FIX)
@needs_fixture(*WEIGHTS)
def test_forward_matches_official_equal_length_and_packed():
    io = np.load(conformance(*FIX))
    model = load_official()
    with torch.no_grad():
        a = model(torch.from_numpy(io["silhouettes_A"]).float())
        b = model(torch.from_numpy(io["silhouettes_B_packed"]).float(), torch.from_numpy(io["batch_frame_B"]))
    assert a.shape == (2, 62, 256) and b.shape == (2, 62, 256)
    np.testing.assert_allclose(a.numpy(), io["features_A"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(b.numpy(), io["features_B"], rtol=1e-4, atol=1e-6)


@needs_fixture(*FIX)
@needs_fixture(*WEIGHTS)
def test_set_pooled_stage_matches_official():
    io = np.load(conformance(*FIX))
    model = load_official()
    x = torch.from_numpy(io["silhouettes_A"]).float().unsqueeze(2)
    with torch.no_grad():
        for i in range(1, 7):
            x = getattr(model, f"set_layer{i}")(x)
    np.testing.assert_allclose(x.amax(1).numpy(), io["stage_set_pool_A"], rtol=1e-4, atol=1e-6)


def test_packed_equals_separate_sequences_and_frame_order_does_not_matter():
    torch.manual_seed(0)
    model = GaitSet(hidden_dim=16).eval()
    seq_a = (torch.rand(1, 5, 32, 32) > 0.5).float()
    seq_b = (torch.rand(1, 3, 32, 32) > 0.5).float()
    with torch.no_grad():
        separate = torch.cat([model(seq_a), model(seq_b)])
        # trailing zero counts (the official multi-GPU padding) and extra frames are ignored
        packed = model(torch.cat([seq_a, seq_b, seq_a[:, :2]], 1), torch.tensor([[5, 3, 0]]))
        shuffled = model(seq_a[:, torch.tensor([3, 0, 4, 2, 1])])
    assert packed.shape == (2, 62, 16)
    torch.testing.assert_close(packed, separate, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(shuffled, separate[:1], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape, batch_frame, words", [
    ((2, 4, 32), None, "shaped"),
    ((1, 4, 32, 22), [3, 2], "sum to 5"),
    ((2, 4, 32, 22), [2, 2], "one batch row"),
    ((1, 4, 32, 20), None, "strips"),
])
def test_user_mistakes_raise_one_clear_error(shape, batch_frame, words):
    with pytest.raises(UserError, match=words):
        GaitSet(hidden_dim=8)(torch.zeros(shape), batch_frame)
