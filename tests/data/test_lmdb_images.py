"""LUPerson-style LMDB reading: both layouts, bad values skipped, safe key files, clear errors."""

import io
import pickle
import sys

import pytest
from PIL import Image
from torch.utils.data import DataLoader

from humanssl.data.lmdb_images import LMDBImageDataset
from humanssl.errors import UserError


def test_missing_lmdb_package_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "lmdb", None)  # import lmdb now raises ImportError
    with pytest.raises(UserError, match="pip install lmdb"):
        LMDBImageDataset(tmp_path)


def jpeg(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 32), color).save(buf, format="JPEG")
    return buf.getvalue()


def write_db(folder, items):
    lmdb = pytest.importorskip("lmdb")
    folder.mkdir(parents=True)
    with lmdb.open(str(folder), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for key, value in items:
            txn.put(key.encode("ascii"), value)


COLORS = {"00_00_0000_00000000": (200, 0, 0), "00_00_0000_00000001": (0, 200, 0), "00_01_0003_00000000": (0, 0, 200)}


def luperson(tmp_path, keys_obj=None):
    root = tmp_path / "lmdb_300_30"
    items = [(k, jpeg(c)) for k, c in COLORS.items()] + [("00_01_0003_00000001", b"not an image")]
    write_db(root / "lmdb", items)
    keys = list(COLORS) + ["00_01_0003_00000001"]
    # the release's keys.pkl is a dict with keys and pids
    obj = keys_obj if keys_obj is not None else {"keys": keys, "pids": [0, 0, 1, 1]}
    (root / "keys.pkl").write_bytes(pickle.dumps(obj))
    return root


def test_luperson_folder_with_keys_pickle(tmp_path):
    ds = LMDBImageDataset(luperson(tmp_path))
    assert len(ds) == 4
    for i, color in enumerate(COLORS.values()):
        sample = ds[i]
        assert sample["index"] == i and sample["failed_reads"] == []
        r, g, b = sample["image"].getpixel((8, 16))
        assert max(abs(r - color[0]), abs(g - color[1]), abs(b - color[2])) < 20
    with pytest.warns(UserWarning, match="00_01_0003_00000001"):
        bad = ds[3]  # undecodable: the next key (wrapping round) is served instead
    assert bad["failed_reads"] == ["00_01_0003_00000001"] and bad["index"] == 3
    assert bad["image"].getpixel((8, 16))[0] > 150  # key 0, the red one
    # a worker gets the dataset pickled; the open environment must not travel with it
    clone = pickle.loads(pickle.dumps(ds))
    assert clone[1]["image"].getpixel((8, 16))[1] > 150


def test_bare_database_folder_lists_its_keys(tmp_path):
    write_db(tmp_path / "db", [(k, jpeg(c)) for k, c in COLORS.items()])
    ds = LMDBImageDataset(tmp_path / "db", transform=_size)
    assert len(ds) == 3 and ds[2]["image"] == (16, 32)
    # a forked worker inherits the handle the parent just used and must open its own
    loader = DataLoader(ds, batch_size=3, num_workers=1, collate_fn=lambda s: [x["image"] for x in s])
    assert next(iter(loader)) == [(16, 32)] * 3


def _size(img):
    return img.size


def test_key_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this would run",))
    root = luperson(tmp_path, keys_obj=[Evil()])
    with pytest.raises(UserError, match="cannot read the key list"):
        LMDBImageDataset(root)


def test_wrong_paths_get_clear_messages(tmp_path):
    pytest.importorskip("lmdb")
    with pytest.raises(UserError, match="does not exist"):
        LMDBImageDataset(tmp_path / "nope")
    Image.new("RGB", (8, 8)).save(tmp_path / "a.jpg")
    with pytest.raises(UserError, match="data.source=folder"):
        LMDBImageDataset(tmp_path)
