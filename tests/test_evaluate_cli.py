"""`humanssl evaluate reid`, `humanssl extract` and rank pictures on a tiny fine-tuned run."""

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from humanssl.cli import main
from humanssl.config import load_config
from humanssl.data.reid import ReidImages, ReidItem, load_reid_dataset
from humanssl.engine import checkpoint
from humanssl.eval.rank_pictures import GREEN, GREY, RED, save_rank_pictures
from humanssl.eval.reid import evaluate_features
from humanssl.evaluate import extract_features, load_backbone, run_evaluate_reid, score_split
from humanssl.finetune import run_finetune
from humanssl.finetune_config import FinetuneConfig
from humanssl.models.backbones import create_backbone
from tests.test_finetune import TINY

METRICS = {"mAP", "R1", "R5", "R10", "mINP"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = load_config(FinetuneConfig, None, TINY + [f"train.output_dir={out}", "train.run_name=r",
                                                        "train.max_steps=2", "eval.baselines=false"])
        run_finetune(cfg, echo=lambda *a: None)
    finally:
        torch.set_num_threads(before)
    return out / "r"


def test_evaluate_writes_json_tables_and_rank_pictures(run, tmp_path, capsys):
    data, out = run / "synthetic_market1501", tmp_path / "res.json"
    code = main(["evaluate", "reid", "--checkpoint", str(run), "--data", str(data), "--dataset", "market1501",
                 "--rerank", "--flip", "--save-ranks", "3", "-o", str(out), "--no-progress", "--num-workers", "0"])
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result["plain"]) >= METRICS and set(result["rerank"]) >= METRICS
    assert result["backbone"] == "resnet_mini" and result["flip"] is True
    assert all(0 <= result[m][k] <= 100 for m in ("plain", "rerank") for k in METRICS)
    printed = capsys.readouterr().out
    assert "mAP" in printed and "+ re-ranking" in printed
    pictures = sorted((tmp_path / "res_ranks").glob("*.png"))
    assert len(pictures) == 3


def test_evaluated_numbers_are_those_of_the_features(run):
    # the command's mAP equals the metric computed here from the same backbone's features
    loaded = load_backbone(run)
    ds = load_reid_dataset("market1501", run / "synthetic_market1501")
    qf = extract_features(loaded.model, ReidImages(ds.query, loaded.transform()), torch.device("cpu"))
    gf = extract_features(loaded.model, ReidImages(ds.gallery, loaded.transform()), torch.device("cpu"))
    assert torch.allclose(qf.norm(dim=1), torch.ones(len(qf)))
    expected = evaluate_features(qf, gf, [q.pid for q in ds.query], [g.pid for g in ds.gallery],
                                 [q.camid for q in ds.query], [g.camid for g in ds.gallery]).mAP
    got = run_evaluate_reid(run, run / "synthetic_market1501", progress=False, num_workers=0, echo=lambda *a: None)
    assert got["plain"]["mAP"] == pytest.approx(100 * expected, abs=1e-6)


def test_extract_writes_features_and_paths(run, tmp_path):
    images = run / "synthetic_market1501" / "query"
    n = len(list(images.glob("*.jpg")))
    out = tmp_path / "f" / "feats.npy"
    assert main(["extract", "--checkpoint", str(checkpoint.resolve(run)), str(images), "-o", str(out),
                 "--no-progress", "--num-workers", "0"]) == 0
    feats = np.load(out)
    assert feats.shape == (n, 256)  # resnet_mini's width
    assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    paths = (tmp_path / "f" / "feats.paths.txt").read_text().splitlines()
    assert len(paths) == n and paths == sorted(paths)


def test_weights_file_needs_a_backbone_name(run, tmp_path, capsys):
    state = load_backbone(run).model.state_dict()
    save_file(state, str(tmp_path / "b.safetensors"))
    img = next((run / "synthetic_market1501" / "query").glob("*.jpg"))
    assert main(["extract", "--checkpoint", str(tmp_path / "b.safetensors"), str(img), "-o", str(tmp_path / "x.npy")]) == 2
    assert "--backbone" in capsys.readouterr().err
    assert main(["extract", "--checkpoint", str(tmp_path / "b.safetensors"), "--backbone", "resnet_mini",
                 "--image-size", "64", "32", str(img), "-o", str(tmp_path / "x.npy"), "--no-progress"]) == 0
    assert np.load(tmp_path / "x.npy").shape == (1, 256)


def test_pretraining_checkpoint_loads_its_teacher(tmp_path):
    torch.manual_seed(0)
    teacher = create_backbone("resnet_mini").state_dict()
    tensors = {**{f"teacher.backbone.{k}": v for k, v in teacher.items()},
               **{f"student.backbone.{k}": torch.zeros_like(v) for k, v in teacher.items()}}
    cfg = "model:\n  backbone: resnet_mini\ncrops:\n  global_size: [64, 32]\n"
    checkpoint.save_checkpoint(tmp_path / "pre" / "checkpoints", 5, tensors, {}, cfg)
    loaded = load_backbone(tmp_path / "pre")
    assert loaded.size == (64, 32)
    for k, v in teacher.items():
        assert torch.equal(loaded.model.state_dict()[k], v)


