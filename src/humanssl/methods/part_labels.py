"""SOLIDER's pseudo part labels: cluster the teacher's last-stage tokens into body parts.

For each image (notes/solider_saip.md §1.2, step 3):
  1. foreground / background: 2-means on the L2 norm of every token; the cluster with the larger
     centre is the foreground (people give stronger responses than the scenery);
  2. the image is kept only if more than half of its tokens are foreground;
  3. `num_parts`-means on the raw C-dim features of the foreground tokens;
  4. parts are renumbered 1..num_parts by the mean row of their tokens (top to bottom: roughly
     head, upper body, lower body); background is 0.

The official code runs scikit-learn on the CPU, one image at a time (45% of its step). Here every
image of the batch is clustered at once in torch, on the features' device:
  * the 1-D 2-means of step 1 is solved exactly: in 1-D the optimal partition splits the sorted
    values in two, so trying every split point gives the global optimum (what scikit-learn's
    restarts aim at) without iterations or random init;
  * step 3 is Lloyd's algorithm with k-means++ seeding, a fixed number of iterations and several
    restarts, keeping the restart of lowest inertia (scikit-learn's `n_init`). The random draws
    come from a CPU generator (the global one unless given), so labels are reproducible given the
    seed and identical on every device.
"""

from __future__ import annotations

import torch
from torch import Tensor


def foreground_by_norm(feats: Tensor) -> Tensor:
    """(B, N, C) tokens -> (B, N) bool, True for tokens in the 2-means cluster of larger norm."""
    norms = feats.float().norm(dim=-1)
    n = norms.shape[1]
    if n < 2:
        return torch.ones_like(norms, dtype=torch.bool)
    values, order = norms.sort(dim=1)
    values = values - values.mean(dim=1, keepdim=True)  # centred: the prefix sums lose less precision
    s1, s2 = values.cumsum(1), (values * values).cumsum(1)
    left = torch.arange(1, n, device=feats.device, dtype=values.dtype)  # size of the low cluster
    right = n - left
    lo1, lo2 = s1[:, :-1], s2[:, :-1]
    hi1, hi2 = s1[:, -1:] - lo1, s2[:, -1:] - lo2
    sse = (lo2 - lo1 * lo1 / left) + (hi2 - hi1 * hi1 / right)
    split = sse.argmin(dim=1, keepdim=True) + 1  # first sorted index of the high cluster
    high_sorted = torch.arange(n, device=feats.device).expand_as(values) >= split
    return torch.zeros_like(high_sorted).scatter(1, order, high_sorted)


def kmeans(x: Tensor, k: int, valid: Tensor | None = None, iters: int = 20, restarts: int = 3,
           generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Batched k-means. x (B, N, C); valid (B, N) bool marks the points that take part.

    Returns labels (B, N) in [0, k) (invalid points get the label of their nearest centre too,
    ignore them) and centres (B, k, C), both from the restart of lowest inertia per image.
    """
    b, n, c = x.shape
    x = x.float()
    if valid is None:
        valid = torch.ones(b, n, dtype=torch.bool, device=x.device)
    r = max(int(restarts), 1)
    xr = x.unsqueeze(1).expand(b, r, n, c)
    vr = valid.unsqueeze(1).expand(b, r, n).float()
    sq = (x * x).sum(-1).unsqueeze(1)  # (B, 1, N)

    def sq_dist(centres: Tensor) -> Tensor:  # (B, R, N, K)
        cross = torch.einsum("bnc,brkc->brnk", x, centres)
        return (sq.unsqueeze(-1) - 2 * cross + (centres * centres).sum(-1).unsqueeze(2)).clamp_min(0)

    # k-means++: the first centre uniformly among valid points, each next one with probability
    # proportional to the squared distance to the nearest centre chosen so far.
    uniforms = torch.rand(k, b, r, generator=generator).to(x.device)
    weights = vr
    centres = x.new_zeros(b, r, k, c)
    nearest = None
    for j in range(k):
        cum = weights.cumsum(-1)
        total = cum[..., -1:]
        # all-zero weights (fewer distinct points than k): fall back to uniform over valid points
        cum = torch.where(total > 0, cum, vr.cumsum(-1))
        total = cum[..., -1:]
        pick = torch.searchsorted(cum, uniforms[j].unsqueeze(-1) * total, right=True).clamp_max(n - 1)
        centres[:, :, j] = xr.gather(2, pick.unsqueeze(-1).expand(b, r, 1, c)).squeeze(2)
        d = sq_dist(centres[:, :, j:j + 1]).squeeze(-1)
        nearest = d if nearest is None else torch.minimum(nearest, d)
        weights = nearest * vr

    for _ in range(iters):
        assign = sq_dist(centres).argmin(-1)  # (B, R, N)
        onehot = torch.nn.functional.one_hot(assign, k).to(x.dtype) * vr.unsqueeze(-1)
        counts = onehot.sum(2)  # (B, R, K)
        sums = torch.einsum("brnk,bnc->brkc", onehot, x)
        # an empty cluster keeps its centre
        centres = torch.where(counts.unsqueeze(-1) > 0, sums / counts.clamp_min(1).unsqueeze(-1), centres)

    dist = sq_dist(centres)
    best_d, labels = dist.min(-1)
    inertia = (best_d * vr).sum(-1)  # (B, R)
    best = inertia.argmin(1)  # the first restart among equals
    labels = labels.gather(1, best.view(b, 1, 1).expand(b, 1, n)).squeeze(1)
    centres = centres.gather(1, best.view(b, 1, 1, 1).expand(b, 1, k, c)).squeeze(1)
    return labels, centres


def order_top_to_bottom(labels: Tensor, valid: Tensor, k: int, width: int) -> Tensor:
    """Renumber clusters 0..k-1 of (B, N) row-major tokens as 1..k by their mean row; 0 where invalid.

    A cluster without tokens ranks last (its number is then unused)."""
    rows = torch.div(torch.arange(labels.shape[1], device=labels.device), width, rounding_mode="floor")
    onehot = torch.nn.functional.one_hot(labels, k).float() * valid.unsqueeze(-1).float()  # (B, N, K)
    counts = onehot.sum(1)
    mean_row = (onehot * rows.view(1, -1, 1).float()).sum(1) / counts.clamp_min(1)
    mean_row = torch.where(counts > 0, mean_row, torch.full_like(mean_row, float("inf")))
    order = mean_row.argsort(dim=1, stable=True)  # order[i] = the cluster ranked i-th from the top
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(k, device=labels.device).expand_as(order))
    return torch.where(valid, rank.gather(1, labels) + 1, torch.zeros_like(labels))


@torch.no_grad()
def part_labels(feature_map: Tensor, num_parts: int = 3, iters: int = 20, restarts: int = 3,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(B, C, h, w) teacher map -> label maps (B, h, w) long in 0..num_parts, keep (B,) bool.

    Label maps of dropped images (foreground not a strict majority) are all background."""
    b, c, h, w = feature_map.shape
    # (B, h*w, C) row-major tokens, as the official code flattens them; float32 even under
    # autocast, where bf16 distances would scramble the assignments.
    tokens = feature_map.detach().float().flatten(2).transpose(1, 2)
    with torch.autocast(device_type=tokens.device.type, enabled=False):
        fg = foreground_by_norm(tokens)
        keep = fg.sum(1) * 2 > h * w
        labels, _ = kmeans(tokens, num_parts, valid=fg, iters=iters, restarts=restarts, generator=generator)
        parts = order_top_to_bottom(labels, fg & keep.unsqueeze(1), num_parts, w)
    return parts.view(b, h, w), keep
