"""PK sampler: batch composition, determinism, process shares, resume, Trainer wiring."""

from collections import Counter

import pytest
import torch

from humanssl.data.collate import collate_samples
from humanssl.data.pk_sampler import PKSampler
from humanssl.engine.distributed import DistInfo
from humanssl.engine.settings import OptimConfig, TrainConfig
from humanssl.engine.trainer import Trainer
from humanssl.errors import UserError
from humanssl.methods.base import Method

# 10 ids with 1..10 images each, interleaved in the dataset
PIDS = [pid for n in range(10) for pid in range(10) if pid >= n]


def batches(sampler):
    flat = list(sampler)
    assert len(flat) == len(sampler)
    assert all(epoch == sampler.epoch for epoch, _ in flat)
    idx = [i for _, i in flat]
    return [idx[s:s + sampler.batch_size] for s in range(0, len(idx), sampler.batch_size)]


def test_every_batch_has_p_ids_times_k_images():
    s = PKSampler(PIDS, p=3, k=4, seed=0)
    got = batches(s)
    assert len(got) == s.batches_per_epoch > 0
    replaced = False
    for batch in got:
        counts = Counter(PIDS[i] for i in batch)
        assert len(counts) == 3 and set(counts.values()) == {4}
        for j in range(0, 12, 4):  # the K images of an id are consecutive: the P x K layout
            group = batch[j:j + 4]
            assert len({PIDS[i] for i in group}) == 1
            if PIDS.count(PIDS[group[0]]) >= 4:
                assert len(set(group)) == 4  # enough images: no repeats
            else:
                replaced |= len(set(group)) < 4  # fewer than K: drawn with replacement
    assert replaced


def test_epoch_length_is_fixed_and_uses_whole_groups():
    s = PKSampler(PIDS, p=3, k=4, seed=1)
    groups = sum(max(1, PIDS.count(pid) // 4) for pid in set(PIDS))
    assert s.batches_per_epoch == groups // 3
    for epoch in range(5):
        s.set_position(epoch)
        assert len(batches(s)) == s.batches_per_epoch


def test_order_depends_on_seed_and_epoch_only():
    a, b, c = PKSampler(PIDS, 3, 4, seed=0), PKSampler(PIDS, 3, 4, seed=0), PKSampler(PIDS, 3, 4, seed=1)
    assert batches(a) == batches(b)
    assert batches(a) != batches(c)
    b.set_position(1)
    assert batches(a) != batches(b)


def test_processes_get_disjoint_shares_of_one_epoch():
    whole = PKSampler(PIDS, 2, 2, seed=3)
    ranks = [PKSampler(PIDS, 2, 2, seed=3, rank=r, world_size=3) for r in range(3)]
    shares = [batches(r) for r in ranks]
    assert len({len(s) for s in shares}) == 1 and len(shares[0]) == ranks[0].batches_per_epoch
    epoch = whole.epoch_batches(0)
    dealt = [b for step in zip(*shares) for b in step]  # step by step, rank 0, 1, 2
    assert dealt == epoch[:len(dealt)]
    assert len(dealt) == len(epoch) - len(epoch) % 3


def test_resume_mid_epoch_continues_the_same_order():
    s = PKSampler(PIDS, 3, 2, seed=0)
    s.set_position(2)
    full = batches(s)
    s.set_position(2, 3)
    assert batches(s) == full[3:]


def test_too_few_ids_is_a_clear_error():
    with pytest.raises(UserError, match="sampler.p=11"):
        PKSampler(PIDS, p=11, k=2)


class PidData(torch.utils.data.Dataset):
    def __len__(self):
        return len(PIDS)

    def __getitem__(self, i):
        return {"x": torch.full((2,), float(i)), "pid": PIDS[i]}


class Recorder(Method):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(2))
        self.seen = []

    def training_step(self, batch, step):
        self.seen.append(batch["pid"].tolist())
        return {"l": (self.w * batch["x"]).pow(2).mean()}

    def downstream_backbone(self):
        return self


CPU = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def make_trainer(tmp_path, sampler, batch_size):
    return Trainer(Recorder(), PidData(), collate_samples,
                   train=TrainConfig(epochs=2, batch_size=batch_size, num_workers=0, progress=False),
                   optim=OptimConfig(name="sgd"), run_dir=tmp_path, dist=CPU, config_yaml="", sampler=sampler)


def test_trainer_draws_batches_from_the_given_sampler(tmp_path):
    sampler = PKSampler(PIDS, 3, 2, seed=0)
    trainer = make_trainer(tmp_path, sampler, 6)
    assert trainer.fit().steps == 2 * sampler.batches_per_epoch
    expected = [[PIDS[i] for i in b] for e in range(2) for b in sampler.epoch_batches(e)]
    assert trainer.method.seen == expected


def test_trainer_refuses_a_sampler_with_another_batch_size(tmp_path):
    with pytest.raises(UserError, match="train.batch_size"):
        make_trainer(tmp_path, PKSampler(PIDS, 3, 2), 8)
