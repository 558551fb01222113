"""SAIP's method on tiny shapes: the five terms, where gradients go, the teacher's EMA switches."""

import pytest
import torch

from humanssl.errors import UserError
from humanssl.methods.saip import LOSSES, SAIP, SaipConfig

GLOBAL, LOCAL, REF = (128, 64), (64, 32), (80, 80)  # patch 16: 8x4 anchors, 4x2 locals, 5x5 reference


def tiny_cfg(**kw) -> SaipConfig:
    base = dict(out_dim=32, hidden_dim=16, bottleneck_dim=8, decoder_embed_dim=16, decoder_depth=1,
                decoder_num_heads=2, css_hidden_dim=16, css_num_heads=2, css_self_attention_depth=1,
                css_mask_head_depth=2)
    return SaipConfig(**{**base, **kw})


def tiny_method(accumulation=1, **kw) -> SAIP:
    torch.manual_seed(0)
    method = SAIP(tiny_cfg(**kw), "saip_vit_mini", GLOBAL, drop_path=0.1, accumulation=accumulation)
    method.configure(total_steps=10, steps_per_epoch=4)
    return method


def tiny_batch(b=2, local_number=3, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(2, b, *REF)
    masks[0, :, 0:64, 0:32] = 1
    masks[1, :, 10:74, 40:72] = 1
    return {"image": [torch.randn(b, 3, *GLOBAL, generator=g) for _ in range(2)]
            + [torch.randn(b, 3, *LOCAL, generator=g) for _ in range(local_number)],
            "region": torch.randn(b, 3, *LOCAL, generator=g), "reference": torch.randn(b, 3, *REF, generator=g),
            "roi_mask": masks[0], "inst_mask": masks[1]}


def test_one_step_gives_the_five_named_terms_and_gradients_only_to_the_student():
    method = tiny_method()
    losses = method.training_step(tiny_batch(), step=0)
    assert sorted(losses) == sorted(LOSSES)
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is None for p in method.teacher.parameters())
    trainable = [(n, p) for n, p in method.student.named_parameters() if p.requires_grad]
    # every trainable part is reached (DDP needs that), the official unused norm is frozen
    assert [n for n, p in trainable if p.grad is None] == []
    assert not any(p.requires_grad for p in method.student.csm_decoder.decoder_norm.parameters())


def test_csm_sees_ten_views_with_two_rescaled_ones():
    method = tiny_method()
    rows, sizes = [], []
    method.student.csm_decoder.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    method.student.backbone.patch_embed.register_forward_pre_hook(lambda m, args: sizes.append(tuple(args[0].shape)))
    torch.manual_seed(1)
    method.training_step(tiny_batch(b=2, local_number=7), step=0)
    assert rows == [10 * 2]
    # student calls: globals, 6 locals, the rescaled last local, the rescaled region, the CSR view
    assert sizes[0] == (4, 3, *GLOBAL) and sizes[1] == (12, 3, *LOCAL)
    for size in sizes[2:4]:
        assert size[2] in {48, 56, 72, 80} and size[2] == 2 * size[3]  # 64 x {0.75, 0.875, 1.125, 1.25}
    assert sizes[4] == (2, 3, 160, 80)  # global view 2 x1.25


def test_weights_scale_each_term():
    base = tiny_method().training_step(tiny_batch(), 0)
    weighted = tiny_method(csr_weight=2.0, css_roi_weight=0.0).training_step(tiny_batch(), 0)
    assert weighted["csr"].item() == pytest.approx(2 * base["csr"].item(), rel=1e-5)
    assert weighted["css_roi"].item() == 0.0
    assert weighted["css_inst"].item() == pytest.approx(base["css_inst"].item(), rel=1e-5)


def test_csr_loss_mask_unseen_scores_every_patch_the_encoder_missed():
    method = tiny_method(csr_loss_mask="unseen")
    enc = method.student.backbone.forward_features(torch.randn(2, 3, 160, 80), 0.75, with_anchor_mask=True,
                                                   get_intermediate_only=True)
    scored = method.csr_scored(enc)
    assert scored.sum(1).tolist() == [50 - 12] * 2  # 10x5 patches, int(50 x 0.25) = 12 encoded
    method.cfg.csr_loss_mask = "anchor"
    assert torch.equal(method.csr_scored(enc), enc.mask[1])


