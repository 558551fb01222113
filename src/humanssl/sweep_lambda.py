"""`humanssl sweep-lambda`: kNN re-id of a SOLIDER Swin at several semantic weights.

SOLIDER's controller trades appearance (lambda = 0) for semantics (lambda = 1); the paper picks
0.2 for re-id. This sweep says which lambda suits a given checkpoint on a given labelled set:
for every lambda, cosine retrieval of the query against the gallery (the Market-1501 protocol,
`humanssl.evaluate.score_split`), mAP / R1 / R5 / mINP in percent.

Each image is decoded and transformed once: every batch goes through the backbone once per
lambda, so the sweep costs one pass over the data plus the extra forwards.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch
from PIL import Image, ImageDraw
from torch.utils.data import DataLoader
from tqdm import tqdm

from humanssl.data.collate import collate_samples
from humanssl.data.reid import ReidImages, VehicleIDDataset, load_reid_dataset
from humanssl.data.synthetic import SyntheticLabeled, SyntheticPersons, labeled_split
from humanssl.errors import UserError
from humanssl.evaluate import load_backbone, pick_device, score_split
from humanssl.results_file import write_results

DEFAULT_LAMBDAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
COLUMNS = ("mAP", "R1", "R5", "mINP")
LINE_COLOURS = {"mAP": (31, 119, 180), "R1": (255, 127, 14)}


def check_lambdas(lambdas) -> list[float]:
    """Sorted, distinct lambdas, each in [0, 1]."""
    values = [float(v) for v in (lambdas if lambdas is not None else DEFAULT_LAMBDAS)]
    if not values:
        raise UserError("--lambdas: give at least one value in [0, 1]")
    bad = [v for v in values if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
    if bad:
        raise UserError(f"--lambdas {' '.join(f'{v:g}' for v in bad)}: SOLIDER's semantic weight lies in [0, 1]")
    return sorted(set(values))


def controllable(model) -> None:
    if not getattr(model, "has_controller", False) or not hasattr(model, "forward_stages"):
        raise UserError(
            f"sweep-lambda needs a SOLIDER Swin (swin_mini/tiny/small/base with the semantic controller); "
            f"the checkpoint holds a {type(model).__name__} without one")


@torch.no_grad()
def features_per_lambda(model, dataset, lambdas: list[float], device, batch_size: int = 128, flip: bool = False,
                        num_workers: int = 0, progress: bool = False, desc: str = "features") -> dict[float, torch.Tensor]:
    """{lambda: (N, D) L2-normalised float32 features on the CPU}, each image loaded once."""
    if len(dataset) == 0:
        raise UserError(f"no images to extract {desc} from")
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_samples)
    was_training = model.training
    model.eval()
    out: dict[float, list] = {lam: [] for lam in lambdas}
    try:
        for batch in tqdm(loader, desc=desc, disable=not progress, dynamic_ncols=True):
            images = batch["image"].to(device)
            for lam in lambdas:
                f = model.forward_stages(images, lam)[0].float()
                if flip:
                    f = f + model.forward_stages(images.flip(3), lam)[0].float()
                out[lam].append(torch.nn.functional.normalize(f, dim=1).cpu())
    finally:
        model.train(was_training)
    return {lam: torch.cat(chunks) for lam, chunks in out.items()}


def synthetic_sets(transform, size, seed: int, identities: int, first_pid: int):
    """The built-in labelled split: held-out synthetic people (ids from `first_pid` on, above the
    demo's pretraining ids), one query image per (id, camera), two gallery images per (id, camera)."""
    if identities < 2:
        raise UserError(f"--identities {identities}: need at least 2 identities for retrieval")
    world = SyntheticPersons(seed=seed, image_size=tuple(size))
    query, gallery = labeled_split(world, identities, first_pid=first_pid)
    return SyntheticLabeled(query, world, transform), SyntheticLabeled(gallery, world, transform), query, gallery


def table(rows: list[dict]) -> str:
    lines = [f"{'lambda':>7}" + "".join(f"{c:>8}" for c in COLUMNS)]
    best = max(rows, key=lambda r: r["mAP"])["lambda"]
    for r in rows:
        mark = "  <- best mAP" if r["lambda"] == best and len(rows) > 1 else ""
        lines.append(f"{r['lambda']:>7.2f}" + "".join(f"{r[c]:8.1f}" for c in COLUMNS) + mark)
    return "\n".join(lines)


def draw_sweep(path, rows: list[dict], title: str = "") -> None:
    """mAP and R1 (%) against lambda: one PNG, Pillow only."""
    img = Image.new("RGB", (640, 400), "white")
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = 70, 40, 600, 340
    draw.text((20, 10), title[:100], fill="black")
    draw.rectangle((x0, y0, x1, y1), outline="black")
    xs = [r["lambda"] for r in rows]
    values = [r[k] for r in rows for k in LINE_COLOURS]
    lo, hi = math.floor(min(values) / 10) * 10, math.ceil(max(values) / 10) * 10
    if hi <= lo:
        hi = lo + 10
    sx = lambda x: x0 + x * (x1 - x0)  # noqa: E731  lambda axis is [0, 1]
    sy = lambda y: y1 - (y - lo) / (hi - lo) * (y1 - y0)  # noqa: E731
    for tick in range(5):
        v = lo + (hi - lo) * tick / 4
        draw.line((x0 - 4, sy(v), x0, sy(v)), fill="black")
        draw.text((x0 - 40, sy(v) - 6), f"{v:.0f}", fill="black")
    for tick in range(6):
        x = tick / 5
        draw.line((sx(x), y1, sx(x), y1 + 4), fill="black")
        draw.text((sx(x) - 8, y1 + 8), f"{x:.1f}", fill="black")
    draw.text(((x0 + x1) // 2 - 40, y1 + 26), "semantic weight lambda", fill="black")
    draw.text((10, y0 - 14), "%", fill="black")
    for i, (key, colour) in enumerate(LINE_COLOURS.items()):
        points = [(sx(x), sy(r[key])) for x, r in zip(xs, rows)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for px, py in points:
            draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=colour)
        draw.rectangle((x1 - 90, y0 + 10 + 16 * i, x1 - 78, y0 + 20 + 16 * i), fill=colour)
        draw.text((x1 - 72, y0 + 8 + 16 * i), key, fill="black")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def run_sweep_lambda(ckpt, *, data_root=None, dataset: str = "market1501", lambdas=None, output="sweep_lambda.json",
                     plot=None, backbone: str | None = None, part: str = "teacher", options: dict | None = None,
                     dataset_options: dict | None = None, size=None, mean=None, std=None, flip=False,
                     identities: int = 50, synthetic_seed: int = 0, first_pid: int = 100_001, batch_size=128,
                     num_workers=0, device="auto", progress=True, echo: Callable = print) -> dict:
    lambdas = check_lambdas(lambdas)
    output = Path(output) if output else None
    if output is not None and output.suffix != ".json":
        raise UserError(f"-o {output}: expected a .json file name")
    plot = Path(plot) if plot else (output.with_suffix(".png") if output is not None else None)
    if plot is not None and plot.suffix.lower() != ".png":
        raise UserError(f"--plot {plot}: expected a .png file name")
    loaded = load_backbone(ckpt, backbone, part=part, options=options, size=size, mean=mean, std=std)
    controllable(loaded.model)
    dev = pick_device(device)
    model = loaded.model.to(dev)
    transform = loaded.transform()
    if data_root is None:
        q_set, g_set, query, gallery = synthetic_sets(transform, loaded.size, synthetic_seed, identities, first_pid)
        set_name, use_cameras = f"synthetic (seed {synthetic_seed}, {identities} identities from pid {first_pid})", True
    else:
        ds = load_reid_dataset(dataset, data_root, **(dataset_options or {}))
        if isinstance(ds, VehicleIDDataset):
            query, gallery = ds.trials(1)[0]  # its first seeded draw, no camera filter (as evaluate)
        else:
            query, gallery = ds.query, ds.gallery
        q_set, g_set, set_name = ReidImages(query, transform), ReidImages(gallery, transform), ds.name
        use_cameras = not isinstance(ds, VehicleIDDataset)
    echo(f"backbone {loaded.name} from {loaded.source}; input {loaded.size[0]}x{loaded.size[1]}; "
         f"{set_name}: {len(query)} query, {len(gallery)} gallery images; lambdas {', '.join(f'{v:g}' for v in lambdas)}")
    kw = dict(device=dev, batch_size=batch_size, flip=flip, num_workers=num_workers, progress=progress)
    qf = features_per_lambda(model, q_set, lambdas, desc="query", **kw)
    gf = features_per_lambda(model, g_set, lambdas, desc="gallery", **kw)
    rows = []
    for lam in lambdas:
        score = score_split(qf[lam], gf[lam], query, gallery, use_cameras=use_cameras, echo=echo)["plain"]
        rows.append({"lambda": lam, **{k: score[k] for k in ("mAP", "R1", "R5", "R10", "mINP") if k in score}})
    echo(table(rows))
    best = max(rows, key=lambda r: r["mAP"])
    result = {"checkpoint": str(ckpt), "loaded_from": loaded.source, "backbone": loaded.name, "dataset": set_name,
              "root": None if data_root is None else str(data_root), "flip": flip,
              "num_query": len(query), "num_gallery": len(gallery), "results": rows, "best_lambda": best["lambda"]}
    if output is not None:
        write_results(output, result, echo)
    if plot is not None:
        draw_sweep(plot, rows, f"{loaded.name} on {set_name}")
        result["plot"] = str(plot)
        echo(f"plot: {plot}")
    return result
