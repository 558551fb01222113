"""SVLL-ReID method: each stage's loss terms, what each stage trains, the SSL switches, the
official stage losses (fixtures) and schedules."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from humanssl.engine.epoch_schedules import warmup_cosine_by_epoch, warmup_multistep_by_epoch
from humanssl.errors import UserError
from humanssl.losses.clip_reid import Stage2Weights, stage1_losses, stage2_losses
from humanssl.losses.nt_xent import nt_xent_loss
from humanssl.losses.supcon import supcon_loss
from humanssl.losses.triplet import batch_hard_triplet
from tests.fixtures import conformance, needs_fixture

pytest.importorskip("open_clip")

from humanssl.methods.svll_reid import STAGE1, STAGE2, SvllReid, stage2_groups  # noqa: E402
from humanssl.methods.svll_reid_settings import Stage1Settings, Stage2Settings  # noqa: E402
from humanssl.models.clip_reid import build_clip_reid  # noqa: E402
from humanssl.models.clip_reid_features import ClipReidFeatures  # noqa: E402

TINY = {"embed_dim": 16, "vision_cfg": {"width": 32, "layers": 2, "patch_size": 8, "head_width": 16, "image_size": 32},
        "text_cfg": {"width": 32, "heads": 2, "layers": 1, "context_length": 16}}
IDS, PER_ID = 6, 4


pytestmark = pytest.mark.usefixtures("one_thread")


class Images(Dataset):
    def __init__(self, n=IDS * PER_ID):
        g = torch.Generator().manual_seed(5)
        self.x = torch.randn(n, 3, 32, 16, generator=g)
        self.y = torch.arange(n) % IDS

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"image": self.x[i], "pid": int(self.y[i])}


def tiny_method(s1=None, s2=None, sie=True, ssl=True, images=None):
    torch.manual_seed(0)
    model = build_clip_reid(IDS, input_size=(32, 16), stride=8, random_init=True, clip_overrides=TINY,
                            camera_num=3, sie_camera=sie, ssl=ssl, ssl_mlp_dims=(24, 8))
    loader = DataLoader(images or Images(), batch_size=7, collate_fn=lambda b: {
        "image": torch.stack([s["image"] for s in b]), "pid": torch.tensor([s["pid"] for s in b])})
    return SvllReid(model, s1 or Stage1Settings(batch_size=10), s2 or Stage2Settings(), loader,
                    pid_of_label=[10 + i for i in range(IDS)], seed=3)


def stage2_batch(seed=0, ids=3, k=2):
    g = torch.Generator().manual_seed(seed)
    n = ids * k
    return {"image": torch.randn(n, 3, 32, 16, generator=g), "pid": torch.arange(ids).repeat_interleave(k),
            "camid": torch.arange(n) % 3, "viewid": torch.zeros(n, dtype=torch.long),
            "views": [torch.randn(n, 3, 32, 16, generator=g), torch.randn(n, 3, 32, 16, generator=g)]}


def run_stage(method, name):
    stage = {s.name: s for s in method.stages()}[name]
    method.begin_stage(name)
    stage.prepare(None)
    return stage


def grads_of(method):
    return {n for n, p in method.model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


# ----------------------------------------------------------------------------- stage 1


def test_stage1_caches_features_once_and_trains_only_prompts_and_text_mlp():
    m = tiny_method()
    run_stage(m, STAGE1)
    assert m.image_bank.shape == (IDS * PER_ID, 16) and m.label_bank.tolist() == Images().y.tolist()
    m.model.eval()
    with torch.no_grad():  # the cache is the projected CLS without side information
        torch.testing.assert_close(m.image_bank[:3], m.model.image_features_proj(Images().x[:3]))
    m.model.train()
    losses = m.training_step({}, step=0)
    assert set(losses) == {"i2t", "t2i", "language_ssl"}
    sum(losses.values()).backward()
    touched = grads_of(m)
    assert "prompt_learner.cls_ctx" in touched and any(n.startswith("text_mlp.") for n in touched)
    assert all(n.startswith(("prompt_learner.", "text_mlp.")) for n in touched)
    trainable = {n for n, p in m.model.named_parameters() if p.requires_grad}
    grouped = {id(p) for g in m.param_groups() for p in g["params"]}
    assert grouped == {id(p) for n, p in m.model.named_parameters() if n in trainable}


def test_stage1_terms_are_supcon_both_ways_plus_weighted_nt_xent():
    m = tiny_method(Stage1Settings(batch_size=10, ssl_loss_weight=0.5, prompt_aug_method="swap"))
    run_stage(m, STAGE1)
    torch.manual_seed(11)
    losses = m.training_step({}, step=2)
    idx = m.stage1_indices(2)
    v, y = m.image_bank[idx], m.label_bank[idx]
    t = m.model.text_features(y)
    torch.testing.assert_close(losses["i2t"], supcon_loss(v, t, y))
    torch.testing.assert_close(losses["t2i"], supcon_loss(t, v, y))
    from humanssl.data.prompt_augment import augment_prompts

    torch.manual_seed(11)  # the same draws: the augmentation is the step's only randomness
    a1, a2 = augment_prompts(m.model.prompt_learner(y.unique()), "swap", 0.5)
    z1, z2 = (m.model.text_mlp(m.model.encode_prompts(a)) for a in (a1, a2))
    torch.testing.assert_close(losses["language_ssl"], 0.5 * nt_xent_loss(z1, z2, 0.1), rtol=1e-4, atol=1e-5)


def test_stage1_batches_are_an_epoch_permutation_drawn_from_seed_and_step():
    m = tiny_method(Stage1Settings(batch_size=10))
    assert m.stage1_steps_per_epoch == 3  # 24 images, the last batch holds 4
    epoch0 = torch.cat([m.stage1_indices(s) for s in range(3)])
    assert sorted(epoch0.tolist()) == list(range(24))
    assert torch.equal(m.stage1_indices(4), tiny_method(Stage1Settings(batch_size=10)).stage1_indices(4))
    assert not torch.equal(m.stage1_indices(3), m.stage1_indices(0))  # a new order every epoch


def test_language_ssl_switches():
    off = tiny_method(Stage1Settings(batch_size=10, language_ssl=False))
    run_stage(off, STAGE1)
    assert set(off.training_step({}, 0)) == {"i2t", "t2i"}
    assert not any(p.requires_grad for n, p in off.model.named_parameters() if n.startswith("text_mlp."))
    official = tiny_method(Stage1Settings(batch_size=10, official_untrained_text_mlp=True))
    run_stage(official, STAGE1)
    before = {n: p.detach().clone() for n, p in official.model.text_mlp.named_parameters()}
    losses = official.training_step({}, 0)
    assert "language_ssl" in losses
    sum(losses.values()).backward()
    assert not any(n.startswith("text_mlp.") for n in grads_of(official))
    assert "prompt_learner.cls_ctx" in grads_of(official)  # the SSL gradient still reaches the prompts
    assert all(torch.equal(p, before[n]) for n, p in official.model.text_mlp.named_parameters())


# ----------------------------------------------------------------------------- stage 2


def test_stage2_terms_and_what_trains():
    m = tiny_method()
    run_stage(m, STAGE2)
    assert m.text_bank.shape == (IDS, 16)
    with torch.no_grad():
        torch.testing.assert_close(m.text_bank, m.model.text_features(torch.arange(IDS)))
    b = stage2_batch()
    losses = m.training_step(b, step=0)
    assert set(losses) == {"id", "triplet", "i2t", "visual_ssl"}
    sum(losses.values()).backward()
    touched = grads_of(m)
    assert {"cv_embed", "classifier.weight", "classifier_proj.weight", "image_encoder.conv1.weight",
            "image_mlp.layer1.weight"} <= touched
    assert not any(n.startswith(("prompt_learner.", "text_encoder.", "text_mlp.")) for n in touched)
    assert not m.model.bottleneck.bias.requires_grad  # the BNNeck shift stays fixed
    # the terms, recomputed from the model's outputs
    out = m.model(b["image"], cam_label=b["camid"])
    y = b["pid"]
    torch.testing.assert_close(losses["id"], 0.25 * sum(F.cross_entropy(s, y, label_smoothing=0.1)
                                                        for s in out.cls_scores))
    torch.testing.assert_close(losses["triplet"], sum(batch_hard_triplet(f, y, 0.3) for f in out.features))
    torch.testing.assert_close(losses["i2t"], F.cross_entropy(out.image_feature_proj @ m.text_bank.T, y,
                                                              label_smoothing=0.1))
    z1, z2 = (m.model.ssl_image_embedding(v) for v in b["views"])
    torch.testing.assert_close(losses["visual_ssl"], 0.8 * nt_xent_loss(z1, z2, 0.1))


def test_visual_ssl_switch_and_plain_clip_reid():
    off = tiny_method(s2=Stage2Settings(visual_ssl=False))
    run_stage(off, STAGE2)
    b = stage2_batch()
    del b["views"]
    assert set(off.training_step(b, 0)) == {"id", "triplet", "i2t"}
    assert not any(p.requires_grad for n, p in off.model.named_parameters() if n.startswith("image_mlp."))
    plain = tiny_method(Stage1Settings(batch_size=10, language_ssl=False), Stage2Settings(visual_ssl=False),
                        ssl=False)  # CLIP-ReID: no SSL MLPs at all
    assert not hasattr(plain.model, "image_mlp")
    with pytest.raises(UserError, match="SSL MLPs"):
        tiny_method(ssl=False)
    on = tiny_method()
    run_stage(on, STAGE2)
    with pytest.raises(UserError, match="two extra views"):
        on.training_step(b, 0)


def test_stage2_groups_follow_the_official_bias_rule():
    m = tiny_method()
    m.begin_stage(STAGE2)
    groups = {g["name"]: g for g in m.param_groups()}
    names = {id(p): n for n, p in m.model.named_parameters()}
    bias = {names[id(p)] for p in groups["bias"]["params"]}
    assert "image_encoder.transformer.resblocks.0.attn.in_proj_bias" in bias
    assert groups["bias"]["lr_scale"] == 2.0 and groups["bias"]["apply_weight_decay"]
    assert "no_decay" not in groups  # the official optimiser decays every tensor
    corrected = {g["name"]: g for g in stage2_groups(list(m.model.named_parameters()), 2.0, decay_all=False)}
    assert not corrected["bias"]["apply_weight_decay"] and not corrected["no_decay"]["apply_weight_decay"]


def test_test_feature_is_the_normalised_pre_bn_concat_with_side_information():
    m = tiny_method()
    feats = ClipReidFeatures(m.model)
    x, cams = torch.randn(3, 3, 32, 16), torch.tensor([0, 2, 1])
    m.model.eval()
    with torch.no_grad():
        expected = m.model(x, cam_label=cams)
        feats.train()
        torch.testing.assert_close(feats(x, camid=cams, viewid=torch.zeros(3, dtype=torch.long)), expected)
    assert feats.embed_dim == 48 and expected.norm(dim=1).allclose(torch.ones(3))
    with pytest.raises(UserError, match="camera"):
        feats(x)


# ----------------------------------------------------------------------------- official numbers


@needs_fixture("svll_reid", "stage1_losses.npz")
def test_stage1_loss_parity():
    f = np.load(conformance("svll_reid", "stage1_losses.npz"))
    t = {k: torch.from_numpy(f[k]) for k in f.files}
    losses = stage1_losses(t["image_features"], t["text_features"], t["labels"])
    torch.testing.assert_close(losses["i2t"], t["loss_i2t"], rtol=1e-5, atol=0)
    torch.testing.assert_close(losses["t2i"], t["loss_t2i"], rtol=1e-5, atol=0)
    s1 = Stage1Settings()
    total = sum(losses.values()) + s1.ssl_loss_weight * nt_xent_loss(t["text_aug1_embed"], t["text_aug2_embed"],
                                                                      s1.ssl_tau)
    torch.testing.assert_close(total, t["stage1_total_ssl_w08"], rtol=1e-5, atol=0)


@needs_fixture("svll_reid", "stage2_losses.npz")
def test_stage2_loss_parity():
    f = np.load(conformance("svll_reid", "stage2_losses.npz"))
    t = {k: torch.from_numpy(f[k]) for k in f.files}
    s2 = Stage2Settings()
    w = s2.weights()
    assert [w.id, w.triplet, w.i2t, s2.ssl_loss_weight, w.margin] == f["weights"].tolist()
    losses = stage2_losses([t["cls_score"], t["cls_score_proj"]],
                           [t["img_feature_last"], t["img_feature"], t["img_feature_proj"]],
                           t["img_feature_proj"], t["text_features_all_ids"], t["target"], w)
    torch.testing.assert_close(losses["id"], w.id * t["id_loss_sum"], rtol=1e-5, atol=0)
    torch.testing.assert_close(losses["triplet"], t["tri_loss_sum"], rtol=1e-5, atol=0)
    torch.testing.assert_close(losses["i2t"], t["i2t_loss"], rtol=1e-5, atol=0)
    torch.testing.assert_close(sum(losses.values()), t["total_loss_without_ssl"], rtol=1e-5, atol=0)
    ssl = s2.ssl_loss_weight * nt_xent_loss(t["aug1_embed"], t["aug2_embed"], s2.ssl_tau)
    torch.testing.assert_close(sum(losses.values()) + ssl, t["total_loss"], rtol=1e-5, atol=0)


def test_official_schedules_by_epoch():
    lr1 = Stage1Settings().lr_schedule()(120 * 2, 2)  # 2 steps per epoch
    assert lr1[0] == lr1[1] == pytest.approx(1e-5 + (3.5e-4 - 1e-5) / 5)  # epoch 1 of the warm-up
    assert lr1[2 * 4] == pytest.approx(1e-6 + 0.5 * (3.5e-4 - 1e-6) * (1 + np.cos(np.pi * 5 / 120)))
    assert lr1[-1] == pytest.approx(1e-6)
    lr2 = Stage2Settings().lr_schedule()(60, 1)
    assert lr2[0] == pytest.approx(0.19 * 5e-6) and lr2[9] == pytest.approx(5e-6)
    assert lr2[29] == pytest.approx(5e-7) and lr2[49] == pytest.approx(5e-8) and lr2[28] == pytest.approx(5e-6)
    with pytest.raises(UserError, match="milestones"):
        warmup_multistep_by_epoch(1.0, [50, 30])(10, 1)
    assert len(warmup_cosine_by_epoch(1.0, 3, 1, 0.1, 0.0)(7, 2)) == 7


def test_settings_reject_bad_values():
    with pytest.raises(UserError, match="stage1.prompt_aug_method"):
        Stage1Settings(prompt_aug_method="blur")
    with pytest.raises(UserError, match="stage1.batch_size"):
        Stage1Settings(batch_size=0)
    with pytest.raises(UserError, match="loss weights"):
        Stage2Settings(id_loss_weight=0, triplet_loss_weight=0, i2t_loss_weight=0)
    with pytest.raises(UserError, match="label smoothing"):
        Stage2Weights(label_smoothing=1.0)
