"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li, "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017), exact, chunked and sparse, on any device.

The algorithm, as the authors' released code computes it on the N = num_query + num_gallery
items together:

1. original distance: squared Euclidean between features, each item's row divided by its
   largest entry (the reference divides by the column maximum and transposes; the matrix is
   symmetric, so this is the row maximum);
2. R(i): the k-reciprocal neighbours of i, those among i's k1+1 nearest (i included) that have
   i among their own k1+1 nearest;
3. expansion: for each c in R(i), R_half(c) is the same set with round(k1/2) (half to even, as
   numpy rounds); it is added when more than 2/3 of it lies in R(i);
4. V(i): over the expanded set, Gaussian weights exp(-original distance), normalised to sum 1;
5. local query expansion: V(i) is replaced by the mean of V over i's k2 nearest (i included);
6. Jaccard distance: 1 - sum_k min(V_ik, V_jk) / sum_k max(V_ik, V_jk), where the max-sum is
   2 - min-sum because every V row sums to 1;
7. final = Jaccard * (1 - lambda) + original * lambda, query rows x gallery columns.

Where the reference keeps several dense N x N matrices (original distance, its argsort, V,
V_qe: 1.5 GB each at Market-1501 size, 35 GB at MSMT17 size) and loops in Python over all
items, this keeps only each item's k1+1 nearest neighbours and V as sparse rows (a few tens
of entries each): distances are computed one row chunk at a time, and the Jaccard step
walks only the pairs of items that share a neighbour. Only the (num_query, num_gallery)
result is dense. V is kept in float32 as in the authors' code; the TransReID-family copies
(used by SOLIDER-REID) store V and the Jaccard distance in float16, which moves the result by
about 1e-3 — not reproduced.
"""

from __future__ import annotations

import torch

from humanssl.errors import UserError

_CPU_CHUNK_ELEMENTS = 1 << 22
_GPU_CHUNK_ELEMENTS = 1 << 26


def re_rank(q_feats, g_feats, k1: int = 20, k2: int = 6, lambda_value: float = 0.3,
            chunk: int | None = None) -> torch.Tensor:
    """(num_query, num_gallery) re-ranked distances from query and gallery features.

    Features are used as given (the reference code L2-normalises them beforehand when the
    model's recipe does). The result is float32 on the features' device. `chunk` bounds the
    rows of any dense intermediate (default: about 4 M entries per chunk on CPU).
    """
    qf, gf = _check(q_feats, g_feats, k1, k2, lambda_value)
    x = torch.cat([qf, gf])
    nq, n = qf.shape[0], x.shape[0]
    rows = _rows(chunk, n, x.device)
    k_near = min(k1 + 1, n)
    k_half = min(int(round(k1 / 2)) + 1, n)  # Python's round: half to even, like np.around
    k_qe = min(k2, n)

    sq = x.pow(2).sum(1)
    out = torch.empty(nq, n - nq, dtype=torch.float32, device=x.device)
    nearest, row_max = _neighbours_and_scale(x, sq, k_near, nq, lambda_value, out, rows)
    if bool((row_max <= 0).any()):
        raise UserError("re_rank needs distinct features: some item is at distance 0 from every other")

    recip = _reciprocal(nearest)
    recip_half = _reciprocal(nearest[:, :k_half].contiguous())
    v_rows, v_cols, v_vals = _encode(x, sq, row_max, nearest, recip, recip_half, rows)
    if k_qe > 1:  # the reference skips the expansion for k2 = 1 (V unchanged)
        v_rows, v_cols, v_vals = _query_expand(v_rows, v_cols, v_vals, nearest[:, :k_qe], n)
    _add_jaccard(out, v_rows, v_cols, v_vals, nq, n, 1.0 - lambda_value, rows)
    return out


# ----------------------------------------------------------------------------- steps


def _neighbours_and_scale(x, sq, k_near, nq, lam, out, rows):
    """Each item's k_near nearest (itself included, ascending) and its largest distance;
    fills `out` with lambda x the normalised query-gallery distances."""
    n = x.shape[0]
    nearest = torch.empty(n, k_near, dtype=torch.int64, device=x.device)
    row_max = torch.empty(n, dtype=x.dtype, device=x.device)
    buf = None
    for lo, hi in _spans(0, nq, rows) + _spans(nq, n, rows):
        if buf is None or buf.shape[0] != hi - lo:
            buf = torch.empty(hi - lo, n, dtype=x.dtype, device=x.device)
        d = torch.addmm(sq[None, :], x[lo:hi], x.T, alpha=-2, out=buf).add_(sq[lo:hi, None])
        row_max[lo:hi] = d.amax(1)
        nearest[lo:hi] = torch.topk(d, k_near, dim=1, largest=False, sorted=True).indices
        if lo < nq:
            out[lo:hi] = d[:, nq:] / row_max[lo:hi, None] * lam
    return nearest, row_max


def _reciprocal(nearest):
    """recip[i, a]: item nearest[i, a] has i among its own nearest (same list length)."""
    n, k = nearest.shape
    recip = torch.empty(n, k, dtype=torch.bool, device=nearest.device)
    for lo, hi in _spans(0, n, max(1, (1 << 20) // (k * k))):
        me = torch.arange(lo, hi, device=nearest.device)
        recip[lo:hi] = (nearest[nearest[lo:hi]] == me[:, None, None]).any(-1)
    return recip


def _encode(x, sq, row_max, nearest, recip, recip_half, rows):
    """Sparse V: for each item, its expanded k-reciprocal set with normalised Gaussian weights.
    Returns (row, col, value) lists, sorted by row then column."""
    n, k_near = nearest.shape
    k_half = recip_half.shape[1]
    half = nearest[:, :k_half]
    half_size = recip_half.sum(1)
    sentinel = n
    per_chunk = max(1, min(rows, (1 << 20) // (k_near * k_half)))
    pairs = _PairDot(x)
    out_rows, out_cols, out_vals = [], [], []
    for lo, hi in _spans(0, n, per_chunk):
        near, rec = nearest[lo:hi], recip[lo:hi]
        r_set = torch.where(rec, near, -1).sort(dim=1).values    # R(i), -1 where not reciprocal
        members = half[near]                                     # (B, k_near, k_half)
        member_ok = recip_half[near]                             # R_half(c) for each c
        at = torch.searchsorted(r_set, members.flatten(1)).clamp_(max=k_near - 1)
        inside = (r_set.gather(1, at) == members.flatten(1)).view_as(members) & member_ok
        # strictly more than 2/3 of R_half(c) inside R(i), in integers
        accept = rec & (3 * inside.sum(2) > 2 * half_size[near])
        expanded = torch.cat([
            torch.where(rec, near, sentinel),
            torch.where(accept[..., None] & member_ok, members, sentinel).flatten(1),
        ], dim=1).sort(dim=1).values
        keep = expanded != sentinel
        keep[:, 1:] &= expanded[:, 1:] != expanded[:, :-1]
        r, c = torch.nonzero(keep, as_tuple=True)
        row, col = r + lo, expanded[r, c]
        # squared Euclidean for the kept pairs only, the same expansion as the first pass
        w = torch.exp(-(sq[row] + sq[col] - 2 * pairs.dot(row, col)) / row_max[row])
        total = torch.zeros(hi - lo, dtype=w.dtype, device=w.device).index_add_(0, r, w)
        out_rows.append(row)
        out_cols.append(col)
        out_vals.append(w / total[r])
    return torch.cat(out_rows), torch.cat(out_cols), torch.cat(out_vals)


def _query_expand(v_rows, v_cols, v_vals, near_qe, n, budget: int = 1 << 21):
    """Rows of V averaged over each item's k2 nearest, as sorted sparse (row, col, value);
    items are taken a span at a time so that at most about `budget` entries are in flight."""
    k2 = near_qe.shape[1]
    device = v_rows.device
    counts = torch.bincount(v_rows, minlength=n)
    starts = torch.cumsum(counts, 0) - counts
    out_rows, out_cols, out_vals = [], [], []
    for lo, hi in _pair_chunks(counts[near_qe].sum(1), n, budget):
        src = near_qe[lo:hi].reshape(-1)           # for item i: V rows near_qe[i, 0..k2-1]
        dest = torch.arange(lo, hi, device=device).repeat_interleave(k2)
        lengths = counts[src]
        pair = torch.repeat_interleave(torch.arange(src.numel(), device=device), lengths)
        offset = torch.arange(pair.numel(), device=device) - (torch.cumsum(lengths, 0) - lengths)[pair]
        pos = starts[src][pair] + offset
        key = dest[pair] * n + v_cols[pos]
        uniq, inverse = torch.unique(key, sorted=True, return_inverse=True)
        summed = torch.zeros(uniq.numel(), dtype=v_vals.dtype, device=device).index_add_(0, inverse, v_vals[pos])
        out_rows.append(uniq // n)
        out_cols.append(uniq % n)
        out_vals.append(summed / k2)
    return torch.cat(out_rows), torch.cat(out_cols), torch.cat(out_vals)


def _add_jaccard(out, rows_, cols, vals, nq, n, weight, rows):
    """out[i, j] += weight * Jaccard(V_i, V_{nq+j}), walking only the shared columns."""
    device = out.device
    ng = n - nq
    # gallery rows of V, grouped by column: for column k, the (gallery item, value) pairs
    in_gallery = rows_ >= nq
    g_item, g_col, g_val = rows_[in_gallery] - nq, cols[in_gallery], vals[in_gallery]
    by_col = torch.sort(g_col, stable=True).indices
    g_item, g_val = g_item[by_col], g_val[by_col]
    col_count = torch.bincount(g_col, minlength=n)
    col_start = torch.cumsum(col_count, 0) - col_count
    # query rows of V, in row order (the input is sorted by row)
    q_mask = rows_ < nq
    q_row, q_col, q_val = rows_[q_mask], cols[q_mask], vals[q_mask]
    q_count = torch.bincount(q_row, minlength=nq)
    q_start = torch.cumsum(q_count, 0) - q_count
    pairs_per_entry = col_count[q_col]
    pairs_per_query = torch.zeros(nq, dtype=torch.int64, device=device).index_add_(0, q_row, pairs_per_entry)
    bounds = _pair_chunks(pairs_per_query, rows, budget=1 << 21)
    buf = None
    for lo, hi in bounds:
        e_lo, e_hi = int(q_start[lo]), int(q_start[hi - 1] + q_count[hi - 1])
        lengths = pairs_per_entry[e_lo:e_hi]
        pair = torch.repeat_interleave(torch.arange(e_hi - e_lo, device=device), lengths)
        offset = torch.arange(pair.numel(), device=device) - (torch.cumsum(lengths, 0) - lengths)[pair]
        pos = col_start[q_col[e_lo:e_hi]][pair] + offset
        shared = torch.minimum(q_val[e_lo:e_hi][pair], g_val[pos])
        target = (q_row[e_lo:e_hi][pair] - lo) * ng + g_item[pos]
        size = (hi - lo) * ng
        if buf is None or buf.numel() < size:
            buf = torch.empty(size, dtype=out.dtype, device=device)
        min_sum = buf[:size].zero_().index_add_(0, target, shared).view(hi - lo, ng)
        # 1 - min/(2 - min), then weighted into the result
        jac = min_sum.div_(min_sum.neg().add_(2.0)).neg_().add_(1.0)
        out[lo:hi].add_(jac.mul_(weight))


# ----------------------------------------------------------------------------- helpers


def _check(q_feats, g_feats, k1, k2, lambda_value):
    qf, gf = torch.as_tensor(q_feats), torch.as_tensor(g_feats)
    if qf.dim() != 2 or gf.dim() != 2:
        raise UserError(f"re_rank needs 2-D (num, dim) features; got query {tuple(qf.shape)}, "
                        f"gallery {tuple(gf.shape)}")
    if qf.shape[1] != gf.shape[1]:
        raise UserError(f"query features have dimension {qf.shape[1]} but gallery features {gf.shape[1]}")
    if qf.shape[0] == 0 or gf.shape[0] == 0:
        raise UserError("re_rank needs at least one query and one gallery feature")
    if int(k1) < 1 or int(k2) < 1:
        raise UserError(f"k1 and k2 must be at least 1; got k1={k1}, k2={k2}")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise UserError(f"lambda_value must lie in [0, 1]; got {lambda_value}")
    qf = qf.float()
    return qf, gf.float().to(qf.device)


def _rows(chunk, n, device):
    if chunk is not None:
        if int(chunk) < 1:
            raise UserError(f"chunk must be a positive number of rows; got {chunk}")
        return int(chunk)
    budget = _GPU_CHUNK_ELEMENTS if torch.device(device).type == "cuda" else _CPU_CHUNK_ELEMENTS
    return max(1, budget // n)


def _spans(lo, hi, step):
    return [(s, min(s + step, hi)) for s in range(lo, hi, step)]


class _PairDot:
    """x[row] . x[col] for many pairs, in small steps through two reused buffers (cache-sized,
    and no fresh large allocations)."""

    def __init__(self, x: torch.Tensor, step: int = 8192):
        self.x = x
        self.step = step
        self.a = torch.empty(step, x.shape[1], dtype=x.dtype, device=x.device)
        self.b = torch.empty_like(self.a)

    def dot(self, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        out = torch.empty(row.numel(), dtype=self.x.dtype, device=self.x.device)
        for s in range(0, row.numel(), self.step):
            m = min(self.step, row.numel() - s)
            torch.index_select(self.x, 0, row[s:s + m], out=self.a[:m])
            torch.index_select(self.x, 0, col[s:s + m], out=self.b[:m])
            out[s:s + m] = torch.linalg.vecdot(self.a[:m], self.b[:m])
        return out


def _pair_chunks(work_per_row, max_rows, budget):
    """Consecutive row spans, each at most `max_rows` rows and (unless one row alone exceeds
    it) `budget` units of work."""
    total = torch.cumsum(work_per_row, 0).cpu()
    spans, lo, n = [], 0, total.numel()
    while lo < n:
        base = int(total[lo - 1]) if lo else 0
        hi = int(torch.searchsorted(total, torch.tensor(base + budget), right=True))
        hi = min(max(hi, lo + 1), lo + max_rows, n)
        spans.append((lo, hi))
        lo = hi
    return spans
