"""LARC against updates worked out by hand on two parameter tensors."""

import pytest
import torch

from humanssl.engine.larc import LARC


def make(clip, lr, weight_decay=0.1, momentum=0.0):
    w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))  # |w| = 5
    z = torch.nn.Parameter(torch.zeros(2))  # |z| = 0: keeps its raw gradient, no weight decay
    w.grad = torch.tensor([0.6, 0.8])  # |g| = 1
    z.grad = torch.tensor([1.0, -2.0])
    sgd = torch.optim.SGD([w, z], lr=lr, momentum=momentum, weight_decay=weight_decay)
    return w, z, LARC(sgd, trust_coefficient=0.02, clip=clip)


def test_scaling_mode_by_hand():
    w, z, opt = make(clip=False, lr=0.5)
    opt.step()
    # rate = 0.02 * 5 / (1 + 0.1 * 5 + 1e-8) = 1/15; g' = (g + 0.1 w) * rate = (0.9, 1.2) / 15
    torch.testing.assert_close(w.detach(), torch.tensor([3.0 - 0.5 * 0.06, 4.0 - 0.5 * 0.08]))
    torch.testing.assert_close(z.detach(), torch.tensor([-0.5, 1.0]))
    assert opt.param_groups[0]["weight_decay"] == 0.1  # handed back after the step


@pytest.mark.parametrize("lr, rate", [(0.5, (1 / 15) / 0.5), (0.01, 1.0)])
def test_clipping_mode_by_hand(lr, rate):
    # clip: the factor is min(rate / lr, 1), so lr * factor never exceeds lr
    w, z, opt = make(clip=True, lr=lr)
    opt.step()
    expected = torch.tensor([3.0, 4.0]) - lr * rate * torch.tensor([0.9, 1.2])
    torch.testing.assert_close(w.detach(), expected)
    torch.testing.assert_close(z.detach(), -lr * torch.tensor([1.0, -2.0]))


def test_momentum_accumulates_the_adapted_gradient():
    w, z, opt = make(clip=False, lr=0.5, momentum=0.9)
    opt.step()
    w.grad = torch.tensor([0.6, 0.8])
    z.grad = None  # no gradient: left alone
    opt.step()
    # second rate from the moved weights: |w1| = |(2.97, 3.96)| = 4.95
    w1 = torch.tensor([2.97, 3.96])
    g2 = (torch.tensor([0.6, 0.8]) + 0.1 * w1) * (0.02 * 4.95 / (1 + 0.1 * 4.95 + 1e-8))
    buf = 0.9 * torch.tensor([0.06, 0.08]) + g2
    torch.testing.assert_close(w.detach(), w1 - 0.5 * buf)
    torch.testing.assert_close(z.detach(), torch.tensor([-0.5, 1.0]))


def test_behaves_as_an_optimizer_for_the_engine():
    w, z, opt = make(clip=False, lr=0.5, momentum=0.9)
    opt.step()
    state = opt.state_dict()
    assert state == opt.optim.state_dict() and len(state["state"]) == 2
    other = make(clip=False, lr=0.5, momentum=0.9)[2]
    other.load_state_dict(state)
    torch.testing.assert_close(other.optim.state_dict()["state"][0]["momentum_buffer"],
                               state["state"][0]["momentum_buffer"])
    opt.zero_grad()
    assert w.grad is None
    # GradScaler drives it like any optimizer: a scaled backward gives the unscaled update
    a, _, plain = make(clip=False, lr=0.5)
    b, c, scaled = make(clip=False, lr=0.5)
    b.grad = c.grad = None
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    loss = (b * torch.tensor([0.6, 0.8])).sum() + (c * torch.tensor([1.0, -2.0])).sum()
    scaler.scale(loss).backward()
    scaler.unscale_(scaled)
    scaler.step(scaled)
    scaler.update()
    plain.step()
    torch.testing.assert_close(b.detach(), a.detach())
