"""Unlabeled datasets (folder, list), unreadable-image handling, batching and the failure guard."""

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from humanssl.data import unlabeled
from humanssl.data.collate import ReadFailureMonitor, collate_samples
from humanssl.data.unlabeled import (
    ImageFolderDataset,
    ImageListDataset,
    UnreadableImageWarning,
)
from humanssl.errors import UserError


def write_image(path: Path, value: int, size=(8, 12), mode="RGB") -> Path:
    """A flat image whose pixel value tells which file was served."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    pixels = np.full((size[1], size[0], channels), value, dtype=np.uint8).squeeze()
    Image.fromarray(pixels, mode=mode).save(path)
    return path


def write_corrupt_jpeg(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8 this is not a jpeg " * 20)
    return path


def write_truncated_png(path: Path) -> Path:
    rng = np.random.default_rng(0)  # noise so the compressed data is long enough to cut
    Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def pixel(sample) -> int:
    return sample["image"].getpixel((0, 0))[0]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "images"
    write_image(root / "b" / "z.png", 10)
    write_image(root / "a.JPG", 20)
    write_image(root / "b" / "deep" / "x.jpeg", 30)
    write_image(root / "c.bmp", 40, mode="L")
    (root / "notes.txt").write_text("not an image")
    write_image(root / "._a.jpg", 99)  # macOS resource fork: hidden, ignored
    write_image(root / ".cache" / "y.png", 99)
    return root


# ---------------------------------------------------------------- discovery


def test_folder_finds_images_recursively_in_sorted_order(tree):
    ds = ImageFolderDataset(tree)
    rel = [Path(p).relative_to(tree).as_posix() for p in ds.paths]
    assert rel == ["a.JPG", "b/deep/x.jpeg", "b/z.png", "c.bmp"]
    assert len(ds) == 4
    assert [pixel(ds[i]) for i in range(4)] == [20, 30, 10, 40]


def test_sample_is_rgb_pil_without_transform_and_transformed_with_one(tree):
    sample = ImageFolderDataset(tree)[3]  # the grayscale bmp
    assert sample["image"].mode == "RGB" and sample["image"].size == (8, 12)
    assert sample["index"] == 3 and sample["failed_reads"] == []
    ds = ImageFolderDataset(tree, transform=lambda img: img.size)
    assert ds[0]["image"] == (8, 12)


def test_list_file_with_comments_blank_lines_and_relative_paths(tmp_path, tree):
    listing = tmp_path / "lists" / "train.txt"
    listing.parent.mkdir()
    write_image(tmp_path / "lists" / "near.png", 50)
    absolute = tree / "c.bmp"
    listing.write_text(f"# pretraining subset\n\nnear.png\n  {absolute}  \n# done\n")
    ds = ImageListDataset(listing)
    assert list(ds.paths) == [str(tmp_path / "lists" / "near.png"), str(absolute)]
    assert [pixel(ds[i]) for i in range(2)] == [50, 40]

    listing.write_text("b/z.png\na.JPG\n")
    ds = ImageListDataset(listing, root=tree)  # list order kept, root used for relative paths
    assert [pixel(ds[i]) for i in range(2)] == [10, 20]


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p / "nowhere", "does not exist"),
        (lambda p: write_image(p / "one.png", 1), "is not a folder"),
        (lambda p: (p / "empty").mkdir() or p / "empty", ".jpg"),
    ],
    ids=["missing", "a-file", "empty"],
)
def test_bad_folder_is_a_user_error_naming_it(tmp_path, make, expected):
    path = make(tmp_path)
    with pytest.raises(UserError) as err:
        ImageFolderDataset(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_folder_without_images_lists_accepted_extensions(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("x")
    with pytest.raises(UserError, match=r"\.png.*\.webp.*\.tiff"):
        ImageFolderDataset(tmp_path / "docs")


def test_bad_list_files_are_user_errors(tmp_path):
    missing = tmp_path / "missing.txt"
    with pytest.raises(UserError, match=str(missing)):
        ImageListDataset(missing)

    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n")
    with pytest.raises(UserError, match=r"empty\.txt.*names no images.*\.jpeg"):
        ImageListDataset(empty)

    csv = tmp_path / "labels.txt"
    csv.write_text("a.jpg\nb.jpg,3\n")
    with pytest.raises(UserError, match=r"labels\.txt line 2: 'b\.jpg,3'"):
        ImageListDataset(csv)

    good = tmp_path / "good.txt"
    good.write_text("a.jpg\n")
    with pytest.raises(UserError, match=r"image root .*nowhere.* is not a folder"):
        ImageListDataset(good, root=tmp_path / "nowhere")


# ---------------------------------------------------------------- unreadable images


@pytest.fixture
def damaged(tmp_path):
    root = tmp_path / "damaged"
    write_image(root / "0.png", 0)
    write_corrupt_jpeg(root / "1.jpg")
    write_truncated_png(root / "2.png")
    write_image(root / "3.png", 3)
    return root


def test_corrupt_and_truncated_images_are_skipped_and_reported(damaged):
    ds = ImageFolderDataset(damaged)
    with pytest.warns(UnreadableImageWarning) as record:
        sample = ds[1]
    assert sample["index"] == 1  # the slot asked for, served by the next readable image
    assert pixel(sample) == 3
    assert [Path(p).name for p in sample["failed_reads"]] == ["1.jpg", "2.png"]
    assert {Path(str(w.message).split()[3]).name for w in record} == {"1.jpg", "2.png"}

    # Same answer every time (deterministic), but no second warning for the same paths.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = ds[2]
    assert pixel(again) == 3 and [Path(p).name for p in again["failed_reads"]] == ["2.png"]


def test_skipping_wraps_around_the_end(damaged):
    write_corrupt_jpeg(damaged / "9.jpg")
    ds = ImageFolderDataset(damaged)
    with pytest.warns(UnreadableImageWarning):
        sample = ds[4]
    assert pixel(sample) == 0 and sample["index"] == 4


def test_a_file_that_vanished_is_skipped(damaged):
    ds = ImageFolderDataset(damaged)
    (damaged / "0.png").unlink()
    with pytest.warns(UnreadableImageWarning) as record:
        sample = ds[0]
    assert pixel(sample) == 3
    assert "0.png (FileNotFoundError" in str(record[0].message)


def test_failed_reads_do_not_consume_transform_randomness(damaged):
    ds = ImageFolderDataset(damaged, transform=lambda img: torch.rand(1).item())
    torch.manual_seed(0)
    clean = ds[0]["image"]
    torch.manual_seed(0)
    with pytest.warns(UnreadableImageWarning):
        skipped = ds[1]["image"]
    assert clean == skipped


def test_every_image_unreadable_is_a_user_error(tmp_path):
    write_corrupt_jpeg(tmp_path / "a.jpg")
    write_truncated_png(tmp_path / "b.png")
    ds = ImageFolderDataset(tmp_path)
    with pytest.warns(UnreadableImageWarning), pytest.raises(UserError, match="none of its 2 images"):
        ds[0]


def test_warnings_stop_after_a_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(unlabeled, "MAX_WARNINGS", 2)
    for i in range(5):
        write_corrupt_jpeg(tmp_path / f"{i}.jpg")
    write_image(tmp_path / "9.png", 9)
    with pytest.warns(UnreadableImageWarning) as record:
        sample = ImageFolderDataset(tmp_path)[0]
    assert len(sample["failed_reads"]) == 5
    assert len(record) == 3 and "no further warnings" in str(record[-1].message)


# ---------------------------------------------------------------- batching


def test_collate_stacks_crops_ints_and_joins_failed_reads():
    samples = [
        {
            "image": [torch.full((3, 8, 4), float(i)), torch.zeros(3, 4, 2), torch.ones(3, 4, 2)],
            "index": i,
            "failed_reads": [f"bad{i}.jpg"] * i,
            "name": f"s{i}",
        }
        for i in range(3)
    ]
    batch = collate_samples(samples)
    assert [tuple(c.shape) for c in batch["image"]] == [(3, 3, 8, 4), (3, 3, 4, 2), (3, 3, 4, 2)]
    assert batch["image"][0][:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]
    assert batch["index"].dtype == torch.long and batch["index"].tolist() == [0, 1, 2]
    assert batch["failed_reads"] == ["bad1.jpg", "bad2.jpg", "bad2.jpg"]
    assert batch["name"] == ["s0", "s1", "s2"]

    single = collate_samples([{"image": torch.zeros(3, 2, 2)}, {"image": torch.ones(3, 2, 2)}])
    assert single["image"].shape == (2, 3, 2, 2)


def test_collate_names_the_key_when_sizes_differ():
    samples = [{"image": torch.zeros(3, 4, 4)}, {"image": torch.zeros(3, 5, 4)}]
    with pytest.raises(UserError, match="'image'.*fixed size"):
        collate_samples(samples)


def test_dataset_in_worker_processes(damaged):
    ds = pickle.loads(pickle.dumps(ImageFolderDataset(damaged, transform=to_tensor)))
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreadableImageWarning)
        batches = list(loader)
    assert [b["image"].shape for b in batches] == [(2, 3, 12, 8)] * 2
    assert sum(len(b["failed_reads"]) for b in batches) == 3  # index 1 skips two, index 2 one


def to_tensor(img):  # module level: picklable for worker processes
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


# ---------------------------------------------------------------- failure guard


def test_monitor_allows_up_to_the_threshold_and_raises_above():
    ok = ReadFailureMonitor(max_fraction=0.01, min_reads=100)
    ok.update(99, ["rare.jpg"])  # 1 of 100 = 1%: not above
    assert ok.num_failed == 1 and ok.num_reads == 100
    assert ok.summary() == "skipped 1 unreadable image (1 failed reads)"

    bad = ReadFailureMonitor(max_fraction=0.01, min_reads=100)
    paths = [f"/data/bad{i}.jpg" for i in range(7)]
    with pytest.raises(UserError) as err:
        bad.update(93, paths)
    message = str(err.value)
    assert "7 of 100 image reads failed" in message and "1.00%" in message
    assert "/data/bad4.jpg" in message and "/data/bad5.jpg" not in message  # five examples


def test_monitor_waits_for_min_reads_and_counts_distinct_paths():
    monitor = ReadFailureMonitor(max_fraction=0.01, min_reads=100)
    monitor.update(8, ["a.jpg", "b.jpg"])  # 20%, but only 10 reads so far
    monitor.update(88, ["a.jpg"])  # 3 of 99
    with pytest.raises(UserError, match="4 of 100"):
        monitor.update(0, ["b.jpg"])
    assert monitor.summary().startswith("skipped 2 unreadable images")

    tiny = ReadFailureMonitor(max_fraction=0.01, min_reads=min(100, 4))  # a 4-image dataset
    with pytest.raises(UserError):
        tiny.update(3, ["x.jpg"])


def test_monitor_state_round_trip_and_bad_threshold():
    a = ReadFailureMonitor(0.5, min_reads=10)
    a.update(5, ["x.jpg"])
    b = ReadFailureMonitor(0.5, min_reads=10)
    b.load_state_dict(a.state_dict())
    assert (b.num_reads, b.num_failed, list(b.failed_paths)) == (6, 1, ["x.jpg"])
    assert ReadFailureMonitor().summary() == "no unreadable images"
    with pytest.raises(UserError, match="between 0 and 1"):
        ReadFailureMonitor(max_fraction=1.5)
