"""The synthetic person world: determinism, identity vs camera effects, splits, Market files."""

import itertools
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from humanssl.data import synthetic_render as R
from humanssl.data.synthetic import (
    LabeledImage,
    SyntheticLabeled,
    SyntheticPersons,
    SyntheticUnlabeled,
    labeled_split,
    sample_grid,
    write_market1501,
)
from humanssl.errors import UserError

SIZE = (64, 32)


@pytest.fixture(scope="module")
def world():
    return SyntheticPersons(seed=0, num_cameras=6, image_size=SIZE)


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32)


def torso_colour(world, pid, camid, index):
    """Mean colour of the middle of the upper garment, located through the layout."""
    img, layout = world.render_with_layout(pid, camid, index)
    x0, y0, x1, y1 = layout["torso"]
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 4, (y1 - y0) / 4
    return pixels(img)[int(cy - hh) : int(cy + hh) + 1, int(cx - hw) : int(cx + hw) + 1].reshape(-1, 3).mean(0)


# ----------------------------------------------------------------------------- rendering


def test_render_is_rgb_of_the_requested_size(world):
    img = world.render(3, 2, 7)
    assert img.mode == "RGB" and img.size == (SIZE[1], SIZE[0])
    assert SyntheticPersons().render(1, 1, 0).size == (128, 256)  # default H x W = 256 x 128


def test_same_arguments_give_bit_identical_images_in_a_fresh_world(world):
    a = world.render(5, 3, 11)
    R.sample_identity.cache_clear()
    R.sample_camera.cache_clear()
    b = SyntheticPersons(seed=0, num_cameras=6, image_size=SIZE).render(5, 3, 11)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_another_seed_is_another_world(world):
    other = SyntheticPersons(seed=1, num_cameras=6, image_size=SIZE)
    assert not np.array_equal(np.asarray(world.render(5, 3, 11)), np.asarray(other.render(5, 3, 11)))
    clothes = lambda seed: [(R.sample_identity(seed, p).upper, R.sample_identity(seed, p).lower) for p in range(1, 21)]
    assert clothes(0) != clothes(1)


def test_pose_index_changes_the_image(world):
    assert not np.array_equal(np.asarray(world.render(5, 3, 0)), np.asarray(world.render(5, 3, 1)))


def test_user_mistakes_raise_user_errors(world, tmp_path):
    for args in [(0, 1, 0), (1, 0, 0), (1, 7, 0), (1, 1, -1)]:
        with pytest.raises(UserError):
            world.render(*args)
    with pytest.raises(UserError, match="num_cameras"):
        SyntheticPersons(num_cameras=0)
    with pytest.raises(UserError, match="one-digit camera"):
        write_market1501(tmp_path / "m", SyntheticPersons(num_cameras=12))
    with pytest.raises(UserError, match="image_size"):
        SyntheticPersons(image_size=(8, 4))


def test_garment_colour_follows_the_identity_across_cameras(world):
    pids, cams = range(1, 13), range(1, 5)
    colour = {(p, c): torso_colour(world, p, c, 0) for p in pids for c in cams}
    same_pid = [np.linalg.norm(colour[p, a] - colour[p, b]) for p in pids for a, b in itertools.combinations(cams, 2)]
    same_cam = [np.linalg.norm(colour[p, c] - colour[q, c]) for c in cams for p, q in itertools.combinations(pids, 2)]
    assert np.mean(same_pid) < 0.7 * np.mean(same_cam)


def test_raw_pixels_are_confounded_by_the_camera(world):
    """Nearest neighbours in pixel space share the camera, not the person: the reason a
    model has to learn identity rather than read it off the image."""
    keys = [(p, c) for p in range(1, 9) for c in range(1, 5)]
    x = np.stack([pixels(world.render(p, c, 0)).ravel() for p, c in keys])
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest = [keys[j] for j in d.argmin(1)]
    same_cam = np.mean([n[1] == k[1] for k, n in zip(keys, nearest)])
    same_pid = np.mean([n[0] == k[0] for k, n in zip(keys, nearest)])
    assert same_cam > 0.4 and same_pid < 0.3  # chance of a same-camera neighbour: 7/31


def test_each_camera_has_its_own_background_scale_and_viewpoint(world):
    corners = [pixels(world.render(1, c, 0))[:6, :4].mean((0, 1)) for c in range(1, 7)]
    assert min(np.linalg.norm(a - b) for a, b in itertools.combinations(corners, 2)) > 1.0
    views, heights = [], []
    for c in range(1, 7):
        layouts = [world.render_with_layout(p, c, i)[1] for p in (1, 2) for i in range(15)]
        views.append(Counter(lay["view"] for lay in layouts).most_common(1)[0][0])
        heights.append(np.mean([lay["person"][3] - lay["person"][1] for lay in layouts]))
    assert set(views) == {"front", "back", "left", "right"}  # six cameras cover every direction
    assert max(heights) > 1.1 * min(heights)


# ----------------------------------------------------------------------------- datasets and splits


