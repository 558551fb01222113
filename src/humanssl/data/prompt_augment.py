"""SVLL-ReID's prompt augmentations: two augmented views of full prompt embeddings (n, L, D).

    mask  each element (token x channel) is zeroed independently with probability `scale`;
          no rescaling, special tokens and padding included.
    swap  int(scale * L) token positions are chosen at random and their vectors permuted.
    mix   prompt i becomes (1 - scale) * prompt i + scale * prompt r, r uniform in 0..n-2,
          in order, so later prompts can mix with already-mixed ones (the official formula:
          the last prompt is never a partner and r may be i itself). The official dispatcher
          cannot reach 'mix'; here it works.

Random numbers come from `generator` (CPU; None: torch's global generator), drawn in the
official order per prompt (view 1 then view 2), so a seed reproduces the official views.
The views stay differentiable with respect to the prompts (the learnable context vectors).
"""

from __future__ import annotations

import torch
from torch import Tensor

from humanssl.errors import UserError

METHODS = ("mask", "swap", "mix")


def mask_prompts(prompts: Tensor, scale: float = 0.5, generator: torch.Generator | None = None):
    n, length, dim = prompts.shape
    views = ([], [])
    for i in range(n):
        for view in views:
            drop = (torch.rand(length, dim, generator=generator) < scale).to(prompts.device)
            view.append(prompts[i].masked_fill(drop, 0.0))
    return torch.stack(views[0]), torch.stack(views[1])


def swap_prompts(prompts: Tensor, scale: float = 0.5, generator: torch.Generator | None = None):
    n, length, _ = prompts.shape
    k = int(scale * length)
    views = ([], [])
    for i in range(n):
        chosen = [torch.randperm(length, generator=generator)[:k] for _ in views]
        order = [torch.randperm(k, generator=generator) for _ in views]
        for view, idx, perm in zip(views, chosen, order):
            source = torch.arange(length)
            source[idx] = idx[perm]
            view.append(prompts[i, source.to(prompts.device)])
    return torch.stack(views[0]), torch.stack(views[1])


def mix_prompts(prompts: Tensor, scale: float = 0.5, generator: torch.Generator | None = None):
    n = prompts.shape[0]
    views = (list(prompts.unbind(0)), list(prompts.unbind(0)))
    if n < 2:  # no other prompt to mix with
        return prompts.clone(), prompts.clone()
    for i in range(n):
        partners = [int(torch.randint(0, n - 1, (1,), generator=generator)) for _ in views]
        for view, r in zip(views, partners):
            view[i] = (1 - scale) * view[i] + scale * view[r]
    return torch.stack(views[0]), torch.stack(views[1])


def augment_prompts(prompts: Tensor, method: str = "mask", scale: float = 0.5,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Two views of `prompts` (n, L, D) by PROMPT_AUG_METHOD `method` with PROMPT_AUG_SCALE `scale`."""
    if prompts.dim() != 3:
        raise UserError(f"prompt augmentation: expected prompts (n, L, D), got {tuple(prompts.shape)}")
    if not 0 <= scale <= 1:
        raise UserError(f"prompt augmentation: scale must lie in [0, 1], got {scale}")
    fn = {"mask": mask_prompts, "swap": swap_prompts, "mix": mix_prompts}.get(method)
    if fn is None:
        raise UserError(f"prompt augmentation: method {method!r} is unknown; expected one of {METHODS}")
    return fn(prompts, scale, generator)
