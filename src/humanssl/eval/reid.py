"""Re-identification ranking metrics: CMC, mAP and mINP under the Market-1501 protocol.

For each query, gallery entries with the same identity *and* the same camera are removed
(they are too easy); a query left without any correct gallery entry is skipped and counted.
Ranking sorts distances ascending with a stable sort, so ties keep gallery order, as the
reference implementations do. Queries are processed in chunks: the full query x gallery
ordering is never held at once, and everything stays on the distances' device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


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


def evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50,
             use_cameras: bool = True, chunk: int = 512) -> RankingResult:
    """Metrics from a (num_query, num_gallery) distance matrix (smaller = more similar).

    `use_cameras=False` keeps same-camera gallery entries (datasets without camera labels).
    """
    distmat = torch.as_tensor(distmat)
    return _accumulate(
        (distmat[s:s + chunk] for s in range(0, distmat.shape[0], chunk)),
        q_pids, g_pids, q_camids, g_camids, max_rank, use_cameras, distmat.device)


def evaluate_features(query_feats, gallery_feats, q_pids, g_pids, q_camids, g_camids,
                      metric: str = "cosine", max_rank: int = 50, use_cameras: bool = True,
                      chunk: int = 512) -> RankingResult:
    """The same metrics computed from features, one query chunk of distances at a time."""
    qf = torch.as_tensor(query_feats).float()
    gf = torch.as_tensor(gallery_feats).float().to(qf.device)
    if metric == "cosine":
        qf = torch.nn.functional.normalize(qf, dim=1)
        gf = torch.nn.functional.normalize(gf, dim=1)

    def chunks():
        for s in range(0, qf.shape[0], chunk):
            q = qf[s:s + chunk]
            if metric == "cosine":
                yield 1.0 - q @ gf.T
            else:
                yield torch.cdist(q, gf).pow(2)

    return _accumulate(chunks(), q_pids, g_pids, q_camids, g_camids, max_rank, use_cameras, qf.device)


def _accumulate(dist_chunks, q_pids, g_pids, q_camids, g_camids, max_rank, use_cameras, device) -> RankingResult:
    q_pids = torch.as_tensor(q_pids, device=device)
    g_pids = torch.as_tensor(g_pids, device=device)
    q_cams = torch.as_tensor(q_camids, device=device)
    g_cams = torch.as_tensor(g_camids, device=device)
    max_rank = min(max_rank, len(g_pids))
    cmc_counts = torch.zeros(max_rank, dtype=torch.float64, device=device)
    ap_sum = inp_sum = 0.0
    valid = skipped = 0
    start = 0
    for dist in dist_chunks:
        n = dist.shape[0]
        qp, qc = q_pids[start:start + n, None], q_cams[start:start + n, None]
        start += n
        order = torch.sort(dist, dim=1, stable=True).indices
        gp, gc = g_pids[order], g_cams[order]
        del order
        same = gp == qp
        keep = ~(same & (gc == qc)) if use_cameras else torch.ones_like(same)
        match = same & keep
        num_rel = match.sum(1)
        ok = num_rel > 0
        skipped += int((~ok).sum())
        if not ok.any():
            continue
        match, keep, num_rel = match[ok], keep[ok], num_rel[ok]
        kept_rank = keep.cumsum(1)  # rank among the entries the protocol keeps, 1-based
        hits = match.cumsum(1)
        precision = hits.double() / kept_rank.clamp(min=1).double()
        ap = (precision * match).sum(1) / num_rel
        first = torch.where(match, kept_rank, torch.iinfo(kept_rank.dtype).max).amin(1)
        last = torch.where(match, kept_rank, 0).amax(1)
        cmc_counts += (first[:, None] <= torch.arange(1, max_rank + 1, device=device)).sum(0)
        ap_sum += float(ap.sum())
        inp_sum += float((num_rel.double() / last.double()).sum())
        valid += int(ok.sum())
    if valid == 0:
        raise ValueError("no query has a correct match in the gallery under this protocol")
    return RankingResult(cmc_counts / valid, ap_sum / valid, inp_sum / valid, valid, skipped)
