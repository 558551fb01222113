"""Cross-view gait recognition protocols: CASIA-B and OU-MVLP.

For every probe condition, probe view and gallery view, the probes of that condition seen
from the probe view are matched by nearest neighbour against the gallery sequences seen from
the gallery view; rank-k accuracy (percent, rounded to 2 decimals as the official evaluators
do) fills a (views x views) matrix per condition. The headline number per probe view is the
mean over the other gallery views (identical views excluded), and per condition the mean over
probe views.

* CASIA-B: gallery NM#1-4; probe conditions NM (#5-6), BG (#1-2), CL (#1-2); 11 views.
* OU-MVLP: gallery sequence 01, probe sequence 00; 14 views.

Distances: "euclidean" on the flattened embedding (GaitSet), "part_mean" = mean over parts of
per-part Euclidean distances (SelfGait), "cosine" on the flattened embedding (OpenGait's option).
Features are (n, d) or (n, parts, d); distances are sqrt(relu(|a|^2 + |b|^2 - 2ab)) as in the
official code. Ranking uses a stable sort, so ties go to the earlier gallery entry.

Official quirk (switch `official_divisor`): GaitSet and SelfGait divide the off-diagonal row
sum by a hard-coded 10, right for CASIA-B's 11 views but wrong for OU-MVLP's 14 (should be 13).
The default divides by the number of other views actually evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from humanssl.errors import UserError


@dataclass(frozen=True)
class GaitProtocol:
    name: str
    gallery: tuple[str, ...]  # sequence types forming the gallery
    probes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # condition -> sequence types


CASIA_B = GaitProtocol("CASIA-B", ("nm-01", "nm-02", "nm-03", "nm-04"),
                       {"NM": ("nm-05", "nm-06"), "BG": ("bg-01", "bg-02"), "CL": ("cl-01", "cl-02")})
OU_MVLP = GaitProtocol("OU-MVLP", ("01",), {"00": ("00",)})
PROTOCOLS = {"casia-b": CASIA_B, "ou-mvlp": OU_MVLP}
DISTANCES = ("euclidean", "part_mean", "cosine")


@dataclass
class GaitResult:
    protocol: str
    conditions: list[str]
    views: list[str]
    acc: np.ndarray  # (conditions, probe view, gallery view, ranks) percent
    mAP: np.ndarray  # (conditions, probe view, gallery view) percent
    rank1_excl: dict[str, float]  # condition -> mean over probe views, identical views excluded
    rank1_excl_per_view: dict[str, np.ndarray]  # condition -> (views,)
    rank1_incl: dict[str, float]  # condition -> mean over all (probe, gallery) view pairs
    mAP_excl: dict[str, float]

    def as_dict(self) -> dict:
        out = {}
        for c in self.conditions:
            out[f"{c}_rank1"] = self.rank1_excl[c]
            out[f"{c}_rank1_incl"] = self.rank1_incl[c]
            out[f"{c}_mAP"] = self.mAP_excl[c]
        return out


def get_protocol(protocol: str | GaitProtocol) -> GaitProtocol:
    if isinstance(protocol, GaitProtocol):
        return protocol
    key = str(protocol).lower().replace("_", "-")
    if key not in PROTOCOLS:
        raise UserError(f"unknown gait protocol '{protocol}'; expected one of: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[key]


def sort_views(views) -> list[str]:
    """Numeric order when every view is a number ('0' < '18' < '180'), else string order."""
    views = list(views)
    try:
        return sorted(views, key=float)
    except ValueError:
        return sorted(views)


def gait_distances(probe: torch.Tensor, gallery: torch.Tensor, distance: str = "euclidean") -> torch.Tensor:
    """(q, ...) x (g, ...) -> (q, g); see the module docstring for the distances."""
    if distance == "part_mean":
        if probe.ndim != 3:
            raise UserError(f"distance 'part_mean' needs features shaped (n, parts, dim); got {tuple(probe.shape)}")
        x, y = probe.transpose(0, 1), gallery.transpose(0, 1)  # (p, q, d), (p, g, d)
        d2 = x.pow(2).sum(-1).unsqueeze(2) + y.pow(2).sum(-1).unsqueeze(1) - 2.0 * x.matmul(y.transpose(1, 2))
        return F.relu(d2).sqrt().mean(0)
    x, y = probe.flatten(1), gallery.flatten(1)
    if distance == "cosine":
        return 1.0 - F.normalize(x, dim=1) @ F.normalize(y, dim=1).T
    if distance != "euclidean":
        raise UserError(f"unknown gait distance '{distance}'; expected one of: {', '.join(DISTANCES)}")
    d2 = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0) - 2.0 * x @ y.T
    return F.relu(d2).sqrt()


def _cell_counts(dist: torch.Tensor, probe_y: torch.Tensor, gallery_y: torch.Tensor, num_rank: int):
    """For one block of probes: hits within rank 1..num_rank, the sum of APs and how many
    probes have a true match (AP is only defined for those)."""
    order = torch.sort(dist, dim=1, stable=True).indices
    match = gallery_y[order] == probe_y[:, None]  # (q, g) in ranked order
    k = min(num_rank, match.shape[1])
    hits_at = np.zeros(num_rank, dtype=np.int64)
    hits_at[:k] = (match[:, :k].cumsum(1) > 0).sum(0).cpu().numpy()
    hits_at[k:] = hits_at[k - 1]  # a gallery smaller than num_rank: deeper ranks see all of it
    num_rel = match.sum(1)
    ranks = torch.arange(1, match.shape[1] + 1, device=match.device, dtype=torch.float64)
    ap = (match.cumsum(1).double() / ranks * match).sum(1) / num_rel.clamp(min=1)
    return hits_at, float(ap.sum()), int((num_rel > 0).sum())


def cross_view_scores(feature, label, seq_type, view, protocol: str | GaitProtocol = CASIA_B,
                      distance: str = "euclidean", num_rank: int = 5, decimals: int | None = 2,
                      probe_chunk: int = 1024):
    """The official accuracy matrices plus mAP.

    feature (n, d) or (n, parts, d), array or tensor (distances run on its device); label,
    seq_type, view: length-n sequences. Returns (conditions, views, acc, mAP): acc is
    (conditions, views, views, num_rank) percent rounded to `decimals` (None: unrounded), mAP
    (conditions, views, views) percent; a cell with no probe or no gallery entry is NaN.
    Distances are computed per (probe view, gallery view) cell and `probe_chunk` probes at a
    time, so OU-MVLP-size sets never need a full probe x gallery matrix.
    """
    proto = get_protocol(protocol)
    feat = torch.as_tensor(feature)
    if not feat.is_floating_point():
        feat = feat.float()
    label, seq_type, view = (np.asarray(a).astype(str) for a in (label, seq_type, view))
    n = feat.shape[0]
    if feat.ndim not in (2, 3) or not (len(label) == len(seq_type) == len(view) == n):
        raise UserError(f"gait evaluation needs features (n, dim) or (n, parts, dim) and n labels, sequence "
                        f"types and views; got features {tuple(feat.shape)} and "
                        f"{len(label)}/{len(seq_type)}/{len(view)} labels")
    if not np.isin(seq_type, proto.gallery).any():
        raise UserError(f"no gallery sequence ({', '.join(proto.gallery)}) among the sequence types for {proto.name}")
    views = sort_views(set(view.tolist()))
    label_t = torch.as_tensor(np.unique(label, return_inverse=True)[1], device=feat.device)
    conditions = list(proto.probes)
    acc = np.full((len(conditions), len(views), len(views), num_rank), np.nan)
    mean_ap = np.full((len(conditions), len(views), len(views)), np.nan)

    def rows(mask: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.flatnonzero(mask), device=feat.device)

    gallery = [rows(np.isin(seq_type, proto.gallery) & (view == v)) for v in views]
    for c, cond in enumerate(conditions):
        for v1, pv in enumerate(views):
            probe = rows(np.isin(seq_type, proto.probes[cond]) & (view == pv))
            for v2, g in enumerate(gallery):
                if len(probe) == 0 or len(g) == 0:
                    continue
                hits, ap_sum, with_match = np.zeros(num_rank, dtype=np.int64), 0.0, 0
                for s in range(0, len(probe), probe_chunk):
                    p = probe[s:s + probe_chunk]
                    h, a, m = _cell_counts(gait_distances(feat[p], feat[g], distance), label_t[p], label_t[g], num_rank)
                    hits, ap_sum, with_match = hits + h, ap_sum + a, with_match + m
                acc[c, v1, v2] = hits * 100 / len(probe)  # percent, in the official order of operations
                mean_ap[c, v1, v2] = 100.0 * ap_sum / with_match if with_match else np.nan
    if decimals is not None:
        acc = np.round(acc, decimals)
    return conditions, views, acc, mean_ap


def exclude_identical_views(acc: np.ndarray, official_divisor: bool = False) -> np.ndarray:
    """(views, views) matrix -> (views,): per probe view, mean over the other gallery views.

    `official_divisor=True` reproduces GaitSet/SelfGait's off-diagonal row sum / 10 (their
    `de_diag`), which is right only for 11 views; otherwise the mean over the other views
    that have a score (NaN cells, from views missing in the data, are skipped).
    """
    acc = np.asarray(acc, dtype=np.float64)
    off = ~np.eye(acc.shape[0], acc.shape[1], dtype=bool)
    if official_divisor:
        return np.where(off, acc, 0.0).sum(1) / 10.0
    vals = np.where(off & np.isfinite(acc), acc, 0.0)
    count = (off & np.isfinite(acc)).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, vals.sum(1) / np.maximum(count, 1), np.nan)


def evaluate_gait(feature, label, seq_type, view, protocol: str | GaitProtocol = CASIA_B,
                  distance: str = "euclidean", official_divisor: bool = False, num_rank: int = 5,
                  probe_chunk: int = 1024) -> GaitResult:
    """Accuracy matrices, rank-1 excluding identical views (per view and mean), and mAP."""
    proto = get_protocol(protocol)
    conditions, views, acc, mean_ap = cross_view_scores(feature, label, seq_type, view, proto, distance,
                                                        num_rank, probe_chunk=probe_chunk)
    per_view = {c: exclude_identical_views(acc[i, :, :, 0], official_divisor) for i, c in enumerate(conditions)}
    return GaitResult(
        protocol=proto.name, conditions=conditions, views=views, acc=acc, mAP=mean_ap,
        rank1_excl={c: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for c, v in per_view.items()},
        rank1_excl_per_view=per_view,
        rank1_incl={c: _nanmean(acc[i, :, :, 0]) for i, c in enumerate(conditions)},
        mAP_excl={c: _nanmean(exclude_identical_views(mean_ap[i])) for i, c in enumerate(conditions)},
    )


def _nanmean(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")


def _colour(value: float, vmin: float = 0.0) -> tuple[int, int, int]:
    """vmin..100 -> a dark-blue .. teal .. yellow ramp (viridis-like); NaN grey."""
    if not np.isfinite(value):
        return (200, 200, 200)
    stops = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
    t = min(max((value - vmin) / max(100.0 - vmin, 1e-9), 0.0), 1.0) * (len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    f = t - i
    return tuple(int(round(a + (b - a) * f)) for a, b in zip(stops[i], stops[i + 1]))


def accuracy_heatmap(acc: np.ndarray, views: list[str], path: str | Path, title: str = "", cell: int = 44,
                     vmin: float = 0.0) -> Path:
    """Draw a (probe view x gallery view) accuracy matrix (percent) as a PNG heat-map.

    Rows are probe views, columns gallery views; each cell shows its value; colours span
    vmin..100 (raise vmin to see differences between strong models). Returns the path.
    """
    acc = np.asarray(acc, dtype=np.float64)
    if acc.ndim != 2 or acc.shape != (len(views), len(views)):
        raise UserError(f"accuracy heat-map needs a square (views x views) matrix matching {len(views)} views; "
                        f"got {acc.shape}")
    left, top, legend = 60, 50, 70
    width = left + cell * len(views) + legend
    height = top + cell * len(views) + 40
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((left, 8), title, fill="black")
    draw.text((left, 26), "gallery view", fill="black")
    draw.text((4, top - 14), "probe", fill="black")
    for j, v in enumerate(views):
        draw.text((left + j * cell + 6, top - 14), str(v), fill="black")
    for i, pv in enumerate(views):
        y = top + i * cell
        draw.text((8, y + cell // 2 - 6), str(pv), fill="black")
        for j in range(len(views)):
            x = left + j * cell
            value = acc[i, j]
            colour = _colour(value, vmin)
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=colour, outline="white")
            text = "-" if not np.isfinite(value) else f"{value:.0f}" if value >= 99.95 else f"{value:.1f}"
            ink = "black" if sum(colour) > 380 else "white"
            draw.text((x + 6, y + cell // 2 - 6), text, fill=ink)
    # Colour bar, 0 at the bottom, 100 at the top.
    bx = left + cell * len(views) + 16
    span = cell * len(views)
    for k in range(span):
        draw.line((bx, top + k, bx + 14, top + k), fill=_colour(100.0 - (100.0 - vmin) * k / max(span - 1, 1), vmin))
    draw.text((bx + 18, top - 4), "100", fill="black")
    draw.text((bx + 18, top + span - 10), f"{vmin:g}", fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def result_heatmaps(result: GaitResult, folder: str | Path, vmin: float = 0.0) -> list[Path]:
    """One rank-1 heat-map per probe condition: `<folder>/rank1_<condition>.png`."""
    return [accuracy_heatmap(result.acc[i, :, :, 0], result.views, Path(folder) / f"rank1_{cond}.png",
                             title=f"{result.protocol} {cond}: rank-1 {result.rank1_excl[cond]:.2f}% "
                                   f"(identical views excluded)", vmin=vmin)
            for i, cond in enumerate(result.conditions)]
