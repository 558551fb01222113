import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from humanssl.losses.dino import DINOLoss, teacher_temperature_schedule


def test_hand_computed_tiny_case():
    # out_dim 3, B=1, 2 global + 1 local crop, a non-zero centre.
    t_logits = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
    s_logits = [[0.1, 0.2, -0.1], [0.3, -0.2, 0.0], [-0.4, 0.1, 0.25]]
    center = [0.2, -0.1, 0.3]
    t_temp, s_temp = 0.5, 0.1

    def softmax(xs):
        e = [math.exp(x) for x in xs]
        return [v / sum(e) for v in e]

    def log_softmax(xs):
        lse = math.log(sum(math.exp(x) for x in xs))
        return [x - lse for x in xs]

    q = [softmax([(t - c) / t_temp for t, c in zip(row, center)]) for row in t_logits]
    log_p = [log_softmax([s / s_temp for s in row]) for row in s_logits]
    pairs = [(0, 1), (0, 2), (1, 0), (1, 2)]  # teacher crop i, student crop j, i != j
    expected = sum(-sum(qd * lpd for qd, lpd in zip(q[i], log_p[j])) for i, j in pairs) / 4

    loss_fn = DINOLoss(out_dim=3, num_global_crops=2, student_temp=s_temp)
    loss_fn.center.copy_(torch.tensor([center]))
    loss = loss_fn(torch.tensor(s_logits), torch.tensor(t_logits), teacher_temp=t_temp)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def _reference_loss(student, teacher, center, ncrops, ng, s_temp, t_temp):
    """DINO's formula written out with explicit loops over view pairs."""
    s_chunks = (student / s_temp).chunk(ncrops)
    t_chunks = F.softmax((teacher - center) / t_temp, dim=-1).chunk(ng)
    total, n = 0.0, 0
    for i, q in enumerate(t_chunks):
        for j, s in enumerate(s_chunks):
            if i == j:
                continue
            total = total + torch.sum(-q * F.log_softmax(s, dim=-1), dim=-1).mean()
            n += 1
    return total / n


def test_matches_loop_reference_random():
    g = torch.Generator().manual_seed(0)
    B, D, ncrops = 3, 7, 4
    student = torch.randn(ncrops * B, D, generator=g, dtype=torch.float64)
    teacher = torch.randn(2 * B, D, generator=g, dtype=torch.float64)
    center = torch.randn(1, D, generator=g, dtype=torch.float64)
    loss_fn = DINOLoss(D, student_temp=0.1)
    loss_fn.center.copy_(center)
    got = loss_fn(student, teacher, teacher_temp=0.04)
    want = _reference_loss(student, teacher, center, ncrops, 2, 0.1, 0.04)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


def test_center_ema_and_no_gradient_paths():
    g = torch.Generator().manual_seed(1)
    B, D, m = 4, 5, 0.9
    loss_fn = DINOLoss(D, center_momentum=m)
    assert "center" in loss_fn.state_dict()

    student = torch.randn(3 * B, D, generator=g, requires_grad=True)
    teacher1 = torch.randn(2 * B, D, generator=g, requires_grad=True)
    loss = loss_fn(student, teacher1, teacher_temp=0.07)
    c1 = (1 - m) * teacher1.detach().mean(0, keepdim=True)
    torch.testing.assert_close(loss_fn.center, c1)

    loss.backward()
    assert teacher1.grad is None  # teacher probabilities are detached
    assert student.grad is not None
    assert not loss_fn.center.requires_grad and list(loss_fn.parameters()) == []
    torch.testing.assert_close(loss_fn.center, c1)  # backward leaves the centre alone

    teacher2 = torch.randn(2 * B, D, generator=g)
    loss_fn(student.detach(), teacher2, teacher_temp=0.07)
    c2 = m * c1 + (1 - m) * teacher2.mean(0, keepdim=True)
    torch.testing.assert_close(loss_fn.center, c2)


def test_uses_centre_from_before_the_update():
    D = 4
    student, teacher = torch.randn(4, D), torch.randn(2, D) + 3.0
    fresh = DINOLoss(D)
    want = _reference_loss(student, teacher, torch.zeros(1, D), 4, 2, 0.1, 0.04)
    assert fresh(student, teacher, 0.04).item() == pytest.approx(want.item(), rel=1e-5)


def test_float32_under_autocast():
    g = torch.Generator().manual_seed(2)
    student, teacher = torch.randn(8, 16, generator=g), torch.randn(4, 16, generator=g)
    plain = DINOLoss(16)(student, teacher, 0.04)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = DINOLoss(16)(student, teacher, 0.04)
    assert auto.dtype == torch.float32
    assert auto.item() == pytest.approx(plain.item(), rel=1e-6)


def test_teacher_temperature_schedule():
    s = teacher_temperature_schedule(0.04, 0.07, warmup_steps=30, total_steps=100)
    assert len(s) == 100
    assert s[0] == pytest.approx(0.04)
    assert s[30] == pytest.approx(0.07)
    np.testing.assert_allclose(np.diff(s[:30]), np.full(29, (0.07 - 0.04) / 29))  # linear
    np.testing.assert_allclose(s[29:], 0.07)  # DINO's ramp ends on the final value
    np.testing.assert_allclose(teacher_temperature_schedule(0.04, 0.07, 0, 10), np.full(10, 0.07))
    short = teacher_temperature_schedule(0.04, 0.07, warmup_steps=30, total_steps=10)
    assert len(short) == 10 and short[0] == pytest.approx(0.04)


def test_one_centre_per_group_centres_each_image_by_its_own_group():
    # B=2 images in groups 1 and 0, 2 global crops; each image's teacher rows use its group's centre
    torch.manual_seed(0)
    teacher, student = torch.randn(4, 5), torch.randn(4, 5)
    centres = torch.randn(2, 5)
    grouped = DINOLoss(out_dim=5, num_global_crops=2, center_groups=2)
    grouped.center.copy_(centres)
    groups = torch.tensor([1, 0])
    loss = grouped(student, teacher, 0.04, groups)
    per_row = centres[groups.repeat(2)]  # crop-major rows: image 0, image 1, image 0, image 1
    expected = _reference_loss(student, teacher, per_row, ncrops=2, ng=2, s_temp=0.1, t_temp=0.04)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # each centre moves towards the mean of its own images' rows only
    for g in (0, 1):
        mean = teacher[groups.repeat(2) == g].mean(0)
        torch.testing.assert_close(grouped.center[g], 0.9 * centres[g] + 0.1 * mean)


def test_a_group_absent_from_the_batch_keeps_its_centre():
    grouped = DINOLoss(out_dim=3, num_global_crops=2, center_groups=2)
    grouped.center.copy_(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    grouped(torch.randn(4, 3), torch.randn(4, 3), 0.04, torch.tensor([0, 0]))
    assert grouped.center[1].tolist() == [4.0, 5.0, 6.0]
    assert grouped.center[0].tolist() != [1.0, 2.0, 3.0]


def test_groups_are_required_exactly_when_there_are_several_centres():
    with pytest.raises(ValueError, match="groups"):
        DINOLoss(out_dim=3, num_global_crops=2, center_groups=2)(torch.randn(4, 3), torch.randn(4, 3), 0.04)
    with pytest.raises(ValueError, match="groups"):
        DINOLoss(out_dim=3, num_global_crops=2)(torch.randn(4, 3), torch.randn(4, 3), 0.04, torch.tensor([0, 1]))
