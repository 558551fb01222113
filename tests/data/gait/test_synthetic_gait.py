import numpy as np

from humanssl.data.gait import GaitSequences, load_casiab, run_pretreat
from humanssl.data.synthetic_gait import render_sequence, sample_gait_identity, write_casiab


def test_deterministic_binary_64x44():
    a = render_sequence(3, 1, "nm-01", "090", num_frames=6)
    assert a.shape == (6, 64, 44) and set(np.unique(a)) == {0, 255}
    assert np.array_equal(a, render_sequence(3, 1, "nm-01", "090", num_frames=6))
    assert not np.array_equal(a, render_sequence(4, 1, "nm-01", "090", num_frames=6))


def test_identity_walk_and_view_change_the_silhouettes():
    assert sample_gait_identity(0, 1) != sample_gait_identity(0, 2)
    side = render_sequence(0, 1, "nm-01", "090", num_frames=12).astype(float)
    front = render_sequence(0, 1, "nm-01", "000", num_frames=12).astype(float)
    # the side view shows the stride: its silhouettes are wider, on average, than the front view's
    assert (side > 0).any(1).sum(-1).mean() > (front > 0).any(1).sum(-1).mean()
    normal = render_sequence(0, 1, "nm-01", "090", num_frames=12)
    coat = render_sequence(0, 1, "cl-01", "090", num_frames=12)
    assert (coat > 0).mean() > (normal > 0).mean()  # the coat adds area
    assert not np.array_equal(render_sequence(0, 1, "bg-01", "090", num_frames=12), normal)


def test_write_casiab_round_trip(tmp_path):
    write_casiab(tmp_path / "syn", 2, types=("nm-01", "bg-01"), views=("000", "090"), frames=(4, 6))
    seqs = load_casiab(tmp_path / "syn", views=("000", "090"))
    assert len(seqs) == 8 and all(4 <= s.num_frames <= 6 for s in seqs)
    assert seqs[0].name == "001/bg-01/000"
    assert GaitSequences(seqs, "all")[0]["silhouettes"].shape[1:] == (64, 44)


def test_raw_output_goes_through_pretreat(tmp_path):
    write_casiab(tmp_path / "raw", 1, types=("cl-01",), views=("036",), frames=(5, 5), raw=True)
    report = run_pretreat(tmp_path / "raw", tmp_path / "out", workers=0, progress=False)
    assert (report.written, report.frames_kept) == (1, 5)
    assert len(load_casiab(tmp_path / "out", views=("036",))) == 1
