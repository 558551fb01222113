"""Train / test splits by subject, as the gait papers use them.

* CASIA-B "LT" (large-sample training): subjects 001-074 train, 075-124 test. GaitSet drops
  subject 005 (incomplete) -> 73 training ids (`drop_005=True`, its partition file
  `CASIA-B_73_False.npy`); OpenGait's `CASIA-B.json` keeps it (74 / 50). GaitSet's paper also
  trains on the first 24 ("ST") or 62 ("MT") subjects; the test set is always 075-124.
* OU-MVLP: 5153 train / 5154 test subjects, as OpenGait's `OUMVLP.json` lists them: odd ids
  00001-10305 train, even ids and 10307 test.
* `selfgait_released_split` is NOT a standard protocol: the released SelfGait loader cuts the
  sorted sequence list (subject-major) at 80 %, so the last training subject is split between
  train and test and the test subjects are not 075-124. It exists only to reproduce numbers
  from that code; the shipped partition file (= LT minus 005) is the intended protocol.
* `json_split` reads an OpenGait-style `{"TRAIN_SET": [...], "TEST_SET": [...]}` file.
"""

from __future__ import annotations

import inspect
import json
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from humanssl.errors import UserError

from .sequences import GaitDataWarning, GaitSequence

CASIAB_SETTINGS = {"ST": 24, "MT": 62, "LT": 74}
CASIAB_TEST = tuple(f"{i:03d}" for i in range(75, 125))


@dataclass
class GaitSplit:
    name: str
    train: list[GaitSequence]
    test: list[GaitSequence]
    labelled: list[GaitSequence] | None = None  # the labelled part of train, when a label rate is set
    notes: list[str] = field(default_factory=list)

    @property
    def train_subjects(self) -> list[str]:
        return sorted({s.subject for s in self.train})

    @property
    def test_subjects(self) -> list[str]:
        return sorted({s.subject for s in self.test})

    def summary(self) -> str:
        lines = [f"{self.name}: train {len(self.train_subjects)} ids / {len(self.train)} sequences, "
                 f"test {len(self.test_subjects)} ids / {len(self.test)} sequences"]
        if self.labelled is not None:
            lines.append(f"  labelled: {len({s.subject for s in self.labelled})} ids / {len(self.labelled)} sequences")
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def subject_split(name: str, sequences: list[GaitSequence], train_ids, test_ids) -> GaitSplit:
    train_ids, test_ids = set(train_ids), set(test_ids)
    split = GaitSplit(name, [s for s in sequences if s.subject in train_ids],
                      [s for s in sequences if s.subject in test_ids])
    if not split.train or not split.test:
        part = "training" if not split.train else "test"
        have = sorted({s.subject for s in sequences})
        shown = f"{have[0]}..{have[-1]}" if have else "none"
        raise UserError(f"{name}: no {part} sequences; the data holds subjects {shown}; "
                        f"expected some of {min(train_ids if part == 'training' else test_ids)}.."
                        f"{max(train_ids if part == 'training' else test_ids)}")
    return split


def casiab_split(sequences: list[GaitSequence], setting: str = "LT", drop_005: bool = False) -> GaitSplit:
    if setting not in CASIAB_SETTINGS:
        raise UserError(f"CASIA-B setting {setting!r} is not known; expected one of {', '.join(CASIAB_SETTINGS)}")
    train = [f"{i:03d}" for i in range(1, CASIAB_SETTINGS[setting] + 1) if not (drop_005 and i == 5)]
    split = subject_split(f"CASIA-B {setting}", sequences, train, CASIAB_TEST)
    if drop_005:
        split.notes.append("subject 005 dropped from training, as GaitSet does")
    return split


def oumvlp_train_ids(subjects) -> list[str]:
    return [s for s in subjects if int(s) % 2 == 1 and int(s) != 10307]


def oumvlp_split(sequences: list[GaitSequence]) -> GaitSplit:
    subjects = sorted({s.subject for s in sequences})
    train = set(oumvlp_train_ids(subjects))
    return subject_split("OU-MVLP", sequences, train, [s for s in subjects if s not in train])


