import json

import pytest
import torch
import torch.nn.functional as F

from humanssl.errors import UserError
from tests.fixtures import conformance, needs_fixture

open_clip = pytest.importorskip("open_clip")

from humanssl.models.clip_reid import build_clip_reid  # noqa: E402
from humanssl.models.clip_towers import (ReidVisionTransformer, TextEncoder, import_open_clip,  # noqa: E402
                                         resize_pos_embed)
from humanssl.models.prompt_learner import prompt_template, tokenize  # noqa: E402

KEYS = {"clipreid": "clipreid_vit_b16_state_dict_keys.json", "svllreid": "svllreid_vit_b16_state_dict_keys.json"}
ENTRIES = [("clipreid", "clipreid_vit_stride16_nosie"), ("clipreid", "clipreid_vit_sie_olp_stride12"),
           ("svllreid", "svllreid_person_vit_stride12_sie_cam"), ("svllreid", "svllreid_person_vit_stride16_nosie")]
# tiny towers: patch 8, 2 layers, widths 64 (vision) / 32 (text)
TINY = {"embed_dim": 24, "vision_cfg": {"width": 64, "layers": 2, "patch_size": 8, "head_width": 32,
                                        "image_size": 32},
        "text_cfg": {"width": 32, "heads": 2, "layers": 2}}


def fixture_entry(family, name):
    return json.loads(conformance("svll_reid", KEYS[family]).read_text())[name]


@needs_fixture("svll_reid", "svllreid_vit_b16_state_dict_keys.json")
@needs_fixture("svll_reid", "clipreid_vit_b16_state_dict_keys.json")
@pytest.mark.parametrize("family,name", ENTRIES)
def test_state_dict_matches_official_key_list(family, name):
    entry = fixture_entry(family, name)
    overrides = dict(zip(entry["overrides"][::2], entry["overrides"][1::2]))
    stride = int(json.loads(overrides.get("MODEL.STRIDE_SIZE", "[16, 16]"))[0]) if family == "clipreid" \
        else entry["MODEL.STRIDE_SIZE"][0]
    if family == "svllreid":
        sie = overrides.get("MODEL.SIE_CAMERA", "True") == "True"  # the shipped SVLL config has SIE on
    else:
        sie = overrides.get("MODEL.SIE_CAMERA", "False") == "True"
    with torch.device("meta"):
        model = build_clip_reid(entry["num_classes"], stride=stride, random_init=True,
                                camera_num=entry["camera_num"], view_num=entry["view_num"],
                                sie_camera=sie, ssl=family == "svllreid")
    assert model.image_encoder.grid == (entry["h_resolution"], entry["w_resolution"])
    got = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in model.state_dict().items()]
    assert got == entry["state_dict"]
    assert sum(v.numel() for v in model.state_dict().values()) == entry["num_params"]
    if family == "svllreid":
        tokens = model.prompt_learner.tokenized_prompts[0]
        ids = entry["tokenized_prompt_ctx_init"]
        assert tokens[:len(ids)].tolist() == ids and not tokens[len(ids):].any()
        assert model.prompt_learner.eot_index == entry["eot_index"]


def test_vehicle_prompt_differs_only_in_the_noun():
    person = tokenize(prompt_template("market1501"))[0]
    vehicle = tokenize(prompt_template("VeRi"))[0]
    assert prompt_template("VehicleID").endswith("vehicle.")
    assert (person != vehicle).nonzero().flatten().tolist() == [9]


def tiny_clip():
    torch.manual_seed(0)
    return open_clip.model.CLIP(TINY["embed_dim"], TINY["vision_cfg"], {**open_clip.get_model_config("ViT-B-16")
                                ["text_cfg"], **TINY["text_cfg"]}, quick_gelu=True).eval()


