"""SS-PRL's step mechanics: queues (start, lengths, when they take part), prototype freezing,
the optimizer, the trunk batching and the batch format. Tiny widths; features stand in for
images except in the one end-to-end test with a real (mini) ResNet trunk."""

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from humanssl.engine.checkpoint import cpu_tensors
from humanssl.engine.larc import LARC
from humanssl.errors import UserError
from humanssl.losses.swav import distributed_sinkhorn
from humanssl.methods.ssprl import SSPRL, SSPRLConfig
from humanssl.models.backbones import resnet_mini

BS = 2


class FeatureTrunk(nn.Module):
    embed_dim = 12

    def forward(self, x):
        return x


def tiny_config(**overrides) -> SSPRLConfig:
    base = dict(nmb_crops=[2, 1], grid_perside=[2], nmb_loc_views=[2], nmb_local_ptypes=[6], lambda1=[0.25],
                lambda2=[0.25], hidden_mlp=16, feat_dim=8, nmb_ptypes=10, queue_length=4,
                local_queue_length=[32], epoch_queue_starts=0, freeze_prototypes_niters=3)
    return SSPRLConfig(**{**base, **overrides})


def feature_batch(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"image": [torch.randn(BS, 12, generator=g) for _ in range(3)],
            "patches0": [torch.randn(BS, 12, generator=g) for _ in range(2 * 4)]}


def make(**overrides) -> SSPRL:
    torch.manual_seed(0)
    return SSPRL(tiny_config(**overrides), FeatureTrunk())


def test_queues_start_at_their_epoch_with_lengths_cut_to_the_batch():
    method = make(epoch_queue_starts=2, queue_length=9, local_queue_length=[19])
    method.configure(total_steps=100, steps_per_epoch=3)
    for step in range(6):
        method.training_step(feature_batch(step), step)
        method.after_step(step)
        assert not method.queue.started and not method.local_queues[0].started
    method.training_step(feature_batch(6), 6)
    # lengths cut to a multiple of batch x processes (9 -> 8, 19 -> 18), one row set per assigned view
    assert method.queue.queue.shape == (2, 8, 8)
    assert method.local_queues[0].queue.shape == (2, 18, 8)
    method.after_step(6)
    # newest projections at the front: crop 0's and crop 1's for the global queue
    out = method.run_step(feature_batch(6), 6)  # same step again: same projections
    torch.testing.assert_close(method.queue.queue[0, :BS], out.global_z[:BS])
    torch.testing.assert_close(method.queue.queue[1, :BS], out.global_z[BS:2 * BS])
    torch.testing.assert_close(method.local_queues[0].queue[1, :4 * BS], out.local_z[0][4 * BS:])


def test_a_queue_too_short_for_one_step_is_a_user_error():
    method = make(local_queue_length=[6])  # a step brings 2 images x 4 patches = 8 rows
    with pytest.raises(UserError, match="queue"):
        method.training_step(feature_batch(0), 0)


def run_until_global_queue_full(method):
    # global queue: 4 rows, 2 per step -> full after 2 steps; local: 32 rows, 8 per step -> half full
    for step in range(2):
        method.training_step(feature_batch(step), step)
        method.after_step(step)
    assert method.queue.full and not method.local_queues[0].full


@pytest.mark.parametrize("shared", [False, True])
def test_a_queue_joins_sinkhorn_when_full_or_with_the_official_shared_flag(shared):
    method = make(share_queue_flag=shared)
    run_until_global_queue_full(method)
    glob, loc = method.queue.queue.clone(), method.local_queues[0].queue.clone()
    out = method.run_step(feature_batch(2), 2)
    c_glob, c_loc = method.heads.ptypes.weight.detach(), method.heads.local_ptypes0.weight.detach()
    scores = out.global_scores.detach()
    for slot in range(2):  # the full global queue always takes part
        expected = distributed_sinkhorn(torch.cat([glob[slot] @ c_glob.t(), scores[slot * BS:(slot + 1) * BS]]))[-BS:]
        torch.testing.assert_close(out.global_codes[slot], expected)
    local = out.local_scores[0].detach().unflatten(0, (2, -1))
    for u in range(2):
        if shared:  # official quirk: the half-filled local queue (zero rows included) takes part too
            expected = distributed_sinkhorn(torch.cat([loc[u] @ c_loc.t(), local[u]]))[-4 * BS:]
        else:
            expected = distributed_sinkhorn(local[u])
        torch.testing.assert_close(out.local_codes[0][u], expected)


def test_prototypes_and_correlation_learners_are_frozen_for_the_first_steps():
    method = make()
    is_prototype = {id(layer.weight) for layer in method.heads.prototype_layers()}
    for step, frozen in [(2, True), (3, False)]:
        method.zero_grad()
        sum(method.training_step(feature_batch(step), step).values()).backward()
        method.after_backward(step)
        for name, p in method.named_parameters():
            if id(p) in is_prototype:
                assert (p.grad is None) == frozen, name
            else:
                assert p.grad is not None, name
        method.after_step(step)
    assert len(is_prototype) == 3 and all("ptypes" in n for n, p in method.named_parameters() if id(p) in is_prototype)


