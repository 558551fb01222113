"""BNNeck fine-tuning method: losses, label smoothing, frozen BN bias, optimiser groups."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from humanssl.errors import UserError
from humanssl.losses.triplet import batch_hard_triplet
from humanssl.methods.reid_finetune import ReidFinetune, ReidLossConfig


class Flat(nn.Module):
    embed_dim = 6

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(12, 6)
        self.norm = nn.LayerNorm(6)

    def forward(self, x):
        return self.norm(self.proj(x.flatten(1)))


def batch(seed=0, ids=3, k=2):
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.randn(ids * k, 3, 2, 2, generator=g), "pid": torch.arange(ids).repeat_interleave(k)}


def method(**loss):
    torch.manual_seed(0)
    return ReidFinetune(Flat(), 3, ReidLossConfig(**loss), pid_of_label=[5, 9, 2])


def test_losses_are_ce_on_the_neck_and_triplet_before_it():
    m = method(ce_weight=0.5, triplet_weight=2.0)
    b = batch()
    losses = m.training_step(b, 0)
    feat = m.backbone(b["image"])
    logits = m.classifier(m.neck(feat))
    assert set(losses) == {"ce", "triplet"}
    assert losses["ce"].item() == pytest.approx(0.5 * F.cross_entropy(logits, b["pid"]).item(), rel=1e-5)
    assert losses["triplet"].item() == pytest.approx(2.0 * batch_hard_triplet(feat, b["pid"]).item(), rel=1e-5)
    assert set(method(triplet_weight=0.0).training_step(b, 0)) == {"ce"}


def confident(m):
    with torch.no_grad():  # the 0.001 init makes every logit ~0: widen it so smoothing shows
        m.classifier.weight.copy_(torch.linspace(-2, 2, 18).reshape(3, 6))
    return m


def test_label_smoothing_is_the_smoothed_target_cross_entropy():
    b = batch()
    plain = confident(method(triplet_weight=0.0)).training_step(b, 0)["ce"]
    m = confident(method(triplet_weight=0.0, label_smoothing=True))
    smoothed = m.training_step(b, 0)["ce"]
    logp = torch.log_softmax(m.classifier(m.neck(m.backbone(b["image"]))), 1)
    eps, K = 0.1, 3
    target = torch.full_like(logp, eps / K).scatter_(1, b["pid"][:, None], 1 - eps + eps / K)
    assert smoothed.item() == pytest.approx(-(target * logp).sum(1).mean().item(), rel=1e-5)
    assert smoothed.item() != pytest.approx(plain.item(), rel=1e-3)


def test_bnneck_bias_stays_zero_and_biases_train_at_twice_the_lr():
    m = method()
    groups = m.param_groups()
    grouped = {id(p): g for g in groups for p in g["params"]}
    assert id(m.neck.bn.bias) not in grouped and not m.neck.bn.bias.requires_grad
    assert m.classifier.bias is None
    assert grouped[id(m.backbone.proj.bias)]["lr_scale"] == 2.0
    assert grouped[id(m.classifier.weight)]["apply_weight_decay"] is True
    assert grouped[id(m.neck.bn.weight)]["apply_weight_decay"] is False
    opt = torch.optim.SGD(groups, lr=0.5, momentum=0.9)
    before = m.neck.bn.weight.detach().clone()
    for s in range(5):
        opt.zero_grad()
        sum(m.training_step(batch(s), s).values()).backward()
        opt.step()
    assert torch.all(m.neck.bn.bias == 0)
    assert not torch.equal(m.neck.bn.weight, before)


def test_official_weight_decay_switch_decays_everything():
    m = ReidFinetune(Flat(), 3, ReidLossConfig(), decay_norms_and_biases=True)
    assert all(g["apply_weight_decay"] for g in m.param_groups())


def test_freeze_and_checkpoint_contents():
    m = ReidFinetune(Flat(), 3, ReidLossConfig(), freeze=["norm"], pid_of_label=[5, 9, 2])
    assert not m.backbone.norm.weight.requires_grad and m.backbone.proj.weight.requires_grad
    assert m.downstream_backbone() is m.backbone
    state = m.state_dict()
    assert state["pid_of_label"].tolist() == [5, 9, 2]
    assert "classifier.weight" in state and "neck.bn.bias" in state
    with pytest.raises(UserError, match="semantic_embed"):
        ReidFinetune(Flat(), 3, ReidLossConfig(), freeze=["semantic_embed_w"])


def test_bad_settings():
    with pytest.raises(UserError, match="at least 2"):
        ReidFinetune(Flat(), 1, ReidLossConfig())
    with pytest.raises(UserError, match="triplet_margin"):
        ReidLossConfig(triplet_margin=-0.3)
    with pytest.raises(UserError, match="ce_weight"):
        ReidLossConfig(ce_weight=0.0, triplet_weight=0.0)
