import numpy as np
import pytest
import torch

from humanssl.data.gait import (FrameSampling, GaitSequences, collate_clips, collate_packed, load_casiab, unpack,
                                write_pickle_frames)
from humanssl.data.gait.sequences import GaitDataWarning
from humanssl.models.gaitset import GaitSet

from .helpers import pretreated, write_frames


def tree(root, lengths=(5, 8)):
    for subject, n in zip(("001", "002"), lengths):
        write_frames(root / subject / "nm-01" / "090", pretreated(n, size=(64, 64)))
    return load_casiab(root, views=("090",))


def test_window_samples_are_cut_to_64x44_and_in_unit_range(tmp_path):
    ds = GaitSequences(tree(tmp_path), FrameSampling("window", 4))
    np.random.seed(0)
    s = ds[1]
    x = s["silhouettes"]
    assert x.shape == (4, 64, 44) and x.dtype == torch.float32 and set(x.unique().tolist()) <= {0.0, 1.0}
    rows = x.amax(-1).sum(-1)  # frame i has i+1 foreground rows: a window is consecutive frames
    assert torch.equal(rows.diff(), torch.ones(3))
    assert (s["label"], s["subject"], s["seq_type"], s["view"], s["failed_reads"]) == (1, "002", "nm-01", "090", [])


def test_bad_frames_are_skipped_and_reported(tmp_path):
    seqs = tree(tmp_path)
    folder = tmp_path / "001" / "nm-01" / "090"
    (folder / "f-002.png").write_bytes(b"not a png")
    write_frames(folder, [np.zeros((50, 50), np.uint8)], prefix="g")  # wrong size
    ds = GaitSequences(seqs, "all")
    with pytest.warns(GaitDataWarning, match="skipping"):
        s = ds[0]
    assert sorted(p.split("/")[-1] for p in s["failed_reads"]) == ["f-002.png", "g-001.png"]
    assert s["silhouettes"].shape == (6, 64, 44)  # bad frames replaced by their nearest good one


def test_unreadable_sequence_is_replaced_by_the_next(tmp_path):
    seqs = tree(tmp_path)
    write_pickle_frames(tmp_path / "bad.pkl", np.zeros((3, 50, 50), np.uint8))
    bad = type(seqs[0])("000", "nm-01", "090", str(tmp_path / "bad.pkl"), -1)
    ds = GaitSequences([bad] + seqs, "all")
    with pytest.warns(GaitDataWarning):
        s = ds[0]
    assert s["subject"] == "001" and s["failed_reads"] == [str(tmp_path / "bad.pkl")]


def test_packed_collate_feeds_gaitset_test_mode(tmp_path):
    ds = GaitSequences(tree(tmp_path), "all")
    batch = collate_packed([ds[0], ds[1]])
    assert batch["silhouettes"].shape == (1, 13, 64, 44) and batch["batch_frame"] == [5, 8]
    assert batch["label"].tolist() == [0, 1] and batch["view"] == ["090", "090"]
    parts = unpack(batch["silhouettes"], batch["batch_frame"])
    assert torch.equal(parts[1], ds[1]["silhouettes"])
    torch.manual_seed(0)
    out = GaitSet(hidden_dim=8).eval()(batch["silhouettes"], batch["batch_frame"])
    assert out.shape[0] == 2


def test_clip_collate_stacks_fixed_windows(tmp_path):
    ds = GaitSequences(tree(tmp_path), FrameSampling("choices", 7))
    batch = collate_clips([ds[0], ds[1]])
    assert batch["silhouettes"].shape == (2, 7, 64, 44) and batch["label"].tolist() == [0, 1]


def test_sampler_and_seeded_loading_make_training_batches(tmp_path):
    from torch.utils.data import DataLoader

    from humanssl.data.gait import GaitTripletSampler
    from humanssl.data.samplers import SeededDataset

    ds = GaitSequences(tree(tmp_path, lengths=(9, 12)), FrameSampling("window", 4))
    sampler = GaitTripletSampler(ds.labels, p=2, m=3, seed=0, batches_per_epoch=2)

    def run():
        loader = DataLoader(SeededDataset(ds, seed=1), batch_size=sampler.batch_size, sampler=sampler,
                            collate_fn=collate_clips)
        return [b["silhouettes"] for b in loader]

    first, again = run(), run()
    assert len(first) == 2 and first[0].shape == (6, 4, 64, 44)
    assert all(torch.equal(a, b) for a, b in zip(first, again))  # windows fixed by (seed, epoch, index)