def test_queues_survive_a_checkpoint(tmp_path):
    method = make()
    run_until_global_queue_full(method)
    save_file(cpu_tensors(method.state_dict()), str(tmp_path / "model.safetensors"))
    fresh = make()
    fresh.load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    torch.testing.assert_close(fresh.queue.queue, method.queue.queue)
    torch.testing.assert_close(fresh.local_queues[0].queue, method.local_queues[0].queue)
    assert fresh.queue.full and fresh.local_queues[0].filled == method.local_queues[0].filled == 16


def image_batch(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    # 2 global crops of 32 px, 1 of 16 px; level 0: 2 views x 4 patches of 24 px
    crops = [torch.randn(BS, 3, 32, 32, generator=g) for _ in range(2)] + [torch.randn(BS, 3, 16, 16, generator=g)]
    return {"image": crops, "patches0": [torch.randn(BS, 3, 24, 24, generator=g) for _ in range(8)]}


def test_a_step_with_a_real_trunk_and_the_larc_optimizer():
    torch.manual_seed(0)
    trunk = resnet_mini(width=8)
    method = SSPRL(tiny_config(), trunk)
    batch_sizes = []
    trunk.register_forward_hook(lambda m, inp, out: batch_sizes.append(inp[0].shape[0]))
    groups = method.param_groups()
    assert len(groups) == 1 and len(groups[0]["params"]) == len(list(method.parameters()))
    optimizer = method.make_optimizer(groups)
    assert isinstance(optimizer, LARC) and optimizer.trust_coefficient == 0.001 and not optimizer.clip
    assert optimizer.param_groups[0]["momentum"] == 0.9

    before = {k: v.detach().clone() for k, v in method.state_dict().items() if v.is_floating_point()}
    for group in optimizer.param_groups:  # as the engine does before every step
        group["lr"], group["weight_decay"] = 0.6, 1e-6
    losses = method.training_step(image_batch(0), step=0)
    # one trunk call per run of equal-size global crops, one per pyramid level (both views)
    assert batch_sizes == [2 * BS, 1 * BS, 8 * BS]
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    method.after_backward(0)
    optimizer.step()
    method.after_step(0)
    after = method.state_dict()
    for name in ("heads.ptypes.weight", "heads.local_ptypes0.weight", "heads.l2g_ptypes0.weight"):
        # frozen: only the start-of-step normalisation touched them
        torch.testing.assert_close(after[name], nn.functional.normalize(before[name], dim=1))
    for name in ("backbone.conv1.weight", "heads.projection_head.0.weight", "heads.l_pro_head0.3.weight"):
        assert not torch.equal(after[name], before[name]), name


def test_a_batch_in_the_wrong_layout_is_a_user_error():
    method = make()
    batch = feature_batch(0)
    with pytest.raises(UserError, match=r"batch\['image'\].*3 global crops"):
        method.training_step({**batch, "image": batch["image"][:2]}, 0)
    with pytest.raises(UserError, match=r"batch\['patches0'\].*2 views x 4 patches"):
        method.training_step({**batch, "patches0": batch["patches0"][:4]}, 0)
    with pytest.raises(UserError, match="one per pyramid level"):
        SSPRL(tiny_config(lambda1=[0.25, 0.25]), FeatureTrunk())


class FeatureData(torch.utils.data.Dataset):
    """Samples in the method's batch format, with pooled 'features' for images."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"image": [torch.randn(12, generator=g) for _ in range(3)],
                "patches0": [torch.randn(12, generator=g) for _ in range(8)]}


def test_a_resumed_run_equals_an_uninterrupted_one_queues_included(tmp_path):
    from humanssl.data.collate import collate_samples
    from humanssl.engine import checkpoint
    from humanssl.engine.distributed import DistInfo
    from humanssl.engine.settings import OptimConfig, TrainConfig
    from humanssl.engine.trainer import Trainer

    def trainer(name, resume_from=None, **kw):
        # 4 steps per epoch; queues start at step 4, prototypes free from step 2
        method = make(epoch_queue_starts=1, freeze_prototypes_niters=2)
        train = TrainConfig(epochs=3, batch_size=BS, num_workers=0, progress=False, checkpoint_every=3, **kw)
        optim = OptimConfig(lr=1.2, min_lr=0.0006, warmup_epochs=0, weight_decay=1e-6, weight_decay_end=1e-6,
                            clip_grad=0.0)
        cpu = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
        return Trainer(method, FeatureData(), collate_samples, train=train, optim=optim, run_dir=tmp_path / name,
                       dist=cpu, config_yaml="ssprl: {}\n", resume_from=resume_from)

    full = trainer("a")
    full.fit()
    assert full.method.queue.full and full.method.local_queues[0].full
    part = trainer("b", stop_after_steps=7)
    assert part.fit().finished is False
    assert part.method.queue.full and not part.method.local_queues[0].full  # stopped while filling
    step = checkpoint.latest_checkpoint(tmp_path / "b" / "checkpoints")
    assert step.name == "step_00000006"
    resumed = trainer("b", resume_from=step)
    assert resumed.fit().steps == 12
    a, b = full.method.state_dict(), resumed.method.state_dict()
    assert a.keys() == b.keys() and "queue._extra_state" in a
    for k in a:
        assert torch.equal(a[k], b[k]), k
