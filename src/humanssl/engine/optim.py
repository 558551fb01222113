"""Parameter groups, optimizers and gradient clipping shared by every method."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from humanssl.errors import UserError


def decay_groups(named_params: Iterable[tuple[str, nn.Parameter]], bias_lr_scale: float = 1.0) -> list[dict]:
    """Two groups: weight decay on >=2-D weights only; norms, biases and 1-D tensors go without.

    `bias_lr_scale` is the re-id habit of training biases at twice the base lr.
    """
    decay, no_decay, biases = [], [], []
    for name, p in named_params:
        if not p.requires_grad:
            continue
        if name.endswith(".bias") or name == "bias":
            biases.append(p)
        elif p.ndim <= 1:
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"name": "decay", "params": decay, "apply_weight_decay": True}]
    if bias_lr_scale == 1.0:
        no_decay += biases
    elif biases:
        groups.append({"name": "bias", "params": biases, "apply_weight_decay": False, "lr_scale": bias_lr_scale})
    groups.append({"name": "no_decay", "params": no_decay, "apply_weight_decay": False})
    return [g for g in groups if g["params"]]


def build_optimizer(groups: list[dict], name: str, momentum: float = 0.9,
                    betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    # lr and weight decay are set by the trainer before every step, so 0 here is a placeholder.
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=0.0, weight_decay=0.0, betas=betas)
    if name == "adam":  # L2 added to the gradient, not decoupled: the re-id recipes' (CLIP-ReID) Adam
        return torch.optim.Adam(groups, lr=0.0, weight_decay=0.0, betas=betas)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=0.0, weight_decay=0.0, momentum=momentum)
    raise UserError(f"unknown optimizer '{name}'; expected one of: adamw, adam, sgd")


def clip_gradients(params: Iterable[nn.Parameter], max_norm: float, mode: str) -> None:
    """'per_param' clips each tensor's gradient norm on its own (DINO's rule); 'global' clips the total."""
    grads = [p.grad for p in params if p.grad is not None]
    if max_norm <= 0 or not grads:
        return
    if mode == "global":
        torch.nn.utils.clip_grad_norm_(grads, max_norm)
        return
    norms = torch._foreach_norm(grads)
    for g, n in zip(grads, norms):
        g.mul_(torch.clamp(max_norm / (n + 1e-6), max=1.0))