def _ema(t, s, m):
    return [m * a + (1 - m) * b for a, b in zip(t, s)]


def _fake_update(method):
    """Move the student as an optimizer step would."""
    with torch.no_grad():
        for p in method.ema_source():
            p.add_(0.01)


def test_default_ema_runs_once_per_optimizer_step_on_the_global_schedule():
    method = tiny_method(accumulation=2)
    for _ in range(2):  # two accumulated micro-batches leave the teacher alone
        method.training_step(tiny_batch(), step=5)
    assert all(torch.equal(t, s) for t, s in zip(method.teacher.parameters(), method.ema_source()))
    _fake_update(method)
    before = [t.clone() for t in method.teacher.parameters()]
    student = [p.detach().clone() for p in method.ema_source()]
    method.after_step(5)
    expected = _ema(before, student, float(method.momentum[5]))
    for got, want in zip(method.teacher.parameters(), expected):
        torch.testing.assert_close(got, want)
    assert len(method.momentum) == 10 and method.momentum_at(5) == method.momentum[5] > 0.996


def test_official_ema_after_every_micro_batch_indexed_within_the_epoch():
    method = tiny_method(accumulation=2, ema_every_micro_batch=True, momentum_index="epoch_step")
    assert len(method.momentum) == 10 * 2
    step = 5  # the second step of epoch 1 (4 steps per epoch): index (5 % 4) * 2 + micro
    _fake_update(method)
    teacher = [t.clone() for t in method.teacher.parameters()]
    student = [p.detach().clone() for p in method.ema_source()]
    method.training_step(tiny_batch(), step)  # micro-batch 0: no EMA yet
    method.training_step(tiny_batch(), step)  # micro-batch 1 starts: the EMA of micro-batch 0
    teacher = _ema(teacher, student, float(method.momentum[2]))
    method.after_step(step)  # the EMA of micro-batch 1
    teacher = _ema(teacher, student, float(method.momentum[3]))
    for got, want in zip(method.teacher.parameters(), teacher):
        torch.testing.assert_close(got, want)


def test_state_dict_reads_like_an_official_checkpoint():
    keys = tiny_method().state_dict().keys()
    for part in ("backbone", "csr_decoder", "csm_decoder", "css_decoder"):
        assert any(k.startswith(f"student.{part}.") for k in keys)
    assert any(k.startswith("teacher.backbone.") for k in keys)
    assert any(k.startswith("teacher.csm_decoder.") for k in keys)
    assert not any(k.startswith(("teacher.csr_decoder.", "teacher.css_decoder.")) for k in keys)
    assert "csm_loss.center" in keys


def test_loss_falls_on_a_fixed_batch():
    method = tiny_method(out_dim=16)
    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=2e-3, betas=(0.9, 0.95))
    batch = tiny_batch(b=4)
    totals = []
    for step in range(8):
        torch.manual_seed(step)
        losses = method.training_step(batch, step)
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        method.after_step(step)
        totals.append(losses["csr"].item() + losses["css_inst"].item() + losses["css_roi"].item())
    assert sum(totals[-2:]) < sum(totals[:2])


def test_downstream_backbone_is_the_teacher_giving_pooled_features():
    method = tiny_method()
    feats = method.downstream_backbone()(torch.randn(3, 3, *GLOBAL))
    assert feats.shape == (3, 32)


def test_config_mistakes_are_named():
    with pytest.raises(UserError, match="model.backbone"):
        SAIP(tiny_cfg(), "vit_small", GLOBAL)
    with pytest.raises(UserError, match="crops.local_size"):
        SAIP(tiny_cfg(), "saip_vit_mini", GLOBAL, local_size=(32, 16))
    with pytest.raises(UserError, match="saip.mask_ratio"):
        tiny_cfg(mask_ratio=1.0)
    with pytest.raises(UserError, match="saip.csr_weight"):
        tiny_cfg(csr_weight=-1.0)
    with pytest.raises(UserError, match="saip.decoder_embed_dim"):
        tiny_cfg(decoder_embed_dim=10, decoder_num_heads=4)
