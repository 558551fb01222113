"""Speed and peak memory of re-id evaluation: CMC/mAP/mINP and k-reciprocal re-ranking.

    python benchmarks/reid_eval.py --device cpu --sizes market msmt17 --rerank
    python benchmarks/reid_eval.py --device cuda --sizes market msmt17 --rerank

Problems at the published test-set sizes, with random data:
  market   3,368 queries x 15,913 gallery (750 identities + 2,793 distractors of pid 0), 6 cameras
  msmt17  11,659 queries x 82,161 gallery (3,060 identities), 15 cameras
Features are clustered by identity with a per-camera shift and L2-normalised (2048-d for
ranking, `--rerank-dim` 256-d for re-ranking, the size the peers' figures were taken at);
distractors are noise around the camera shift alone.

Cases, each in a fresh process so that its peak resident memory is its own:
  random_distmat   evaluate() on a random float32 distance matrix (the peers' timing problem)
  distmat          squared-Euclidean matrix from features, then evaluate() on it (market only:
                   the MSMT17 matrix alone is 3.8 GB)
  features         evaluate_features(): distances computed and ranked one query chunk at a time
  rerank           re_rank() on the features (k1=20, k2=6, lambda=0.3), then evaluate()
One JSON line per case: wall and CPU seconds of the timed part, peak host RSS of the process
(ru_maxrss, features included) and the RSS before the timed part, and on a GPU the peak
allocated device memory.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

import torch

SIZES = {
    # queries, gallery with an identity, gallery distractors (pid 0), identities, cameras
    "market": (3368, 13120, 2793, 750, 6),
    "market_quarter": (842, 3280, 698, 188, 6),
    "msmt17": (11659, 82161, 0, 3060, 15),
}


def make_problem(size: str, dim: int, device: torch.device, seed: int = 0):
    nq, ng_id, ng_distr, ids, cams = SIZES[size]
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(ids, dim, generator=g), dim=1)
    cam_shift = 0.5 * torch.nn.functional.normalize(torch.randn(cams, dim, generator=g), dim=1)

    def draw(n, pids_pool, distractors=0):
        pids = torch.cat([pids_pool[torch.randint(len(pids_pool), (n - distractors,), generator=g)],
                          torch.zeros(distractors, dtype=torch.int64)])
        camids = torch.randint(cams, (n,), generator=g)
        feats = torch.empty(n, dim)
        for s in range(0, n, 4096):  # in pieces: no full-size temporaries
            p, c = pids[s:s + 4096], camids[s:s + 4096]
            base = torch.where((p > 0)[:, None], centres[(p - 1).clamp(min=0)], 0.0) + cam_shift[c]
            # noise of norm 0.6 * dim^(1/4): same-identity cosine stays above the spread of
            # unrelated ones in any dimension, so the retrieval is neither trivial nor hopeless
            noise = torch.randn(len(p), dim, generator=g) * (0.6 * dim ** 0.25 / dim ** 0.5)
            feats[s:s + 4096] = torch.nn.functional.normalize(base + noise, dim=1)
        return feats.to(device), pids, camids

    pool = torch.arange(1, ids + 1)
    qf, qp, qc = draw(nq, pool)
    gf, gp, gc = draw(ng_id + ng_distr, pool, ng_distr)
    return qf, gf, qp, gp, qc, gc


def current_rss_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def run_case(case: str, size: str, device: torch.device, dim: int, rerank_dim: int) -> dict:
    from humanssl.eval.reid import evaluate, evaluate_features, pairwise_distance
    from humanssl.eval.rerank import re_rank

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    qf, gf, qp, gp, qc, gc = make_problem(size, rerank_dim if case == "rerank" else dim, device)
    extra: dict = {}
    if case == "random_distmat":
        distmat = torch.rand(len(qp), len(gp), generator=torch.Generator().manual_seed(1)).to(device)
        del qf, gf
    rss_before = current_rss_gb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync()
    t0, c0 = time.perf_counter(), time.process_time()
    if case == "random_distmat":
        result = evaluate(distmat, qp, gp, qc, gc)
    elif case == "distmat":
        distmat = pairwise_distance(qf, gf, "euclidean")
        sync()
        extra["distance_s"] = round(time.perf_counter() - t0, 3)
        result = evaluate(distmat, qp, gp, qc, gc)
    elif case == "features":
        result = evaluate_features(qf, gf, qp, gp, qc, gc, metric="euclidean")
    elif case == "rerank":
        final = re_rank(qf, gf, k1=20, k2=6, lambda_value=0.3)
    else:
        raise SystemExit(f"unknown case {case!r}")
    sync()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # KiB on Linux
    peak_cuda = torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None
    if case == "rerank":  # accuracy before and after, outside the timed part
        result = evaluate(final, qp, gp, qc, gc)
        extra["mAP_before_rerank"] = round(evaluate_features(qf, gf, qp, gp, qc, gc, metric="euclidean").mAP, 4)
    row = {
        "date": datetime.date.today().isoformat(),
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"{platform.machine()} CPU, {os.cpu_count()} cores"),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "case": case, "size": size, "queries": len(qp), "gallery": len(gp),
        "dim": rerank_dim if case == "rerank" else dim,
        "seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
        "peak_rss_gb": round(peak_rss, 3),
        "rss_before_gb": round(rss_before, 3),
        "mAP": round(result.mAP, 4), "R1": round(result.rank1, 4), "mINP": round(result.mINP, 4),
        **extra,
    }
    if peak_cuda is not None:
        row["peak_cuda_gb"] = round(peak_cuda, 3)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--sizes", nargs="+", default=["market"], choices=sorted(SIZES))
    p.add_argument("--cases", nargs="+", default=["random_distmat", "distmat", "features"],
                   choices=["random_distmat", "distmat", "features", "rerank"])
    p.add_argument("--rerank", action="store_true", help="also time k-reciprocal re-ranking")
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--rerank-dim", type=int, default=256)
    p.add_argument("--repeat", type=int, default=1, help="runs per case (each in a fresh process)")
    p.add_argument("--one", nargs=2, metavar=("CASE", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    device = torch.device(args.device)
    if args.one:
        print(json.dumps(run_case(args.one[0], args.one[1], device, args.dim, args.rerank_dim)), flush=True)
        return
    cases = list(args.cases) + (["rerank"] if args.rerank and "rerank" not in args.cases else [])
    for size in args.sizes:
        for case in cases:
            if size == "msmt17" and case in ("random_distmat", "distmat", "rerank"):
                continue  # a full MSMT17 matrix is 3.8 GB: only the chunked path is meant for it
            for _ in range(args.repeat):
                cmd = [sys.executable, __file__, "--device", args.device, "--dim", str(args.dim),
                       "--rerank-dim", str(args.rerank_dim), "--one", case, size]
                subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
