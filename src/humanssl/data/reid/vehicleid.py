"""VehicleID (Liu et al., CVPR 2016): 13,164 training vehicles; test sets of 800/1,600/2,400.

    VehicleID_V1.0/image/0001001.jpg
    VehicleID_V1.0/train_test_split/train_list.txt        "0001001 1" = image name, vehicle id
    VehicleID_V1.0/train_test_split/test_list_{800,1600,2400}.txt

There are no camera labels. The protocol draws, for every test vehicle, one random image as
its gallery and keeps the rest as queries, and averages over 10 such draws. Queries get camera
0 and gallery images camera 1, so the Market-style "same id, same camera" filter of the
evaluation removes nothing. `vehicleid_trials` gives the draws from a seed; draw 0 of seed 0
equals the official loader's after `random.seed(0)`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import UserError
from .base import ReidDataset, ReidItem, assemble
from .layout import find_dataset_dir, read_text_lines

NUM_TRAIN_VEHICLES = 13164
STANDARD_TEST_SIZES = (800, 1600, 2400)
LAYOUT = "<root>/VehicleID_V1.0/image/*.jpg and <root>/VehicleID_V1.0/train_test_split/{train_list,test_list_800}.txt"
QUERY_CAMERA, GALLERY_CAMERA = 0, 1


def read_split_list(title: str, path: Path, image_dir: Path, viewid: int) -> list[ReidItem]:
    items = []
    for number, line in read_text_lines(title, path):
        fields = line.split()
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise UserError(
                f"{title}: {path} line {number}: {line!r} is not 'image_name vehicle_id'; "
                "expected lines like '0001001 1'"
            )
        items.append(ReidItem(str(image_dir / f"{fields[0]}.jpg"), int(fields[1]), 0, viewid))
    if not items:
        raise UserError(f"{title}: {path} holds no entries; expected lines like '0001001 1'")
    return items


Draw = tuple[list[ReidItem], list[ReidItem]]  # (query, gallery)


def vehicleid_trials(test_items: list[ReidItem], num_trials: int = 10, seed: int = 0) -> list[Draw]:
    """`num_trials` (query, gallery) draws over the test images, the same for the same seed.

    One random stream runs through all draws (as the official test loop does, loading the set
    anew per trial without reseeding); per vehicle, in list order, one image goes to the
    gallery and the others, in list order, to the query.
    """
    by_vehicle: dict[int, list[ReidItem]] = {}
    for it in test_items:
        by_vehicle.setdefault(it.pid, []).append(it)
    rng = random.Random(seed)
    trials = []
    for _ in range(num_trials):
        query, gallery = [], []
        for images in by_vehicle.values():
            pick = rng.randrange(len(images))  # the draw random.choice makes
            gallery.append(images[pick]._replace(camid=GALLERY_CAMERA))
            query += [im._replace(camid=QUERY_CAMERA) for k, im in enumerate(images) if k != pick]
        trials.append((query, gallery))
    return trials


@dataclass
class VehicleIDDataset(ReidDataset):
    """A VehicleID split: query/gallery hold one draw; `trials()` gives the protocol's ten."""

    test_items: list[ReidItem] = field(default_factory=list)  # every test image, camid 0
    seed: int = 0

    def trials(self, num_trials: int = 10) -> list[Draw]:
        return vehicleid_trials(self.test_items, num_trials, self.seed)


class VehicleID:
    title = "VehicleID"
    candidates = ["VehicleID_V1.0", "VehicleID", "."]

    def __init__(self, root, test_size: int = 800, seed: int = 0, relabel: str = "official",
                 pid2label: dict | None = None, check_counts: bool = True, official_view_ids: bool = False):
        if not isinstance(test_size, int) or test_size < 1:
            raise UserError(
                f"{self.title}: test_size must be a positive integer (usually one of {STANDARD_TEST_SIZES}), "
                f"got {test_size!r}"
            )
        self.root, self.test_size, self.seed = root, test_size, int(seed)
        self.relabel, self.pid2label, self.check_counts = relabel, pid2label, check_counts
        # The official loader sets view id 1 on every image (meaningless); 0 unless parity needs it.
        self.viewid = 1 if official_view_ids else 0

    def load(self) -> VehicleIDDataset:
        test_list = f"train_test_split/test_list_{self.test_size}.txt"
        parts = ["image", "train_test_split/train_list.txt", test_list]
        layout = LAYOUT.replace("test_list_800", f"test_list_{self.test_size}")
        folder = find_dataset_dir(self.title, self.root, self.candidates, parts, layout)
        image_dir = folder / "image"
        train = read_split_list(self.title, folder / "train_test_split/train_list.txt", image_dir, self.viewid)
        test = read_split_list(self.title, folder / test_list, image_dir, self.viewid)
        # The official loader lists the training images vehicle by vehicle, in ascending id order.
        train.sort(key=lambda it: it.pid)
        if self.check_counts:
            self._check_count("training", folder / "train_test_split/train_list.txt", train, NUM_TRAIN_VEHICLES)
            self._check_count("test", folder / test_list, test, self.test_size)
        query, gallery = vehicleid_trials(test, 1, self.seed)[0]
        where = {"train": str(folder / "train_test_split/train_list.txt"), "query": str(folder / test_list),
                 "gallery": str(folder / test_list)}
        base = assemble(self.title, folder, train, query, gallery, relabel=self.relabel, pid2label=self.pid2label,
                        notes=[f"test_size {self.test_size}, draw 0 of seed {self.seed}"], where=where)
        return VehicleIDDataset(**vars(base), test_items=test, seed=self.seed)

    def _check_count(self, what: str, path: Path, items: list[ReidItem], expected: int) -> None:
        found = len({it.pid for it in items})
        if found != expected:
            raise UserError(
                f"{self.title}: {path} lists {found} {what} vehicles, expected {expected}; "
                "a damaged or different release (check_counts=False accepts it)"
            )
