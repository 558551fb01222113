"""LARC: layer-wise adaptive rate control around any optimizer (You et al., arXiv 1708.03888).

The wrapper follows the behaviour of NVIDIA apex's `LARC`, which SwAV and SS-PRL train with
(written here without apex). Before the wrapped optimizer steps, every parameter tensor p with
gradient g gets a local rate

    rate = trust_coefficient * |p| / (|g| + weight_decay * |p| + eps)

and its gradient becomes rate * (g + weight_decay * p); with `clip=True` the rate is first
turned into min(rate / lr, 1), so that lr * rate never exceeds lr. The group's weight decay is
consumed here (the inner optimizer steps with weight decay 0, then gets it back), and a tensor
whose weight or gradient norm is zero keeps its raw gradient and gets no weight decay, as in
apex. SwAV's settings: trust_coefficient 0.001, clip False.

The engine sets `lr` and `weight_decay` on `param_groups` before every step; those are the
inner optimizer's groups, and `state_dict()` is the inner optimizer's too.
"""

from __future__ import annotations

import torch


class LARC:
    def __init__(self, optimizer: torch.optim.Optimizer, trust_coefficient: float = 0.02,
                 clip: bool = True, eps: float = 1e-8) -> None:
        self.optim = optimizer
        self.trust_coefficient = trust_coefficient
        self.clip = clip
        self.eps = eps

    # the wrapped optimizer's face, so that the engine and GradScaler see an optimizer
    @property
    def param_groups(self) -> list[dict]:
        return self.optim.param_groups

    @property
    def state(self):
        return self.optim.state

    @property
    def defaults(self) -> dict:
        return self.optim.defaults

    def state_dict(self) -> dict:
        return self.optim.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.optim.load_state_dict(state_dict)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optim.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, group: dict) -> None:
        self.optim.add_param_group(group)

    def __repr__(self) -> str:
        return (f"LARC(trust_coefficient={self.trust_coefficient}, clip={self.clip}, "
                f"eps={self.eps}, optimizer={self.optim!r})")

    @torch.no_grad()
    def step(self, closure=None):
        decays = []
        for group in self.optim.param_groups:
            weight_decay = group.get("weight_decay", 0.0)
            decays.append(weight_decay)
            group["weight_decay"] = 0.0
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            weight_norms = torch._foreach_norm(params)
            grad_norms = torch._foreach_norm([p.grad for p in params])
            for p, w_norm, g_norm in zip(params, weight_norms, grad_norms):
                rate = self.trust_coefficient * w_norm / (g_norm + w_norm * weight_decay + self.eps)
                if self.clip:
                    rate = torch.clamp(rate / group["lr"], max=1.0)
                # Masks instead of `if norm != 0`, so no step waits on a device-to-host copy.
                adapt = (w_norm != 0) & (g_norm != 0)
                scaled = (p.grad + weight_decay * p) * rate
                p.grad.copy_(torch.where(adapt, scaled, p.grad))
        try:
            return self.optim.step(closure)
        finally:
            for group, weight_decay in zip(self.optim.param_groups, decays):
                group["weight_decay"] = weight_decay