def json_split(sequences: list[GaitSequence], path) -> GaitSplit:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        train, test = [str(x) for x in data["TRAIN_SET"]], [str(x) for x in data["TEST_SET"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read the partition file {path} ({exc!r}); expected JSON with "
                        f"\"TRAIN_SET\" and \"TEST_SET\" lists of subject ids (OpenGait's format)") from None
    return subject_split(f"partition {path.name}", sequences, train, test)


def first_ids_split(sequences: list[GaitSequence], num_train: int) -> GaitSplit:
    """The first `num_train` subjects (sorted) train, the rest test (small and synthetic sets)."""
    subjects = sorted({s.subject for s in sequences})
    if not 0 < num_train < len(subjects):
        raise UserError(f"num_train={num_train} must leave both splits non-empty; "
                        f"the data has {len(subjects)} subjects")
    return subject_split(f"first {num_train} ids", sequences, subjects[:num_train], subjects[num_train:])


def selfgait_released_split(sequences: list[GaitSequence], partition_rate: float = 0.8,
                            label_rate: float = 0.0) -> GaitSplit:
    """NON-STANDARD: the released SelfGait loader's cut of the sorted sequence list.

    Train = the first `partition_rate` of the sequences sorted by (subject, type, view), test =
    the rest; labelled = the first `label_rate` of train. (The released code takes the labelled
    slice from the wrong list; this takes it from train, as its comments intend.)
    """
    if not 0.0 < partition_rate < 1.0 or not 0.0 <= label_rate <= 1.0:
        raise UserError(f"partition_rate must be in (0, 1) and label_rate in [0, 1]; "
                        f"got {partition_rate}, {label_rate}")
    ordered = sorted(sequences, key=lambda s: (s.subject, s.seq_type, s.view))
    cut = int(len(ordered) * partition_rate)
    train, test = ordered[:cut], ordered[cut:]
    note = ("non-standard: SelfGait's released 80/20 cut of the sequence list; subjects may be in both "
            "train and test; the standard protocol is casiab_split")
    warnings.warn(note, GaitDataWarning, stacklevel=2)
    labelled = train[:int(len(train) * label_rate)] if label_rate > 0 else None
    return GaitSplit(f"selfgait-released-{round(partition_rate * 100)}-{round(100 - partition_rate * 100)}",
                     train, test, labelled, [note])


def labelled_subset(train: list[GaitSequence], rate: float, seed: int = 0) -> list[GaitSequence]:
    """Every sequence of a random `rate` fraction of the training subjects (at least one)."""
    if not 0.0 < rate <= 1.0:
        raise UserError(f"label rate must be in (0, 1], got {rate}")
    subjects = sorted({s.subject for s in train})
    keep = set(random.Random(seed).sample(subjects, max(1, round(rate * len(subjects)))))
    return [s for s in train if s.subject in keep]


SPLITS = {
    "casiab": lambda seqs, **kw: casiab_split(seqs, "LT", **kw),
    "casiab-gaitset": lambda seqs: casiab_split(seqs, "LT", drop_005=True),
    "casiab-mt": lambda seqs, **kw: casiab_split(seqs, "MT", **kw),
    "casiab-st": lambda seqs, **kw: casiab_split(seqs, "ST", **kw),
    "oumvlp": lambda seqs: oumvlp_split(seqs),
    "selfgait-released-80-20": selfgait_released_split,
}


def make_split(name: str, sequences: list[GaitSequence], **options) -> GaitSplit:
    """A split by the name a user types in a config (see SPLITS)."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in SPLITS:
        raise UserError(f"unknown gait split {name!r}; expected one of {', '.join(SPLITS)}")
    try:
        inspect.signature(SPLITS[key]).bind(sequences, **options)
    except TypeError:
        raise UserError(f"gait split {name!r} does not take the options {', '.join(options)}") from None
    return SPLITS[key](sequences, **options)