def test_unlabeled_stream_is_a_deterministic_function_of_seed_and_index(world):
    ds = SyntheticUnlabeled(40, 5, world, transform=lambda im: pixels(im))
    again = SyntheticUnlabeled(40, 5, SyntheticPersons(seed=0, num_cameras=6, image_size=SIZE))
    assert len(ds) == 40 and ds[3]["index"] == 3
    np.testing.assert_array_equal(ds[3]["image"], pixels(again[3]["image"]))
    items = [ds.item(i) for i in range(40)]
    assert {p for p, _, _ in items} <= set(range(1, 6)) and len({c for _, c, _ in items}) > 2
    other = SyntheticUnlabeled(40, 5, SyntheticPersons(seed=1, num_cameras=6, image_size=SIZE))
    assert items != [other.item(i) for i in range(40)]
    with pytest.raises(IndexError):
        ds[40]


def test_labeled_split_follows_market_semantics(world):
    query, gallery = labeled_split(world, num_identities=10, first_pid=21, images_per_camera=2, cameras_per_identity=3)
    assert {q.pid for q in query} == set(range(21, 31)) and {q.pid for q in query} <= {g.pid for g in gallery}
    assert len(set(query + gallery)) == len(query) + len(gallery)  # no image in both, no duplicates
    for q in query:
        assert any(g.pid == q.pid and g.camid != q.camid for g in gallery)  # a true cross-camera match
        assert any(g.pid == q.pid and g.camid == q.camid for g in gallery)  # the one Market discards
    for pid in range(21, 31):
        assert len({g.camid for g in gallery if g.pid == pid}) == 3
    assert labeled_split(world, 10, 21) == (query, gallery)
    assert labeled_split(world, 10, 21, seed_offset=1) != (query, gallery)


def test_labeled_split_refuses_single_camera_identities(world):
    with pytest.raises(UserError, match="cameras_per_identity"):
        labeled_split(world, 5, 1, cameras_per_identity=1)
    with pytest.raises(UserError, match="cameras_per_identity"):
        labeled_split(world, 5, 1, cameras_per_identity=7)


def test_labeled_dataset_returns_labels_and_the_rendered_image(world):
    items = [LabeledImage(4, 2, 9), LabeledImage(6, 5, 1)]
    ds = SyntheticLabeled(items, world)
    sample = ds[1]
    assert (sample["pid"], sample["camid"], sample["index"]) == (6, 5, 1)
    np.testing.assert_array_equal(np.asarray(sample["image"]), np.asarray(world.render(6, 5, 1)))


# ----------------------------------------------------------------------------- Market-1501 on disk

NAME = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")


def parse(folder: Path) -> list[tuple[int, int]]:
    labels = []
    for f in sorted(folder.iterdir()):
        assert NAME.match(f.name), f.name
        pid, cam = map(int, re.search(r"([-\d]+)_c(\d)", f.name).groups())
        labels.append((pid, cam))
    return labels


def test_write_market1501_layout_names_and_counts(world, tmp_path):
    root = tmp_path / "market"
    counts = write_market1501(
        root, world, num_train_ids=4, num_test_ids=5, images_per_camera=1, cameras_per_identity=2,
        num_distractors=3, num_junk=2,
    )
    train, query, gallery = (parse(root / d) for d in ("bounding_box_train", "query", "bounding_box_test"))
    assert (counts["train"], counts["query"], counts["gallery"]) == (len(train), len(query), len(gallery))
    assert (counts["train"], counts["query"], counts["gallery"]) == (4 * 2 * 2, 5 * 2, 5 * 2 + 3 + 2)
    train_ids, test_ids = {p for p, _ in train}, {p for p, _ in gallery if p > 0}
    assert train_ids == set(range(1, 5)) and test_ids == set(range(5, 10))
    assert {p for p, _ in query} <= test_ids
    assert Counter(p for p, _ in gallery if p <= 0) == {0: 3, -1: 2}
    for pid, cam in query:
        assert any(g == pid and c != cam for g, c in gallery)
    with Image.open(next((root / "query").iterdir())) as im:
        assert im.size == (SIZE[1], SIZE[0])


def test_write_market1501_refuses_a_non_empty_folder(world, tmp_path):
    root = tmp_path / "market"
    small = dict(
        num_train_ids=2, num_test_ids=2, images_per_camera=1, cameras_per_identity=2, num_distractors=1, num_junk=1
    )
    write_market1501(root, world, **small)
    (root / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match=re.escape(str(root))):
        write_market1501(root, world, **small)
    counts = write_market1501(root, world, overwrite=True, **dict(small, num_test_ids=1))
    assert counts["gallery"] == len(list((root / "bounding_box_test").iterdir()))
    assert (root / "notes.txt").read_text() == "keep me"


def test_sample_grid_is_rows_of_ids_by_columns_of_cameras(world, tmp_path):
    path = tmp_path / "docs" / "grid.png"
    grid = sample_grid(world, path=path, num_ids=3, num_cams=4)
    with Image.open(path) as saved:
        assert saved.size == grid.size
    gap = max(2, SIZE[1] // 32)
    assert grid.size == (4 * (SIZE[1] + gap) + gap, 3 * (SIZE[0] + gap) + gap)
