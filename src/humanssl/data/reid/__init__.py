"""Re-identification datasets: parse the real folder layouts into train/query/gallery items.

    ds = load_reid_dataset("market1501", "/data")      # -> ReidDataset
    print(ds.summary())
    train_set = ReidImages(ds.train, transform)

The registry holds only the names a user types (configs, command line); code imports the
classes directly.
"""

from __future__ import annotations

import inspect

from ...errors import UserError
from .base import ReidDataset, ReidItem, SplitStats, make_pid2label, official_label_order
from .csv_dataset import CsvReid
from .cuhk03_np import CUHK03NP
from .dukemtmc import DukeMTMCreID
from .images import ReidImages
from .market1501 import Market1501
from .msmt17 import MSMT17
from .occluded_duke import OccludedDuke
from .vehicleid import VehicleID, VehicleIDDataset, vehicleid_trials
from .veri import VeRi776

# Keys are the official config names (DATASETS.NAMES, lower-cased) where one exists.
DATASETS = {
    "market1501": Market1501,
    "dukemtmc": DukeMTMCreID,
    "occ_duke": OccludedDuke,
    "msmt17": MSMT17,
    "cuhk03_np": CUHK03NP,
    "veri": VeRi776,
    "vehicleid": VehicleID,
    "csv": CsvReid,
}

ALIASES = {
    "market": "market1501",
    "market_1501": "market1501",
    "duke": "dukemtmc",
    "dukemtmcreid": "dukemtmc",
    "dukemtmc_reid": "dukemtmc",
    "occluded_duke": "occ_duke",
    "cuhk03np": "cuhk03_np",
    "veri776": "veri",
    "veri_776": "veri",
    "vehicle_id": "vehicleid",
}


def list_datasets() -> list[str]:
    return sorted(DATASETS)


def _key(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in DATASETS:
        raise UserError(f"unknown re-id dataset {name!r}; expected one of {', '.join(list_datasets())}")
    return key


def load_reid_dataset(name: str, root, **options) -> ReidDataset:
    """Parse dataset `name` under `root` (for "csv", root is the CSV file)."""
    cls = DATASETS[_key(name)]
    accepted = [p for p in inspect.signature(cls).parameters if p != "root"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise UserError(
            f"re-id dataset {name!r}: unknown option {', '.join(unknown)}; expected some of {', '.join(accepted)}"
        )
    return cls(root, **options).load()


__all__ = [
    "DATASETS",
    "CUHK03NP",
    "CsvReid",
    "DukeMTMCreID",
    "MSMT17",
    "Market1501",
    "OccludedDuke",
    "ReidDataset",
    "ReidImages",
    "ReidItem",
    "SplitStats",
    "VeRi776",
    "VehicleID",
    "VehicleIDDataset",
    "list_datasets",
    "load_reid_dataset",
    "make_pid2label",
    "official_label_order",
    "vehicleid_trials",
]
