"""Gait data: silhouette sequences of CASIA-B and OU-MVLP in their usual layouts, the
pre-treatment command, the standard splits, the P x M sampler and frame sampling.

    seqs = load_casiab("/data/CASIA-B-pretreated")              # or an OpenGait .pkl tree
    split = casiab_split(seqs, drop_005=True)                   # GaitSet's 73 / 50 ids
    train = GaitSequences(split.train, FrameSampling("window", 30))
    sampler = GaitTripletSampler(train.labels, p=8, m=16, seed=0)   # Trainer(..., sampler=sampler)
    test = GaitSequences(split.test, "all")                     # DataLoader(..., collate_fn=collate_packed)
"""

from .casiab import load_casiab
from .opengait_pickle import read_pickle_frames, write_pickle_frames
from .oumvlp import load_oumvlp
from .pretreat import PretreatReport, pretreat_frame, run_pretreat
from .samplers import FrameSampling, GaitTripletSampler
from .sequences import (GaitDataWarning, GaitSequence, GaitSequences, collate_clips, collate_packed, read_frame,
                        unpack)
from .splits import (GaitSplit, casiab_split, first_ids_split, json_split, labelled_subset, make_split,
                     oumvlp_split, selfgait_released_split)

__all__ = [
    "FrameSampling", "GaitDataWarning", "GaitSequence", "GaitSequences", "GaitSplit", "GaitTripletSampler",
    "PretreatReport", "casiab_split", "collate_clips", "collate_packed", "first_ids_split", "json_split",
    "labelled_subset", "load_casiab", "load_oumvlp", "make_split", "oumvlp_split", "pretreat_frame",
    "read_frame", "read_pickle_frames", "run_pretreat", "selfgait_released_split", "unpack", "write_pickle_frames",
]