def test_towers_compute_what_open_clip_computes():
    clip = tiny_clip()
    tokens = open_clip.tokenize(["a photo of a person.", "a red car"])
    with torch.no_grad():
        expected_text = clip.encode_text(tokens)
        expected_image = clip.encode_image(torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
        text = TextEncoder(clip)(clip.token_embedding(tokens), tokens)
        vision = ReidVisionTransformer(clip.visual, 4, 4, stride=8)
        vision.positional_embedding.copy_(clip.visual.positional_embedding)
        image = vision(torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)))[2][:, 0]
    torch.testing.assert_close(text, expected_text, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(image, expected_image, rtol=1e-5, atol=1e-5)


def tiny_model(**kw):
    torch.manual_seed(0)
    args = dict(input_size=(32, 16), stride=6, random_init=True, clip_overrides=TINY, camera_num=3,
                sie_camera=True, ssl=True, ssl_mlp_dims=(16, 8))
    return build_clip_reid(5, **{**args, **kw})


def test_training_outputs_and_test_feature():
    model = tiny_model()
    assert model.image_encoder.grid == (5, 2) and model.image_encoder.positional_embedding.shape == (11, 64)
    x, cams = torch.randn(4, 3, 32, 16), torch.tensor([0, 1, 2, 0])
    out = model(x, cam_label=cams)
    assert [tuple(s.shape) for s in out.cls_scores] == [(4, 5), (4, 5)]
    assert [tuple(f.shape) for f in out.features] == [(4, 64), (4, 64), (4, 24)]
    assert torch.equal(out.image_feature_proj, out.features[2])
    assert model.bottleneck.bias.requires_grad is False and model.classifier.bias is None
    assert tuple(model.ssl_image_embedding(x).shape) == (4, 8)
    model.eval()
    with torch.no_grad():
        test = model(x, cam_label=cams)
        other_cams = model(x, cam_label=(cams + 1) % 3)
        _, f, f_proj = model.image_encoder(x, model.side_information(cams, None))
    assert tuple(test.shape) == (4, 88)
    torch.testing.assert_close(test, F.normalize(torch.cat([f[:, 0], f_proj[:, 0]], 1), dim=1))
    assert not torch.allclose(test, other_cams)  # the camera embedding reaches the feature


def test_camera_times_view_side_information_index():
    model = tiny_model(camera_num=3, view_num=2, sie_view=True, ssl=False)
    assert model.cv_embed.shape == (6, 64) and not hasattr(model, "image_mlp")
    cam, view = torch.tensor([2, 1]), torch.tensor([1, 0])
    torch.testing.assert_close(model.side_information(cam, view), model.sie_coe * model.cv_embed[[5, 2]])
    with pytest.raises(UserError, match="camera x view"):
        model.side_information(cam, None)


def test_text_features_use_only_their_identity_context():
    model = tiny_model()
    labels = torch.tensor([3, 1])
    prompts = model.prompt_learner(labels)
    assert tuple(prompts.shape) == (2, 77, 32)
    torch.testing.assert_close(prompts[:, 5:9], model.prompt_learner.cls_ctx[labels].detach())
    feats = model.text_features(labels)
    assert tuple(feats.shape) == (2, 24)
    feats[0].sum().backward()
    touched = model.prompt_learner.cls_ctx.grad.abs().sum((1, 2)).nonzero().flatten().tolist()
    assert touched == [3]
    assert not model.prompt_learner.token_prefix.requires_grad


def test_openai_weights_are_read_from_a_named_file_and_the_grid_resized(tmp_path):
    clip = tiny_clip()  # image 32 / patch 8: a 4x4 grid, as OpenAI's files are square
    path = tmp_path / "ViT-tiny.pt"
    torch.save({**clip.state_dict(), "input_resolution": torch.tensor(32)}, path)
    model = tiny_model(weights=path, random_init=False, stride=8)
    enc = model.image_encoder
    assert enc.grid == (4, 2)
    torch.testing.assert_close(enc.positional_embedding.data,
                               resize_pos_embed(clip.visual.positional_embedding.data, 4, 2))
    torch.testing.assert_close(enc.conv1.weight.data, clip.visual.conv1.weight.data)
    torch.testing.assert_close(model.text_encoder.text_projection.data, clip.text_projection.data)
    tokens = model.prompt_learner.tokenized_prompts
    torch.testing.assert_close(model.prompt_learner.token_prefix, clip.token_embedding(tokens)[:, :5].detach())


def test_resize_pos_embed_is_bilinear_on_the_grid_only():
    pos = torch.arange(10, dtype=torch.float32)[:, None].repeat(1, 2)  # cls + 3x3 grid
    out = resize_pos_embed(pos, 3, 3)
    torch.testing.assert_close(out, pos)
    out = resize_pos_embed(pos, 6, 2)
    assert out.shape == (13, 2) and out[0, 0] == 0


def test_user_errors(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="clip.weights=PATH"):
        build_clip_reid(5)
    with pytest.raises(UserError, match="is not a file"):
        tiny_model(weights=tmp_path / "missing.pt", random_init=False)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="junk.pt"):
        tiny_model(weights=tmp_path / "junk.pt", random_init=False)
    with pytest.raises(UserError, match="stride"):
        tiny_model(stride=9)
    model = tiny_model()
    with pytest.raises(UserError, match="grid"):
        model(torch.randn(1, 3, 64, 16), cam_label=torch.tensor([0]))
    monkeypatch.setitem(__import__("sys").modules, "open_clip", None)
    with pytest.raises(UserError, match=r"pip install 'humanssl\[clip\]'"):
        import_open_clip()
