"""SAIP's CSM loss: DINO's loss over 10 student views against 2 teacher views, plus attention
distillation on the two same-view pairs."""

import math

import pytest
import torch

from humanssl.losses.dino import DINOLoss
from humanssl.losses.saip_csm import attention_distillation


def test_rep_term_skips_the_two_same_view_pairs_of_ten_views():
    # teacher logits 0 -> uniform targets; student views 0 and 1 predict (3/4, 1/4), views 2..9 (1/2, 1/2)
    loss_fn = DINOLoss(out_dim=2, num_global_crops=2, student_temp=0.1)
    teacher = torch.zeros(2, 2)
    student = torch.zeros(10, 2)
    student[:2, 0] = 0.1 * math.log(3.0)  # / student_temp -> logits (log 3, 0)
    ce_skewed = -0.5 * math.log(0.75) - 0.5 * math.log(0.25)
    # 18 pairs: teacher 0 x student 1 and teacher 1 x student 0 (skewed), 2 x 8 with views 2..9
    expected = (2 * ce_skewed + 16 * math.log(2.0)) / 18
    assert loss_fn(student, teacher, teacher_temp=0.04).item() == pytest.approx(expected, rel=1e-6)


def test_rep_term_gradients_reach_the_student_only():
    loss_fn = DINOLoss(out_dim=8, num_global_crops=2)
    student = torch.randn(10 * 3, 8, requires_grad=True)
    teacher = torch.randn(2 * 3, 8, requires_grad=True)
    loss_fn(student, teacher, teacher_temp=0.04).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def _pair(rows):
    return torch.tensor(rows, dtype=torch.float32).view(1, 1, 2, 2)


def test_attention_term_is_the_kl_worked_out_by_hand():
    s = _pair([[0.5, 0.5], [0.25, 0.75]])
    t = _pair([[1.0, 0.0], [0.5, 0.5]])
    # KL(t || s) per query: log 2 (the 0 entry adds ~eps log eps), then 0.5 log 2 + 0.5 log(2/3)
    per_query = [math.log(2.0), 0.5 * math.log(2.0) + 0.5 * math.log(2.0 / 3.0)]
    one_map = sum(per_query) / 2
    # the qk map and the vv map each add their mean KL
    value = attention_distillation([s, s.clone()], [t, t.clone()])
    assert value.item() == pytest.approx(2 * one_map, abs=1e-6)


def test_attention_term_averages_views_images_heads_and_queries():
    torch.manual_seed(0)
    s = [torch.rand(2 * 3, 2, 5, 5).softmax(-1) for _ in range(2)]
    t = [torch.rand(2 * 3, 2, 5, 5).softmax(-1) for _ in range(2)]
    # the official form: per view (chunk) mean over its images/heads/queries, then mean over views
    expected = 0.0
    for v in range(2):
        for sm, tm in zip(s, t):
            sv, tv = sm.chunk(2)[v], tm.chunk(2)[v]
            kl = torch.nn.functional.kl_div((sv + 1e-10).log(), tv + 1e-10, reduction="none").sum(-1)
            expected += kl.mean().item() / 2
    assert attention_distillation(s, t).item() == pytest.approx(expected, rel=1e-5)
    assert attention_distillation(s, s).item() == pytest.approx(0.0, abs=1e-6)


def test_attention_term_gradients_reach_the_student_only():
    logits_s = torch.randn(4, 3, 6, 6, requires_grad=True)
    logits_t = torch.randn(4, 3, 6, 6, requires_grad=True)
    s, t = logits_s.softmax(-1), logits_t.softmax(-1)
    attention_distillation([s, s], [t, t]).backward()
    assert logits_s.grad.abs().sum() > 0
    assert logits_t.grad is None


def test_attention_term_rejects_unpaired_maps():
    with pytest.raises(ValueError, match="pair up"):
        attention_distillation([torch.rand(2, 1, 3, 3)], [torch.rand(2, 1, 4, 4)])
