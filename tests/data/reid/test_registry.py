"""The name registry: names, aliases, options."""

import pytest

from humanssl.data.reid import DATASETS, list_datasets, load_reid_dataset
from humanssl.errors import UserError


def test_names():
    assert list_datasets() == ["csv", "cuhk03_np", "dukemtmc", "market1501", "msmt17", "occ_duke", "vehicleid", "veri"]
    assert set(DATASETS) == set(list_datasets())


def test_unknown_name_and_option(tmp_path):
    with pytest.raises(UserError, match="unknown re-id dataset 'cuhk01'; expected one of csv, cuhk03_np"):
        load_reid_dataset("cuhk01", tmp_path)
    with pytest.raises(UserError, match="unknown option test_size; expected some of relabel, pid2label"):
        load_reid_dataset("Market-1501", tmp_path, test_size=800)