def test_clear_errors(run, tmp_path, capsys):
    assert main(["evaluate", "reid", "--checkpoint", str(tmp_path / "nope"), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "checkpoint not found" in err and "nope" in err and err.count("\n") == 1
    assert main(["evaluate", "reid", "--checkpoint", str(run), "--data", str(tmp_path / "no-market")]) == 2
    err = capsys.readouterr().err
    assert "Market-1501" in err and "no-market" in err
    assert main(["extract", "--checkpoint", str(run), str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "a.npy")]) == 2
    assert "missing.jpg" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["extract", "--checkpoint", str(tmp_path / "empty"), str(tmp_path), "-o", str(tmp_path / "a.npy")]) == 2
    assert "no checkpoint in" in capsys.readouterr().err


def write_vehicleid(root, vehicles=6, per_vehicle=3):
    base = root / "VehicleID_V1.0"
    (base / "image").mkdir(parents=True)
    (base / "train_test_split").mkdir()
    lines = {"train": [], "test": []}
    g = np.random.default_rng(0)
    for v in range(1, 2 * vehicles + 1):
        colour = g.integers(0, 256, 3)
        for j in range(per_vehicle):
            name = f"{v:04d}{j:03d}"
            pixels = np.clip(colour + g.normal(0, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(base / "image" / f"{name}.jpg")
            lines["train" if v <= vehicles else "test"].append(f"{name} {v}")
    (base / "train_test_split" / "train_list.txt").write_text("\n".join(lines["train"]) + "\n")
    (base / "train_test_split" / "test_list_800.txt").write_text("\n".join(lines["test"]) + "\n")


def test_vehicleid_is_the_mean_of_ten_draws(tmp_path):
    write_vehicleid(tmp_path / "v")
    torch.manual_seed(0)
    save_file(create_backbone("resnet_mini").state_dict(), str(tmp_path / "b.safetensors"))
    out = tmp_path / "v.json"
    assert main(["evaluate", "reid", "--checkpoint", str(tmp_path / "b.safetensors"), "--backbone", "resnet_mini",
                 "--image-size", "32", "16", "--data", str(tmp_path / "v"), "--dataset", "vehicleid",
                 "--option", "check_counts=false", "-o", str(out), "--no-progress", "--num-workers", "0"]) == 0
    result = json.loads(out.read_text())
    assert result["trials"] == 10
    loaded = load_backbone(tmp_path / "b.safetensors", "resnet_mini", size=(32, 16))
    ds = load_reid_dataset("vehicleid", tmp_path / "v", check_counts=False)
    feats = extract_features(loaded.model, ReidImages(ds.test_items, loaded.transform()), torch.device("cpu"))
    row = {it.path: i for i, it in enumerate(ds.test_items)}
    maps = [evaluate_features(feats[[row[q.path] for q in qs]], feats[[row[g.path] for g in gs]],
                              [q.pid for q in qs], [g.pid for g in gs], use_cameras=False).mAP
            for qs, gs in ds.trials(10)]
    assert result["plain"]["mAP"] == pytest.approx(100 * np.mean(maps), abs=1e-6)
    assert len({round(m, 6) for m in maps}) > 1  # the draws differ, so averaging them matters


def test_rank_picture_borders(tmp_path):
    def item(name, value, pid, cam):
        path = tmp_path / f"{name}.png"
        Image.new("RGB", (8, 16), (value, value, value)).save(path)
        return ReidItem(str(path), pid, cam)

    query = [item("q", 10, 1, 0)]
    gallery = [item("same_cam", 20, 1, 0), item("wrong", 30, 2, 1), item("right", 40, 1, 1), item("junk", 50, -1, 1)]
    dist = torch.tensor([[0.0, 0.1, 0.2, 0.05]])
    (path,) = save_rank_pictures(tmp_path / "out", dist, query, gallery, tile_size=(16, 8), border=2)
    img = Image.open(path).convert("RGB")
    tw = 8 + 2 * 2
    # tiles: query, then "wrong" (rank 1), then "right"; same-camera match and junk are left out
    assert img.size[0] == 3 * tw + 2 * 2 + 3 * 2
    assert img.getpixel((0, 2)) == GREY
    first = tw + 3 * 2 + 2
    assert img.getpixel((first, 2)) == RED and img.getpixel((first + 4, 6)) == (30, 30, 30)
    second = first + tw + 2
    assert img.getpixel((second, 2)) == GREEN and img.getpixel((second + 4, 6)) == (40, 40, 40)


def test_missing_rerank_module_is_skipped_with_a_message(monkeypatch):
    g = torch.Generator().manual_seed(0)
    qf, gf = torch.randn(4, 8, generator=g), torch.randn(6, 8, generator=g)
    query = [ReidItem(f"q{i}", i % 2, 0) for i in range(4)]
    gallery = [ReidItem(f"g{i}", i % 3, 1) for i in range(6)]
    with_rerank = score_split(qf, gf, query, gallery, rerank=True)
    assert set(with_rerank) == {"plain", "rerank"}
    monkeypatch.setitem(sys.modules, "humanssl.eval.rerank", None)
    messages = []
    without = score_split(qf, gf, query, gallery, rerank=True, echo=messages.append)
    assert set(without) == {"plain"} and without["plain"] == with_rerank["plain"]
    assert messages == ["re-ranking skipped: humanssl.eval.rerank is not available in this installation"]
