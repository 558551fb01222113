import pickle

import numpy as np
import pytest

from humanssl.data.gait import GaitDataWarning, load_casiab, load_oumvlp, read_pickle_frames, write_pickle_frames
from humanssl.errors import UserError

from .helpers import pretreated, write_frames


def casiab_tree(root, views=("000", "018"), size=(64, 64)):
    for subject in ("001", "002"):
        for seq_type in ("nm-01", "cl-02"):
            for view in views:
                write_frames(root / subject / seq_type / view, pretreated(3, size=size))


def test_casiab_png_layout(tmp_path):
    casiab_tree(tmp_path / "CASIA-B")
    seqs = load_casiab(tmp_path, views=("000", "018"))  # the parent of CASIA-B/ is found too
    assert [s.name for s in seqs][:3] == ["001/cl-02/000", "001/cl-02/018", "001/nm-01/000"]
    assert len(seqs) == 8 and all(s.num_frames == 3 and not s.is_pickle for s in seqs)


def test_casiab_missing_views_and_empty_folders_warn_with_counts(tmp_path):
    casiab_tree(tmp_path, views=("000",))
    (tmp_path / "001" / "nm-01" / "018").mkdir()
    with pytest.warns(GaitDataWarning) as caught:
        seqs = load_casiab(tmp_path, views=("000", "018"))
    text = " | ".join(str(w.message) for w in caught)
    assert "1 empty sequence folders" in text and "4 sequences missing from 8" in text
    assert len(seqs) == 4


def test_raw_frames_are_refused_with_the_command_to_run(tmp_path):
    casiab_tree(tmp_path, views=("000",), size=(240, 320))
    with pytest.raises(UserError, match=r"240x320.*gait-pretreat"):
        load_casiab(tmp_path, views=("000",))


def test_wrong_layout_names_the_folder(tmp_path):
    write_frames(tmp_path / "001" / "walk1" / "000", pretreated(2))
    with pytest.raises(UserError, match=r"walk1.*expected layout"):
        load_casiab(tmp_path)
    with pytest.raises(UserError, match="no subject folders"):
        load_casiab(tmp_path / "001")
    with pytest.raises(UserError, match="does not exist"):
        load_casiab(tmp_path / "missing")


def test_opengait_pickles(tmp_path):
    for view in ("000", "018"):
        write_pickle_frames(tmp_path / "001" / "bg-01" / view / f"{view}.pkl", np.stack(pretreated(4)))
    seqs = load_casiab(tmp_path, views=("000", "018"))
    assert [s.is_pickle for s in seqs] == [True, True]
    assert read_pickle_frames(seqs[0].path).shape == (4, 64, 44)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("payload", [Evil(), {"a": 1}, [np.zeros((2, 3)), np.zeros(2)]])
def test_pickles_other_than_arrays_are_refused(tmp_path, payload, capsys):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(UserError, match=str(path.name)):
        read_pickle_frames(path)
    assert "pwned" not in capsys.readouterr().out


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickled_arrays_load_with_every_protocol(tmp_path, protocol):
    frames = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    (tmp_path / "a.pkl").write_bytes(pickle.dumps(frames, protocol=protocol))
    assert np.array_equal(read_pickle_frames(tmp_path / "a.pkl"), frames)


def test_oumvlp_both_layouts(tmp_path):
    for view, seq in (("000", "00"), ("015", "01")):
        write_frames(tmp_path / "raw" / f"Silhouette_{view}-{seq}" / "00003", pretreated(2))
        write_frames(tmp_path / "re" / "00003" / seq / view, pretreated(2))
    with pytest.warns(GaitDataWarning, match="missing"):
        raw = load_oumvlp(tmp_path / "raw")
    with pytest.warns(GaitDataWarning, match="missing"):
        re = load_oumvlp(tmp_path / "re")
    assert [s.name for s in raw] == [s.name for s in re] == ["00003/00/000", "00003/01/015"]
