"""`humanssl parts`: part maps of a mini Swin drawn over synthetic people."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from humanssl.cli import main
from humanssl.data.synthetic import SyntheticPersons
from humanssl.errors import UserError
from humanssl.evaluate import load_backbone
from humanssl.methods.part_labels import part_labels
from humanssl.models.backbones import create_backbone
from humanssl.parts import ALPHA, PART_COLOURS, compute_parts, overlay, run_parts
from tests.quiet import quiet


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("people")
    world = SyntheticPersons(seed=0, image_size=(96, 32))
    for pid in (1, 2, 3):
        world.render(pid, 1, 0).save(root / f"p{pid}.png")
    return root



def test_overlay_tints_parts_and_leaves_background_clear():
    img = Image.new("RGB", (4, 6), (100, 100, 100))
    labels = torch.tensor([[0, 1], [2, 0], [3, 1]])  # 3x2 tokens -> 2x2-pixel blocks
    out = torch.from_numpy(np.array(overlay(img, labels))).float()  # (6, 4, 3)
    assert out[0, 0].tolist() == [100, 100, 100] and out[3, 3].tolist() == [100, 100, 100]
    for (r, c), part in (((0, 2), 1), ((2, 0), 2), ((4, 0), 3), ((5, 3), 1)):
        expected = [round(100 * (1 - ALPHA) + ch * ALPHA) for ch in PART_COLOURS[part - 1]]
        assert out[r, c].tolist() == expected


def test_parts_are_the_training_part_labels_of_the_lambda_one_map(swin_mini_weights, folder):
    loaded = load_backbone(swin_mini_weights, "swin_mini", size=(96, 32))
    tf = loaded.transform()
    images = torch.stack([tf(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))])
    labels, keep = compute_parts(loaded.model, images, 3, seed=5)
    with torch.no_grad():
        last = loaded.model.forward_stages(images, torch.ones(3))[1][-1]
    ref_labels, ref_keep = part_labels(last, 3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(labels, ref_labels) and torch.equal(keep, ref_keep)
    assert labels.shape == (3, 3, 1) and int(labels.max()) <= 3


def test_cli_draws_a_grid(swin_mini_weights, folder, tmp_path, capsys):
    out = tmp_path / "grid" / "parts.png"
    code = main(["parts", "--checkpoint", str(swin_mini_weights), "--backbone", "swin_mini", "--image-size", "96", "32",
                 str(folder), "-o", str(out), "--max-images", "2", "--columns", "4", "--device", "cpu"])
    assert code == 0
    with Image.open(out) as grid:
        w, h = grid.size
    # two cells side by side (each: image + overlay at 192x64), one row, a legend above
    assert w == 2 * (2 * 64 + 12) and h == 22 + 192 + 14 + 8
    assert "part maps of 2 images" in capsys.readouterr().out


def test_user_mistakes(swin_mini_weights, folder, tmp_path):
    with pytest.raises(UserError, match=".png"):
        run_parts(swin_mini_weights, [str(folder)], tmp_path / "x.jpg", backbone="swin_mini", echo=quiet)
    with pytest.raises(UserError, match="does not exist"):
        run_parts(swin_mini_weights, [str(tmp_path / "absent.png")], tmp_path / "x.png", backbone="swin_mini", echo=quiet)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(UserError, match="bad.jpg"):
        run_parts(swin_mini_weights, [str(bad)], tmp_path / "x.png", backbone="swin_mini", size=(96, 32), echo=quiet)
    with pytest.raises(UserError, match="num-parts"):
        run_parts(swin_mini_weights, [str(folder)], tmp_path / "x.png", num_parts=0, backbone="swin_mini", echo=quiet)
    resnet = tmp_path / "resnet.safetensors"
    save_file(create_backbone("resnet_mini").state_dict(), str(resnet))
    with pytest.raises(UserError, match="SOLIDER Swin"):
        run_parts(resnet, [str(folder)], tmp_path / "x.png", backbone="resnet_mini", echo=quiet)
