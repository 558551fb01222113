"""`humanssl sweep-lambda` on a mini Swin weights file and the built-in synthetic set."""

import json

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from humanssl.cli import main
from humanssl.data.synthetic import SyntheticLabeled, SyntheticPersons, labeled_split
from humanssl.errors import UserError
from humanssl.eval.reid import evaluate_features
from humanssl.evaluate import extract_features, load_backbone
from humanssl.models.backbones import create_backbone
from humanssl.sweep_lambda import check_lambdas, features_per_lambda, run_sweep_lambda
from tests.quiet import quiet

SIZE = ["--image-size", "96", "32"]



def test_cli_writes_table_json_and_plot(swin_mini_weights, tmp_path, capsys):
    out = tmp_path / "sweep.json"
    code = main(["sweep-lambda", "--checkpoint", str(swin_mini_weights), "--backbone", "swin_mini", *SIZE, "--identities", "4",
                 "--lambdas", "1.0", "0", "0.5", "-o", str(out), "--no-progress", "--num-workers", "0",
                 "--device", "cpu"])
    assert code == 0
    result = json.loads(out.read_text())
    assert [r["lambda"] for r in result["results"]] == [0.0, 0.5, 1.0]  # sorted
    assert all(0 <= r[k] <= 100 for r in result["results"] for k in ("mAP", "R1", "mINP"))
    assert result["num_query"] == 4 * 3 and result["num_gallery"] == 4 * 3 * 2
    assert result["best_lambda"] == max(result["results"], key=lambda r: r["mAP"])["lambda"]
    with Image.open(tmp_path / "sweep.png") as img:
        assert img.size == (640, 400)
    printed = capsys.readouterr().out
    assert "lambda" in printed and "best mAP" in printed


def test_swept_scores_are_those_of_a_backbone_built_at_that_lambda(swin_mini_weights, tmp_path):
    # oracle: the registry backbone constructed with semantic_weight=L, through `evaluate`'s extractor
    result = run_sweep_lambda(swin_mini_weights, backbone="swin_mini", size=(96, 32), identities=4, lambdas=[0.0, 1.0],
                              output=None, progress=False, device="cpu", echo=quiet)
    for row in result["results"]:
        loaded = load_backbone(swin_mini_weights, "swin_mini", size=(96, 32), options={"semantic_weight": row["lambda"]})
        world = SyntheticPersons(seed=0, image_size=(96, 32))
        query, gallery = labeled_split(world, 4, first_pid=100_001)
        tf = loaded.transform()
        qf = extract_features(loaded.model, SyntheticLabeled(query, world, tf), torch.device("cpu"))
        gf = extract_features(loaded.model, SyntheticLabeled(gallery, world, tf), torch.device("cpu"))
        expected = evaluate_features(qf, gf, [q.pid for q in query], [g.pid for g in gallery],
                                     [q.camid for q in query], [g.camid for g in gallery], metric="cosine")
        assert row["mAP"] == pytest.approx(100 * expected.mAP, abs=1e-4)
        assert row["R1"] == pytest.approx(100 * expected.rank1, abs=1e-4)


def test_features_depend_on_lambda_and_each_image_is_loaded_once(swin_mini_weights):
    loaded = load_backbone(swin_mini_weights, "swin_mini", size=(96, 32))
    world = SyntheticPersons(seed=0, image_size=(96, 32))
    items, _ = labeled_split(world, 2, first_pid=5)
    loads = []

    class Counting(SyntheticLabeled):
        def __getitem__(self, i):
            loads.append(i)
            return super().__getitem__(i)

    feats = features_per_lambda(loaded.model, Counting(items, world, loaded.transform()), [0.0, 1.0],
                                torch.device("cpu"), batch_size=4)
    assert sorted(loads) == list(range(len(items)))
    assert feats[0.0].shape == feats[1.0].shape == (len(items), 128)
    torch.testing.assert_close(feats[0.0].norm(dim=1), torch.ones(len(items)))
    assert not torch.allclose(feats[0.0], feats[1.0])


def test_user_mistakes(swin_mini_weights, tmp_path, capsys):
    with pytest.raises(UserError, match="lambda"):
        check_lambdas([0.2, 1.5])
    with pytest.raises(UserError, match=".json"):
        run_sweep_lambda(swin_mini_weights, backbone="swin_mini", output=tmp_path / "x.txt", echo=quiet)
    resnet = tmp_path / "resnet.safetensors"
    save_file(create_backbone("resnet_mini").state_dict(), str(resnet))
    with pytest.raises(UserError, match="SOLIDER Swin"):
        run_sweep_lambda(resnet, backbone="resnet_mini", output=None, device="cpu", echo=quiet)
    code = main(["sweep-lambda", "--checkpoint", str(swin_mini_weights), "--backbone", "swin_mini", "--dataset", "msmt17"])
    assert code == 2 and "--data" in capsys.readouterr().err
    code = main(["sweep-lambda", "--checkpoint", str(swin_mini_weights), "--backbone", "swin_mini",
                 "--data", str(tmp_path / "absent"), "-o", str(tmp_path / "s.json"), "--device", "cpu"])
    assert code == 2
