"""CLIP-ReID / SVLL-ReID with the RN50 (modified ResNet) image tower, at a tiny width."""

from types import SimpleNamespace

import pytest
import torch

from humanssl.errors import UserError

open_clip = pytest.importorskip("open_clip")

from humanssl.methods.svll_reid import STAGE2, SvllReid  # noqa: E402
from humanssl.methods.svll_reid_settings import Stage1Settings, Stage2Settings  # noqa: E402
from humanssl.models.clip_reid import build_clip_reid  # noqa: E402
from humanssl.models.clip_reid_features import ClipReidFeatures  # noqa: E402
from humanssl.models.clip_towers import clip_config, resize_pos_embed  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

# width 8: layer 3 has 128 channels, layer 4 256, attention pool 256 -> 24; 7x7 pool grid as OpenAI's
TINY = {"embed_dim": 24, "vision_cfg": {"layers": [1, 1, 1, 1], "width": 8, "head_width": 32},
        "text_cfg": {"width": 32, "heads": 2, "layers": 1}}
IDS = 5


def tiny_rn50_clip():
    torch.manual_seed(1)
    cfg = clip_config("RN50", TINY)
    return open_clip.model.CLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"], quick_gelu=True).eval()


def tiny_model(**kw):
    torch.manual_seed(0)
    args = dict(name="RN50", input_size=(64, 32), stride=16, random_init=True, clip_overrides=TINY)
    return build_clip_reid(IDS, **{**args, **kw})


def test_forward_shapes_train_and_test():
    model = tiny_model(ssl=True, ssl_mlp_dims=(24, 8))
    enc = model.image_encoder
    assert enc.grid == (4, 2) and enc.width == 256 and enc.proj_dim == 24  # last stride 1: input / 16
    assert enc.attnpool.positional_embedding.shape == (4 * 2 + 1, 256)
    x = torch.randn(6, 3, 64, 32)
    out = model.train()(x)
    assert [tuple(s.shape) for s in out.cls_scores] == [(6, IDS), (6, IDS)]
    assert [f.shape[1] for f in out.features] == [128, 256, 24]  # avg layer 3, avg layer 4, attention pool
    assert out.image_feature_proj is out.features[2]
    assert model.ssl_image_embedding(x).shape == (6, 8)
    assert model.text_features(torch.arange(IDS)).shape == (IDS, 24)
    model.eval()
    feat = model(x)
    assert feat.shape == (6, 256 + 24)
    torch.testing.assert_close(feat.norm(dim=1), torch.ones(6))
    extractor = ClipReidFeatures(model).eval()
    assert extractor.embed_dim == 280
    torch.testing.assert_close(extractor(x), feat)
    assert not hasattr(model, "cv_embed")


def test_openai_style_state_dict_loads_with_the_pool_grid_resized(tmp_path):
    clip = tiny_rn50_clip()
    path = tmp_path / "RN50-tiny.pt"
    torch.save({**clip.state_dict(), "input_resolution": torch.tensor(224)}, path)
    model = tiny_model(weights=path, random_init=False)
    enc_keys = list(model.image_encoder.state_dict())
    assert enc_keys == [k.removeprefix("visual.") for k in clip.state_dict() if k.startswith("visual.")]
    assert {"attnpool.positional_embedding", "layer4.0.downsample.0.weight", "bn3.running_mean"} <= set(enc_keys)
    pos = model.image_encoder.attnpool.positional_embedding.data
    torch.testing.assert_close(pos, resize_pos_embed(clip.visual.attnpool.positional_embedding.data, 4, 2))
    torch.testing.assert_close(model.image_encoder.layer4[0].conv3.weight, clip.visual.layer4[0].conv3.weight)
    torch.testing.assert_close(model.text_encoder.text_projection.data, clip.text_projection.data)


def test_last_stride_two_at_224_is_open_clips_image_tower(tmp_path):
    clip = tiny_rn50_clip()
    path = tmp_path / "RN50-tiny.pt"
    torch.save(clip.state_dict(), path)
    model = tiny_model(weights=path, random_init=False, input_size=(224, 224), last_stride=2).eval()
    assert model.image_encoder.grid == (7, 7)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model.image_encoder.pooled(x)[2], clip.visual(x), rtol=1e-4, atol=1e-5)


def test_user_errors(tmp_path):
    vit_cfg = clip_config("ViT-B-16", {"embed_dim": 24, "vision_cfg": {"width": 64, "layers": 1, "patch_size": 8,
                                                                       "head_width": 32, "image_size": 32},
                                       "text_cfg": {"width": 32, "heads": 2, "layers": 1}})
    vit = open_clip.model.CLIP(vit_cfg["embed_dim"], vit_cfg["vision_cfg"], vit_cfg["text_cfg"], quick_gelu=True)
    torch.save(vit.state_dict(), tmp_path / "ViT.pt")
    with pytest.raises(UserError, match="not an OpenAI RN50 checkpoint"):
        tiny_model(weights=tmp_path / "ViT.pt", random_init=False)
    with pytest.raises(UserError, match="ViT"):
        tiny_model(camera_num=3, sie_camera=True)
    with pytest.raises(UserError, match="model.stride=16"):
        tiny_model(stride=12)
    with pytest.raises(UserError, match="multiples of 32"):
        tiny_model(input_size=(60, 32))
    with pytest.raises(UserError, match="built for 4x2"):
        tiny_model()(torch.randn(2, 3, 96, 32))
    with pytest.raises(UserError, match="not supported"):
        tiny_model(name="RN101")


def test_one_stage2_training_step():
    model = tiny_model(ssl=True, ssl_mlp_dims=(24, 8))
    method = SvllReid(model, Stage1Settings(batch_size=4), Stage2Settings(), SimpleNamespace(dataset=range(12)),
                      pid_of_label=list(range(IDS)), seed=3)
    method.begin_stage(STAGE2)
    {s.name: s for s in method.stages()}[STAGE2].prepare(None)
    g = torch.Generator().manual_seed(0)
    n = 6
    batch = {"image": torch.randn(n, 3, 64, 32, generator=g), "pid": torch.arange(3).repeat_interleave(2),
             "camid": torch.zeros(n, dtype=torch.long), "viewid": torch.zeros(n, dtype=torch.long),
             "views": [torch.randn(n, 3, 64, 32, generator=g), torch.randn(n, 3, 64, 32, generator=g)]}
    opt = torch.optim.Adam([{"params": grp["params"]} for grp in method.param_groups()], lr=1e-3)
    enc = model.image_encoder  # (open_clip zero-inits each bn3 weight, so look at the stem and the pool)
    before = [p.detach().clone() for p in (enc.conv1.weight, enc.layer4[0].bn3.weight, enc.attnpool.c_proj.weight)]
    losses = method.training_step(batch, step=0)
    assert set(losses) == {"id", "triplet", "i2t", "visual_ssl"}
    loss = sum(losses.values())
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    after = (enc.conv1.weight, enc.layer4[0].bn3.weight, enc.attnpool.c_proj.weight)
    assert not any(torch.equal(b, a) for b, a in zip(before, after))
    assert model.prompt_learner.cls_ctx.grad is None  # prompts are frozen in stage 2
