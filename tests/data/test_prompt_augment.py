import numpy as np
import pytest
import torch

from humanssl.data.prompt_augment import augment_prompts
from humanssl.errors import UserError
from tests.fixtures import conformance, needs_fixture

FIXTURE = ("svll_reid", "prompt_augmentations.npz")


def seeded():
    return torch.Generator().manual_seed(123)  # the fixture's torch.manual_seed(123) stream


@pytest.fixture(scope="module")
def fx():
    return np.load(conformance(*FIXTURE))


@needs_fixture(*FIXTURE)
def test_mask_parity(fx):
    prompts = torch.from_numpy(fx["prompts"])
    views = augment_prompts(prompts, "mask", 0.5, seeded())
    for view, key in zip(views, ("mask_scale05_zeroed_aug1", "mask_scale05_zeroed_aug2")):
        zeroed = np.unpackbits(fx[key])[:prompts.numel()].reshape(prompts.shape).astype(bool)
        assert np.array_equal(((view == 0) & (prompts != 0)).numpy(), zeroed)
        kept = view != 0
        assert torch.equal(view[kept], prompts[kept])  # no rescaling


@needs_fixture(*FIXTURE)
@pytest.mark.parametrize("method", ["swap", "mix"])
def test_swap_and_mix_parity(fx, method):
    prompts = torch.from_numpy(fx["prompts"])
    aug1, aug2 = augment_prompts(prompts, method, 0.5, seeded())
    assert torch.equal(aug1, torch.from_numpy(fx[f"{method}_scale05_aug1"]))
    assert torch.equal(aug2, torch.from_numpy(fx[f"{method}_scale05_aug2"]))


def test_swap_permutes_int_scale_l_token_positions():
    prompts = torch.randn(2, 20, 3)
    aug1, aug2 = augment_prompts(prompts, "swap", 0.5, seeded())
    for view in (aug1, aug2):
        for i in range(2):
            moved = (view[i] != prompts[i]).any(1)
            assert moved.sum() <= 10
            rows = sorted(map(tuple, view[i].tolist()))
            assert rows == sorted(map(tuple, prompts[i].tolist()))  # same token vectors, reordered
    assert not torch.equal(aug1, aug2)


def test_mask_rate_and_gradient_to_the_prompts():
    prompts = (torch.rand(2, 30, 40) + 0.5).requires_grad_()
    aug1, aug2 = augment_prompts(prompts, "mask", 0.3, seeded())
    assert abs((aug1 == 0).float().mean().item() - 0.3) < 0.05
    (aug1.sum() + aug2.sum()).backward()
    assert set(prompts.grad.unique().tolist()) <= {0.0, 1.0, 2.0} and prompts.grad.sum() > 0


def test_mix_is_convex_and_single_prompt_is_left_alone():
    prompts = torch.randn(4, 6, 5)
    aug1, _ = augment_prompts(prompts, "mix", 0.5, seeded())
    assert not torch.equal(aug1, prompts)
    # the first prompt mixes with an unmixed prompt among 0..n-2 (never the last one)
    assert any(torch.allclose(aug1[0], 0.5 * prompts[0] + 0.5 * prompts[r]) for r in range(3))
    assert not torch.allclose(aug1[0], 0.5 * prompts[0] + 0.5 * prompts[3])
    one = torch.randn(1, 6, 5)
    assert all(torch.equal(v, one) for v in augment_prompts(one, "mix", 0.5, seeded()))


def test_user_errors():
    with pytest.raises(UserError, match="unknown"):
        augment_prompts(torch.randn(2, 4, 3), "shuffle")
    with pytest.raises(UserError, match="scale"):
        augment_prompts(torch.randn(2, 4, 3), "mask", 1.5)
    with pytest.raises(UserError, match="prompts"):
        augment_prompts(torch.randn(4, 3), "mask")
