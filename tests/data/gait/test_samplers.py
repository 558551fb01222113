import numpy as np
import pytest

from humanssl.data.gait import FrameSampling, GaitTripletSampler
from humanssl.errors import UserError

LABELS = [i // 5 for i in range(40)] + [8]  # 9 ids: 8 with five sequences, one with a single one


def batches(sampler):
    keys = list(sampler)
    return [keys[i:i + sampler.batch_size] for i in range(0, len(keys), sampler.batch_size)]


def test_batches_hold_p_ids_times_m_sequences():
    s = GaitTripletSampler(LABELS, p=3, m=4, seed=1)
    assert (s.batch_size, s.dataset_size, s.batches_per_epoch) == (12, 41, 3)
    for batch in batches(s):
        labels = [LABELS[i] for _, i in batch]
        assert len(set(labels)) == 3 and all(labels.count(x) == 4 for x in set(labels))
        assert all(labels[k * 4:(k + 1) * 4] == [labels[k * 4]] * 4 for k in range(3))


def test_seeded_resumable_and_split_across_ranks():
    a = GaitTripletSampler(LABELS, p=2, m=3, seed=5, batches_per_epoch=6)
    b = GaitTripletSampler(LABELS, p=2, m=3, seed=5, batches_per_epoch=6)
    a.set_position(2)
    b.set_position(2, 4)
    full, tail = batches(a), batches(b)
    assert full[4:] == tail and all(e == 2 for e, _ in sum(full, []))
    c = GaitTripletSampler(LABELS, p=2, m=3, seed=6, batches_per_epoch=6)
    c.set_position(2)
    assert batches(c) != full
    ranks = [GaitTripletSampler(LABELS, p=2, m=3, seed=5, rank=r, world_size=2, batches_per_epoch=3) for r in (0, 1)]
    for r in ranks:
        r.set_position(2)
    assert batches(ranks[0]) == full[0::2] and batches(ranks[1]) == full[1::2]


def test_without_replacement_uses_distinct_sequences_when_possible():
    s = GaitTripletSampler(LABELS, p=9, m=5, seed=0, replace=False)
    indices = [i for _, i in s]
    for label in range(8):
        assert sorted(i for i in indices if LABELS[i] == label) == list(range(label * 5, label * 5 + 5))


def test_too_few_ids_is_a_user_error():
    with pytest.raises(UserError, match="only 9"):
        GaitTripletSampler(LABELS, p=10, m=2)


def test_frame_sampling_modes():
    rng = np.random.default_rng(0)
    w = FrameSampling("window", 30).indices(100, rng)
    assert w == list(range(w[0], w[0] + 30))
    short = FrameSampling("window", 7).indices(4, rng)
    assert len(short) == 7 and set(short) == {0, 1, 2, 3}
    c = FrameSampling("choices", 30).indices(10, rng)
    assert len(c) == 30 and set(c) <= set(range(10))
    assert FrameSampling("all").indices(6) == list(range(6))
    np.random.seed(3)
    first = FrameSampling().indices(50)
    np.random.seed(3)
    assert FrameSampling().indices(50) == first  # the global RNG the engine seeds per sample
    with pytest.raises(UserError, match="expected one of"):
        FrameSampling("random")
