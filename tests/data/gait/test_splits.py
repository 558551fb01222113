import json

import pytest

from humanssl.data.gait import (GaitDataWarning, GaitSequence, casiab_split, json_split, labelled_subset, make_split,
                                oumvlp_split, selfgait_released_split)
from humanssl.errors import UserError


def seqs(subjects, types=("nm-01", "nm-02"), views=("000", "090")):
    return [GaitSequence(s, t, v, f"/x/{s}/{t}/{v}", 3) for s in subjects for t in types for v in views]


CASIA = seqs([f"{i:03d}" for i in range(1, 125)])


def test_casiab_standard_split():
    split = casiab_split(CASIA)
    assert split.train_subjects == [f"{i:03d}" for i in range(1, 75)]
    assert split.test_subjects == [f"{i:03d}" for i in range(75, 125)]
    gaitset = casiab_split(CASIA, drop_005=True)
    assert len(gaitset.train_subjects) == 73 and "005" not in gaitset.train_subjects
    assert len(casiab_split(CASIA, "ST").train_subjects) == 24 and len(make_split("casiab-mt", CASIA).train_subjects) == 62
    assert make_split("casiab-gaitset", CASIA).train_subjects == gaitset.train_subjects


def test_oumvlp_split_sizes():
    split = oumvlp_split(seqs([f"{i:05d}" for i in range(1, 10308)], types=("00",), views=("000",)))
    assert (len(split.train_subjects), len(split.test_subjects)) == (5153, 5154)
    assert split.train_subjects[:2] == ["00001", "00003"] and split.test_subjects[-2:] == ["10306", "10307"]


def test_selfgait_released_split_is_named_and_warns():
    ten = seqs([f"{i:03d}" for i in range(1, 11)])  # 40 sequences
    with pytest.warns(GaitDataWarning, match="non-standard"):
        split = make_split("selfgait-released-80-20", ten, label_rate=0.25)
    assert len(split.train) == 32 and len(split.test) == 8 and len(split.labelled) == 8
    assert split.train[-1].subject == "008" and split.test[0].subject == "009"
    with pytest.warns(GaitDataWarning):
        odd = selfgait_released_split(seqs(["001", "002", "003"]), partition_rate=0.5)
    assert set(odd.train_subjects) & set(odd.test_subjects) == {"002"}  # a subject on both sides


def test_json_split_and_label_subset(tmp_path):
    path = tmp_path / "part.json"
    path.write_text(json.dumps({"TRAIN_SET": ["001", "002"], "TEST_SET": ["003"]}))
    split = json_split(seqs(["001", "002", "003"]), path)
    assert split.train_subjects == ["001", "002"] and split.test_subjects == ["003"]
    sub = labelled_subset(casiab_split(CASIA).train, 0.1, seed=0)
    assert len({s.subject for s in sub}) == 7 and sub == labelled_subset(casiab_split(CASIA).train, 0.1, seed=0)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(UserError, match="TRAIN_SET"):
        json_split(seqs(["001"]), tmp_path / "bad.json")


def test_user_mistakes():
    with pytest.raises(UserError, match="unknown gait split"):
        make_split("casia", CASIA)
    with pytest.raises(UserError, match="no test sequences"):
        casiab_split(seqs(["001", "002"]))
    with pytest.raises(UserError, match="does not take"):
        make_split("oumvlp", CASIA, drop_005=True)
