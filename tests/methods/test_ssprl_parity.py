"""One full SS-PRL training step against the official `train()` (fixtures in conformance/ssprl):
every loss term, projections, scores, Sinkhorn codes, gradients and the queues after the step.

The fixture bypasses the ResNet-50 trunk: each input carries its pooled 2048-d trunk feature.
Here an identity trunk plays that part, so `training_step` itself runs on the fixture's features
and the gradient reaching the "images" is the gradient w.r.t. the trunk features.
"""

import numpy as np
import pytest
import torch
from torch import nn

from humanssl.methods.ssprl import SSPRL, SSPRLConfig
from tests.fixtures import conformance, needs_fixture

FILES = ("ssprl_head_state_dict.npz", "ssprl_trunk_features.npz", "ssprl_loss_no_queue.npz",
         "ssprl_loss_with_queue.npz")
pytestmark = [needs_fixture("ssprl", f) for f in FILES]


class FeatureTrunk(nn.Module):
    """Stands in for the trunk: the 'images' are already pooled features."""

    embed_dim = 2048

    def forward(self, x):
        return x


def fixture_config(**overrides) -> SSPRLConfig:
    # ssprl_config_and_keys.json: hidden_mlp 64, output_dim 16, 30 + 15/15 prototypes, levels 2x2 and
    # 3x3, freeze_prototypes_niters 0; queue lengths are those of the fixture's queues
    base = dict(hidden_mlp=64, feat_dim=16, nmb_ptypes=30, nmb_local_ptypes=[15, 15],
                grid_perside=[2, 3], nmb_crops=[2, 6], nmb_loc_views=[2, 2], freeze_prototypes_niters=0,
                queue_length=8, local_queue_length=[24, 36], epoch_queue_starts=10**6)
    return SSPRLConfig(**{**base, **overrides})


def build(with_queue: bool):
    method = SSPRL(fixture_config(), FeatureTrunk())
    heads = np.load(conformance("ssprl", "ssprl_head_state_dict.npz"))
    method.heads.load_state_dict({k: torch.from_numpy(v.astype(np.float32) if v.dtype == np.float16 else v)
                                  for k, v in heads.items()})
    expected = np.load(conformance("ssprl", "ssprl_loss_with_queue.npz" if with_queue else "ssprl_loss_no_queue.npz"))
    if with_queue:
        method.queue.load_(torch.from_numpy(expected["queue_in"]))
        for i in range(2):
            method.local_queues[i].load_(torch.from_numpy(expected[f"local_queue{i}_in"]))
    feats = np.load(conformance("ssprl", "ssprl_trunk_features.npz"))
    assert feats["crop_resolution"].tolist() == [224] * 2 + [96] * 6 + [112] * 8 + [96] * 18
    x = torch.from_numpy(feats["trunk_features"]).clone().requires_grad_(True)  # (34 crops, 2 images, 2048)
    batch = {"image": list(x[:8]), "patches0": list(x[8:16]), "patches1": list(x[16:34])}
    return method, batch, x, expected


def close(actual, expected, rtol, atol, name):
    torch.testing.assert_close(actual.detach(), torch.from_numpy(np.asarray(expected)), rtol=rtol, atol=atol,
                               msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("with_queue", [False, True], ids=["no_queue", "with_queue"])
def test_one_training_step_matches_the_official_train(with_queue):
    method, batch, x, f = build(with_queue)
    queues_before = [q.queue.clone() for q in [method.queue, *method.local_queues]] if with_queue else []
    out = method.run_step(batch, step=0)

    for name, value in [("glb_loss", out.global_loss), ("loc_loss_level0", out.local_losses[0]),
                        ("loc_loss_level1", out.local_losses[1]), ("l2g_loss_level0", out.cross_scale_losses[0]),
                        ("l2g_loss_level1", out.cross_scale_losses[1])]:
        close(value, f[name], 1e-5, 0, name)
    for name, value in [("glb_z", out.global_z), ("glb_logits", out.global_scores),
                        ("loc_z_level0", out.local_z[0]), ("loc_logits_level0", out.local_scores[0]),
                        ("loc_z_level1", out.local_z[1]), ("loc_logits_level1", out.local_scores[1])]:
        close(value, f[name], 1e-5, 1e-6, name)
    for a in range(2):
        close(out.global_codes[a], f[f"global_q_crop{a}"], 1e-5, 1e-8, f"global_q_crop{a}")

    # the engine's sum of training_step's three weighted terms is the official total
    method.begun_step = None  # run the same step again through the engine's entry point
    losses = method.training_step(batch, step=0)
    assert set(losses) == {"global", "local", "cross_scale"}
    total = sum(losses.values())
    close(total, f["total_loss"], 1e-5, 0, "total_loss")
    close(losses["local"], 0.25 * (f["loc_loss_level0"] + f["loc_loss_level1"]), 1e-5, 0, "local")
    close(losses["cross_scale"], 0.25 * (f["l2g_loss_level0"] + f["l2g_loss_level1"]), 1e-5, 0, "cross_scale")

    total.backward()
    h = method.heads
    for name, param in [("grad_ptypes", h.ptypes.weight), ("grad_local_ptypes0", h.local_ptypes0.weight),
                        ("grad_local_ptypes1", h.local_ptypes1.weight), ("grad_l2g_ptypes0", h.l2g_ptypes0.weight),
                        ("grad_l2g_ptypes1", h.l2g_ptypes1.weight),
                        ("grad_projection_head_3_weight", h.projection_head[3].weight),
                        ("grad_l_pro_head1_0_weight", h.l_pro_head1[0].weight)]:
        close(param.grad, f[name], 1e-4, 1e-7, name)
    close(x.grad, f["grad_trunk_features"], 1e-4, 1e-7, "grad_trunk_features")

    if with_queue:
        # the step's Sinkhorn used the stored rows; the new projections enter only after the step
        for before, q in zip(queues_before, [method.queue, *method.local_queues]):
            assert torch.equal(before, q.queue)
        method.after_step(0)
        close(method.queue.queue, f["queue_out"], 1e-5, 1e-6, "queue_out")
        for i in range(2):
            close(method.local_queues[i].queue, f[f"local_queue{i}_out"], 1e-5, 1e-6, f"local_queue{i}_out")


def test_prototypes_are_row_normalised_at_the_start_of_the_step():
    method, batch, _, _ = build(with_queue=False)
    raw = {k: v.detach().clone() for k, v in method.heads.state_dict().items() if "ptypes" in k}
    assert any((w.norm(dim=1) - 1).abs().max() > 1e-2 for w in raw.values())  # the fixture's are not unit rows
    method.training_step(batch, step=0)
    for name, before in raw.items():
        after = method.heads.state_dict()[name]
        torch.testing.assert_close(after.norm(dim=1), torch.ones(after.shape[0]))
        torch.testing.assert_close(after, torch.nn.functional.normalize(before, dim=1))
