"""SOLIDER's training step on a mini Swin: teacher passes, masking, lambdas, the semantic loss."""

import pytest
import torch
import torch.nn.functional as F

from humanssl.engine.optim import build_optimizer
from humanssl.errors import UserError
from humanssl.methods import solider as solider_module
from humanssl.methods.dino import DinoConfig
from humanssl.methods.solider import SOLIDER, SoliderConfig
from humanssl.models.backbones import create_backbone

# 96x32 crops: the last stage is a 3x1 token map, the cheapest size with a foreground majority.
GLOBAL, LOCAL = (96, 32), (48, 16)


def make(trainable=True, backbone="swin_mini"):
    torch.manual_seed(0)
    return SOLIDER(lambda dp: create_backbone(backbone, drop_path_rate=dp),
                   DinoConfig(out_dim=32, hidden_dim=16, bottleneck_dim=8),
                   SoliderConfig(part_head_hidden_dim=16, part_head_bottleneck_dim=8, part_head_trainable=trainable,
                                 semantic_loss_weight=0.5),
                   drop_path=0.0)


def batch(b=4):
    g = torch.Generator().manual_seed(1)
    return {"image": [torch.randn(b, 3, *GLOBAL, generator=g), torch.randn(b, 3, *GLOBAL, generator=g),
                      torch.randn(b, 3, *LOCAL, generator=g)]}


def test_teacher_reuses_lambda_one_features_only_where_lambda_is_one():
    m = make()
    views = batch()["image"][:2]
    lam = torch.tensor([1.0, 0.0, 0.0, 1.0])
    with torch.no_grad():
        out, maps = m.teacher_pass(views, lam)
        full = m.teacher.head(torch.cat(m.teacher.encode(views, [lam, lam])[0]))
        _, maps_one = m.teacher.encode(views, [torch.ones(4)] * 2)
    torch.testing.assert_close(out, full, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(maps, torch.cat(maps_one))
    assert maps.shape == (8, 128, 3, 1)


def fixed_labels(keep):
    """part_labels stand-in: image i of the 8 global crops gets label map rows (1, 2, 3) when kept."""
    def fake(feature_map, num_parts, iters, restarts):
        n, _, h, w = feature_map.shape
        labels = torch.tensor([1, 2, 3]).view(1, 3, 1).expand(n, h, w).clone()
        k = torch.tensor(keep)
        return torch.where(k.view(-1, 1, 1), labels, torch.zeros_like(labels)), k
    return fake


def spy_student(m, monkeypatch):
    calls = []
    original = m.student.encode

    def encode(crops, lambdas):
        pooled, maps = original(crops, lambdas)
        calls.append(([c.detach().clone() for c in crops], [x.clone() for x in lambdas], maps))
        return pooled, maps
    monkeypatch.setattr(m.student, "encode", encode)
    return calls


def test_masking_lambdas_and_semantic_loss(monkeypatch):
    m = make()
    keep = [True, False, False, True, False, True, False, False]  # crop-major: 4 images x 2 global crops
    monkeypatch.setattr(solider_module, "part_labels", fixed_labels(keep))
    calls = spy_student(m, monkeypatch)
    data = batch()
    torch.manual_seed(5)
    losses = m.training_step(data, 0)
    torch.manual_seed(5)
    lam = torch.randint(0, 2, (4,)).float()
    part = int(torch.randint(1, 4, ()))

    crops, lambdas, maps = calls[0]
    globals_ = torch.cat(data["image"][:2])
    kept = torch.tensor(keep).nonzero().squeeze(1)
    # the drawn part's rows (32 pixels each, nearest up-sampling) are zero, the rest untouched
    rows = torch.arange(GLOBAL[0]) // 32 + 1
    visible = (rows != part).float().view(1, 1, -1, 1)
    torch.testing.assert_close(crops[0], globals_[kept] * visible, rtol=0, atol=0)
    assert (crops[0][:, :, rows == part] == 0).all() and (crops[0][:, :, rows != part] != 0).all()
    # every view of an image carries that image's lambda, masked copies included
    assert torch.equal(lambdas[0], lam.repeat(2)[kept])
    for x in lambdas[1:]:
        assert torch.equal(x, lam)

    # the semantic loss: the part head on masked + unmasked kept maps, targets (1, 2, 3) for both,
    # weighted by lambda, averaged over all these tokens, times the loss weight
    feats = torch.cat([maps[0], torch.cat(maps[1:3])[kept]])
    tokens = feats.flatten(2).transpose(1, 2).reshape(-1, feats.shape[1])
    ce = F.cross_entropy(m.part_head(tokens), torch.tensor([1, 2, 3]).repeat(6), reduction="none")
    w = lam.repeat(2)[kept].repeat(2).repeat_interleave(3)
    torch.testing.assert_close(losses["semantic"], 0.5 * (w * ce).mean())
    assert torch.isfinite(losses["dino"])


def test_no_kept_image_gives_zero_semantic_loss_and_gradients_flow(monkeypatch):
    # The official code would index with an empty float array here and crash.
    m = make()
    monkeypatch.setattr(solider_module, "part_labels", fixed_labels([False] * 8))
    losses = m.training_step(batch(), 0)
    assert losses["semantic"].item() == 0.0
    sum(losses.values()).backward()
    assert m.part_head.last_layer.weight_v.grad is not None
    assert m.student.backbone.patch_embed.projection.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("trainable", [True, False])
def test_part_head_is_trained_only_when_asked(monkeypatch, trainable):
    m = make(trainable)
    monkeypatch.setattr(solider_module, "part_labels", fixed_labels([True] * 8))
    grouped = {id(p) for g in m.param_groups() for p in g["params"]}
    head = list(m.part_head.parameters())
    assert all((id(p) in grouped) == trainable for p in head if p is not m.part_head.last_layer.weight_g)
    before = [p.detach().clone() for p in head]
    opt = build_optimizer(m.param_groups(), "adamw")
    for g in opt.param_groups:
        g["lr"] = 1e-2
    torch.manual_seed(0)
    losses = m.training_step(batch(), 0)
    assert losses["semantic"].item() > 0
    sum(losses.values()).backward()
    opt.step()
    changed = any(not torch.equal(a, p) for a, p in zip(before, head))
    assert changed == trainable
    assert (m.part_head.last_layer.weight_g == 1).all()  # g stays fixed at 1 either way


def test_parameters_no_loss_reaches_are_frozen_not_silently_idle():
    m = make()
    losses = m.training_step(batch(), 0)
    sum(losses.values()).backward()
    idle = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert idle == []
    frozen = {n for n, p in m.student.backbone.named_parameters() if not p.requires_grad}
    assert any(n.startswith("norm0.") for n in frozen) and any(n.startswith("semantic_embed_w.3.") for n in frozen)
    assert not any(n.startswith(("norm3.", "semantic_embed_w.2.")) for n in frozen)


def test_backbone_without_semantic_controller_is_refused():
    with pytest.raises(UserError, match="semantic controller"):
        make(backbone="resnet_mini")
