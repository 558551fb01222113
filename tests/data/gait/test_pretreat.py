import pickle

import numpy as np
import pytest

from humanssl.data.gait import GaitDataWarning, read_pickle_frames, run_pretreat
from humanssl.data.gait.pretreat import cubic_resize, pretreat_frame
from humanssl.errors import UserError

from .helpers import blob, write_frames


def test_cubic_resize_keeps_constants_and_identity():
    flat = np.full((20, 10), 200, np.uint8)
    assert (cubic_resize(flat, 64, 31) == 200).all()
    img = np.random.default_rng(0).integers(0, 256, (12, 9)).astype(np.uint8)
    assert np.array_equal(cubic_resize(img, 12, 9), img)


def test_frame_is_cropped_resized_and_centred():
    # a 32-row tall, 12-column wide box off to the left: scaled x2 to 64 rows, 24 columns wide
    out = pretreat_frame(blob(48, 40, box=(8, 40, 2, 14)))
    assert out.shape == (64, 44)
    cols = np.flatnonzero(out.max(0) > 127)
    assert (out[0] > 127).any() and (out[-1] > 127).any()  # rows cropped to the foreground
    assert len(cols) == 24 and abs((cols[0] + cols[-1]) / 2 - 21.5) <= 1  # centred on its mass
    gaitset = pretreat_frame(blob(48, 40, box=(8, 40, 2, 14)), width=64)
    assert gaitset.shape == (64, 64) and np.array_equal(gaitset[:, 10:-10], out)


def test_near_empty_frame_is_dropped():
    assert pretreat_frame(blob(box=(10, 15, 10, 17))) is None  # 35 px * 255 <= 10000
    assert pretreat_frame(np.zeros((30, 20), np.uint8)) is None


def make_raw_tree(root):
    write_frames(root / "001" / "nm-01" / "000", [blob()] * 6)
    write_frames(root / "001" / "nm-01" / "018", [blob()] * 3 + [np.zeros((48, 36), np.uint8)])
    write_frames(root / "002" / "bg-01" / "090", [np.zeros((48, 36), np.uint8)] * 2)


@pytest.mark.parametrize("workers", [1, 2])
def test_run_pretreat_writes_tree_and_reports(tmp_path, workers):
    make_raw_tree(tmp_path / "raw")
    with pytest.warns(GaitDataWarning) as caught:
        report = run_pretreat(tmp_path / "raw", tmp_path / "out", workers=workers, progress=False)
    assert (report.sequences, report.written, report.frames_kept, report.frames_dropped) == (3, 2, 9, 3)
    assert report.short == ["001/nm-01/018"] and report.empty == ["002/bg-01/090"]
    assert any("fewer than 5 frames" in str(w.message) for w in caught)
    files = sorted((tmp_path / "out" / "001" / "nm-01" / "000").iterdir())
    assert [f.name for f in files] == [f"f-{i:03d}.png" for i in range(1, 7)]
    assert not (tmp_path / "out" / "002").exists()


def test_pickle_output_is_opengait_layout(tmp_path):
    write_frames(tmp_path / "raw" / "001" / "cl-02" / "180", [blob()] * 5)
    run_pretreat(tmp_path / "raw", tmp_path / "pkl", workers=0, output="pickle", width=64, progress=False)
    path = tmp_path / "pkl" / "001" / "cl-02" / "180" / "180.pkl"
    with open(path, "rb") as f:
        assert isinstance(pickle.load(f), np.ndarray)
    assert read_pickle_frames(path).shape == (5, 64, 64)


def test_oumvlp_distributed_layout_is_rearranged(tmp_path):
    write_frames(tmp_path / "raw" / "Silhouette_015-01" / "00007", [blob()] * 5)
    run_pretreat(tmp_path / "raw", tmp_path / "out", workers=1, progress=False)
    assert len(list((tmp_path / "out" / "00007" / "01" / "015").glob("*.png"))) == 5


def test_bad_paths_are_user_errors(tmp_path):
    make_raw_tree(tmp_path / "raw")
    with pytest.raises(UserError, match="inside the source"):
        run_pretreat(tmp_path / "raw", tmp_path / "raw" / "out", progress=False)
    with pytest.raises(UserError, match="not a folder"):
        run_pretreat(tmp_path / "nowhere", tmp_path / "out", progress=False)
    (tmp_path / "flat").mkdir()
    with pytest.raises(UserError, match="no sequence folders"):
        run_pretreat(tmp_path / "flat", tmp_path / "out", progress=False)
