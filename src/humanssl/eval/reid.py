"""Re-identification ranking metrics: CMC, mAP and mINP under the Market-1501 protocol.

Protocol (as the reference evaluators of torchreid / fast-reid / TransReID compute it):

* for each query, gallery entries with the same identity *and* the same camera are removed
  (`use_cameras=False` keeps them, for sets without camera labels such as VehicleID);
* gallery entries whose identity is `junk_pid` (-1: Market's "junk" boxes) are removed for
  every query, as the original Market-1501 protocol does; the Python loaders drop those
  images, so the reference evaluators never see them. Distractors (Market's pid 0) are
  ordinary identities that never match a query;
* a query left without any correct gallery entry is skipped and counted;
* the ranking sorts distances ascending and breaks ties by gallery order (a stable sort);
* AP is the mean, over the query's correct entries, of the precision at each one's rank;
  CMC(k) the fraction of queries whose first correct entry is within rank k; INP the number
  of correct entries over the rank of the last one (fast-reid's mINP).

How it is fast without a compiled kernel: AP, CMC and INP only need the rank of each
correct entry, and a correct entry's rank is one plus the number of kept entries closer than
it. So each query row is sorted by *value only* (numpy's SIMD sort on CPU, torch.sort on a
GPU) and the few correct distances are looked up in it with a binary search; entries of the
query's own identity are few and are counted apart. Where a wrong entry has exactly the
distance of a correct one (a tie: gallery order decides), the tied entries of that row are
counted one by one. Rows are processed in chunks that reuse one buffer, so memory stays bounded
and everything stays on the distances' device.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from humanssl.errors import UserError

_CPU_CHUNK_ELEMENTS = 1 << 22   # 16 MB of float32 per chunk: cache-friendly, no page-fault churn
_GPU_CHUNK_ELEMENTS = 1 << 26


@dataclass
class RankingResult:
    cmc: torch.Tensor  # (max_rank,) fraction of valid queries whose first match is within rank k+1
    mAP: float
    mINP: float
    num_valid_queries: int
    num_skipped_queries: int

    @property
    def rank1(self) -> float:
        return float(self.cmc[0])

    def as_dict(self) -> dict:
        ranks = {f"R{k}": float(self.cmc[k - 1]) for k in (1, 5, 10) if k <= len(self.cmc)}
        return {"mAP": self.mAP, **ranks, "mINP": self.mINP,
                "valid_queries": self.num_valid_queries, "skipped_queries": self.num_skipped_queries}


def evaluate(distmat, q_pids, g_pids, q_camids=None, g_camids=None, max_rank: int = 50,
             use_cameras: bool = True, chunk: int | None = None, junk_pid: int | None = -1) -> RankingResult:
    """Metrics from a (num_query, num_gallery) distance matrix (smaller = more similar).

    `distmat` may be a tensor (any device) or an array; it is read one chunk of `chunk` query
    rows at a time (default: about 4 M entries on CPU) and never copied whole.
    `use_cameras=False` keeps same-camera gallery entries (then camera ids may be None).
    `junk_pid=None` treats every identity as ordinary.
    """
    distmat = torch.as_tensor(distmat)
    if distmat.dim() != 2:
        raise UserError(f"distmat must be a 2-D (num_query, num_gallery) matrix; got shape {tuple(distmat.shape)}")
    if not distmat.is_floating_point():
        distmat = distmat.double()
    ctx = _Protocol(q_pids, g_pids, q_camids, g_camids, distmat.shape[0], distmat.shape[1],
                    use_cameras, junk_pid, distmat.device)
    rows = _chunk_rows(chunk, ctx.num_gallery, distmat.device)

    def chunks():
        for s in range(0, distmat.shape[0], rows):
            yield distmat[s:s + rows]

    return _accumulate(chunks(), ctx, max_rank)


def evaluate_features(query_feats, gallery_feats, q_pids, g_pids, q_camids=None, g_camids=None,
                      metric: str = "cosine", max_rank: int = 50, use_cameras: bool = True,
                      chunk: int | None = None, junk_pid: int | None = -1) -> RankingResult:
    """The same metrics from features, one query chunk of distances at a time.

    metric "cosine": 1 - cosine similarity; "euclidean": squared Euclidean distance (the
    ranking of the plain Euclidean distance; the reference evaluators L2-normalise features
    first, which the caller does). The full distance matrix never exists, so MSMT17-size
    problems fit in bounded memory on CPU or GPU.
    """
    qf, gf = _features(query_feats, gallery_feats)
    ctx = _Protocol(q_pids, g_pids, q_camids, g_camids, qf.shape[0], gf.shape[0],
                    use_cameras, junk_pid, qf.device)
    if ctx.keep_cols is not None:
        gf = gf[ctx.keep_cols]  # junk columns are dropped once, from the features
        ctx.keep_cols = None
    rows = _chunk_rows(chunk, gf.shape[0], qf.device)
    dist_chunks = _distance_chunks(qf, gf, metric, rows)
    return _accumulate(dist_chunks, ctx, max_rank)


def pairwise_distance(x: torch.Tensor, y: torch.Tensor, metric: str = "euclidean",
                      out: torch.Tensor | None = None) -> torch.Tensor:
    """(len(x), len(y)) distances: "euclidean" is squared Euclidean, "cosine" is 1 - cosine.

    Squared Euclidean uses the expansion |x|^2 + |y|^2 - 2 x.y, as the reference code does;
    `out` lets a caller reuse one buffer across chunks.
    """
    if metric == "euclidean":
        d = torch.addmm(_squared_norms(y)[None, :], x, y.T, alpha=-2, out=out)
        return d.add_(_squared_norms(x)[:, None])
    if metric == "cosine":
        xn = torch.nn.functional.normalize(x, dim=1)
        yn = torch.nn.functional.normalize(y, dim=1)
        return torch.mm(xn, yn.T, out=out).neg_().add_(1.0)
    raise UserError(f"metric must be 'cosine' or 'euclidean'; got {metric!r}")


# ----------------------------------------------------------------------------- inputs


def _features(query_feats, gallery_feats) -> tuple[torch.Tensor, torch.Tensor]:
    qf = torch.as_tensor(query_feats)
    gf = torch.as_tensor(gallery_feats)
    if qf.dim() != 2 or gf.dim() != 2:
        raise UserError(f"features must be 2-D (num, dim); got query {tuple(qf.shape)}, gallery {tuple(gf.shape)}")
    if qf.shape[1] != gf.shape[1]:
        raise UserError(f"query features have dimension {qf.shape[1]} but gallery features {gf.shape[1]}")
    return qf.float(), gf.float().to(qf.device)


def _labels(values, name: str, length: int, device) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(values) if not isinstance(values, torch.Tensor) else values)
    if t.dim() != 1 or t.shape[0] != length:
        raise UserError(f"{name} must be a 1-D sequence of {length} labels (one per row/column); "
                        f"got shape {tuple(t.shape)}")
    if t.is_floating_point():
        if not bool(torch.all(t == t.round())):
            raise UserError(f"{name} must hold integer labels")
    return t.to(device=device, dtype=torch.int64)


class _Protocol:
    """Labels on the device, junk columns and the gallery grouped by identity."""

    def __init__(self, q_pids, g_pids, q_camids, g_camids, num_query, num_gallery,
                 use_cameras, junk_pid, device):
        self.use_cameras = use_cameras
        self.q_pids = _labels(q_pids, "q_pids", num_query, device)
        g_pids = _labels(g_pids, "g_pids", num_gallery, device)
        if use_cameras:
            if q_camids is None or g_camids is None:
                raise UserError("camera ids are needed with use_cameras=True; "
                                "pass q_camids and g_camids, or use_cameras=False")
            self.q_cams = _labels(q_camids, "q_camids", num_query, device)
            g_cams = _labels(g_camids, "g_camids", num_gallery, device)
        else:
            self.q_cams = torch.zeros_like(self.q_pids)
            g_cams = torch.zeros_like(g_pids)
        self.keep_cols = None
        if junk_pid is not None:
            junk = g_pids == junk_pid
            if bool(junk.any()):
                self.keep_cols = torch.nonzero(~junk).squeeze(1)
                g_pids, g_cams = g_pids[self.keep_cols], g_cams[self.keep_cols]
        if g_pids.numel() == 0:
            raise UserError(f"the gallery is empty once junk entries (pid {junk_pid}) are removed")
        self.g_pids, self.g_cams = g_pids, g_cams
        self.num_gallery = g_pids.numel()
        # gallery indices grouped by identity, gallery order kept inside each group
        ids, inverse = torch.unique(torch.cat([g_pids, self.q_pids]), return_inverse=True)
        g_group = inverse[:self.num_gallery]
        self.q_group = inverse[self.num_gallery:]
        self.group_order = torch.sort(g_group, stable=True).indices
        self.group_count = torch.bincount(g_group, minlength=ids.numel())
        self.group_start = torch.cumsum(self.group_count, 0) - self.group_count


def _squared_norms(x: torch.Tensor, step: int = 8192) -> torch.Tensor:
    """Row sums of squares, a few rows at a time: x.pow(2) of an MSMT17 gallery is 0.7 GB."""
    return torch.cat([x[s:s + step].pow(2).sum(1) for s in range(0, x.shape[0], step)])


def _chunk_rows(chunk: int | None, num_gallery: int, device) -> int:
    if chunk is not None:
        if int(chunk) < 1:
            raise UserError(f"chunk must be a positive number of query rows; got {chunk}")
        return int(chunk)
    budget = _GPU_CHUNK_ELEMENTS if torch.device(device).type == "cuda" else _CPU_CHUNK_ELEMENTS
    return max(1, budget // max(1, num_gallery))


def _distance_chunks(qf, gf, metric, rows):
    """Distance rows for one query chunk at a time, in one reused buffer. The gallery is never
    copied whole (an MSMT17 gallery is 0.7 GB): cosine scales columns by inverse norms."""
    if metric not in ("cosine", "euclidean"):
        raise UserError(f"metric must be 'cosine' or 'euclidean'; got {metric!r}")
    if metric == "cosine":
        g_scale = _squared_norms(gf).sqrt_().clamp_(min=1e-12).reciprocal_()[None, :]
    else:
        gsq = _squared_norms(gf)[None, :]
    buf = None
    for s in range(0, qf.shape[0], rows):
        q = qf[s:s + rows]
        if buf is None or buf.shape[0] != q.shape[0]:
            buf = torch.empty(q.shape[0], gf.shape[0], dtype=qf.dtype, device=qf.device)
        if metric == "cosine":
            torch.mm(torch.nn.functional.normalize(q, dim=1), gf.T, out=buf).mul_(g_scale).neg_().add_(1.0)
        else:
            torch.addmm(gsq, q, gf.T, alpha=-2, out=buf).add_(_squared_norms(q)[:, None])
        yield buf


# ----------------------------------------------------------------------------- ranking


def _accumulate(dist_chunks, ctx: _Protocol, max_rank: int) -> RankingResult:
    if int(max_rank) < 1:
        raise UserError(f"max_rank must be at least 1; got {max_rank}")
    max_rank = min(int(max_rank), ctx.num_gallery)
    sorter = _RowSorter()
    stats = []
    start = 0
    for dist in dist_chunks:
        n = dist.shape[0]
        if ctx.keep_cols is not None:
            dist = dist.index_select(1, ctx.keep_cols)
        if dist.dtype in (torch.float16, torch.bfloat16):
            dist = dist.float()
        stats.append(_chunk_stats(dist, slice(start, start + n), ctx, sorter))
        start += n
    num_rel, ap, first, last = (torch.cat(t) for t in zip(*stats))
    ok = num_rel > 0
    valid = int(ok.sum())
    if valid == 0:
        raise UserError("no query has a correct match in the gallery under this protocol: every query's "
                        "identity is absent from the gallery, junk, or seen only by the query's own camera")
    first, ap = first[ok], ap[ok]
    hist = torch.bincount(first.clamp(max=max_rank + 1), minlength=max_rank + 2)[1:max_rank + 1]
    cmc = torch.cumsum(hist, 0).double() / valid
    mINP = float((num_rel[ok].double() / last[ok].double()).mean())
    return RankingResult(cmc, float(ap.mean()), mINP, valid, ctx.q_pids.numel() - valid)


def _chunk_stats(dist, rows: slice, ctx: _Protocol, sorter):
    """Per query of the chunk: (number of correct entries, AP, rank of first, rank of last)."""
    B, device = dist.shape[0], dist.device
    group = ctx.q_group[rows]
    qp, qc = ctx.q_pids[rows], ctx.q_cams[rows]
    count = ctx.group_count[group]
    M = int(count.max())
    srt = sorter(dist)
    if bool(torch.isnan(srt[:, -1]).any()):  # sorting puts NaN last
        raise UserError(f"the distances of query rows {rows.start}..{rows.stop - 1} contain NaN")
    if M == 0:
        zero = torch.zeros(B, dtype=torch.int64, device=device)
        return zero, zero.double(), zero, zero
    slots = torch.arange(M, device=device)
    valid = slots < count[:, None]
    gidx = ctx.group_order[(ctx.group_start[group][:, None] + slots).clamp_(max=ctx.num_gallery - 1)]
    same_d = dist.gather(1, gidx)  # distances to every gallery entry of the query's identity
    pos = valid & (ctx.g_cams[gidx] != qc[:, None]) if ctx.use_cameras else valid
    num_rel = pos.sum(1)
    inf = torch.tensor(float("inf"), dtype=dist.dtype, device=device)
    # correct entries by distance; equal distances keep gallery order (gidx is in gallery
    # order), and the padding, infinite too, stays behind infinite correct entries
    first_pos = torch.sort((~pos).to(torch.uint8), dim=1, stable=True).indices
    pos_d, order = torch.where(pos, same_d, inf).gather(1, first_pos).sort(dim=1, stable=True)
    pos_slot = first_pos.gather(1, order)
    same_sorted = torch.where(valid, same_d, inf).sort(dim=1).values

    all_less = torch.searchsorted(srt, pos_d)
    same_less = torch.minimum(torch.searchsorted(same_sorted, pos_d), count[:, None])
    same_equal = torch.minimum(torch.searchsorted(same_sorted, pos_d, right=True), count[:, None]) - same_less
    in_rel = slots < num_rel[:, None]
    # wrong entries closer than each correct one, plus those at exactly its distance that come
    # earlier in the gallery (ties are rare, and are counted one by one). Entries equal to a
    # correct distance sit together in the sorted row from `all_less` on; the identity's own
    # come first in number, so one more equal value behind them means a tied wrong entry.
    wrong_before = all_less - same_less
    behind = all_less + same_equal
    tied = (behind < srt.shape[1]) & in_rel
    tied &= srt.gather(1, behind.clamp(max=srt.shape[1] - 1)) == pos_d
    if bool(tied.any()):
        b, k = torch.nonzero(tied, as_tuple=True)
        wrong_before = wrong_before.index_put(
            (b, k), wrong_before[b, k] + _tied_wrong_before(dist, b, pos_d[b, k], gidx.gather(1, pos_slot)[b, k],
                                                             qp, ctx.g_pids))
    rank = slots + 1 + wrong_before  # 1-based rank among the kept entries
    ap = torch.where(in_rel, (slots + 1).double() / rank.double(), 0.0).sum(1) / num_rel.clamp(min=1)
    first = rank[:, 0]
    last = rank.gather(1, (num_rel - 1).clamp(min=0)[:, None]).squeeze(1)
    return num_rel, ap, first, last


def _tied_wrong_before(dist, b, value, g_index, qp, g_pids, budget: int = 1 << 22):
    """For correct entries (row b, distance value, gallery index): the number of wrong entries
    of that row at exactly that distance and earlier in gallery order."""
    out = []
    cols = torch.arange(dist.shape[1], device=dist.device)
    step = max(1, budget // dist.shape[1])
    for s in range(0, b.numel(), step):
        bb, v, gi = b[s:s + step], value[s:s + step], g_index[s:s + step]
        hit = (dist[bb] == v[:, None]) & (g_pids[None, :] != qp[bb][:, None]) & (cols[None, :] < gi[:, None])
        out.append(hit.sum(1))
    return torch.cat(out)


class _RowSorter:
    """Sorted copy of each row's values. On CPU: numpy's SIMD sort in one buffer reused across
    chunks (fresh large allocations cost more in page faults than the sort itself), rows split
    over threads (numpy releases the GIL while sorting); elsewhere: torch.sort."""

    def __init__(self):
        self.buf = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
            return torch.sort(x, dim=1).values
        if self.buf is None or self.buf.dtype != x.dtype or self.buf.numel() < x.numel():
            self.buf = torch.empty(x.numel(), dtype=x.dtype)
        out = self.buf[:x.numel()].view(x.shape)
        src, dst = x.detach().numpy(), out.numpy()

        def copy_and_sort(lo, hi):  # copied rows are still in cache when they are sorted
            np.copyto(dst[lo:hi], src[lo:hi])
            dst[lo:hi].sort(axis=1)

        threads = min(torch.get_num_threads(), os.cpu_count() or 1, dst.shape[0])
        if threads > 1 and dst.size >= (1 << 16):
            bounds = np.linspace(0, dst.shape[0], threads + 1).astype(int)
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(copy_and_sort, bounds[:-1], bounds[1:]))
        else:
            copy_and_sort(0, dst.shape[0])
        return out
