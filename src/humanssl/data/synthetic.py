"""The built-in synthetic person world: seeded, procedural "people" seen by several cameras.

It lets every command run on a fresh machine with no download. Identity is carried by clothes,
body shape and accessories; each camera adds its own background, light, scale, preferred
viewpoint and occluders, so a model has to *learn* identity — raw pixels mostly say which
camera took the picture. The painting itself is in `synthetic_render.py`.

Everything is a pure function of (world seed, pid, camid, pose index): the same arguments
give a bit-identical image in any process, and another seed gives another world.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import UserError
from . import synthetic_render as R
from .synthetic_effects import CameraEffects

# Pose indices of labelled images start here so they never coincide with the unlabelled
# stream's poses (0 .. num_images-1): a pretraining image is never a test image verbatim.
LABELED_POSE_BASE = 1_000_000_000
_POSES_PER_OFFSET = 1_000_000  # room for each `seed_offset` in labelled pose space

MARKET_FOLDERS = ("bounding_box_train", "query", "bounding_box_test")


@dataclass
class SyntheticPersons:
    """The world: who exists (any pid >= 1), which cameras (1..num_cameras), image size (H, W),
    and how strongly the cameras mark their images (`effects`; the default is the designed world)."""

    seed: int = 0
    num_cameras: int = 6
    image_size: tuple[int, int] = (256, 128)
    effects: CameraEffects = field(default_factory=CameraEffects)
    # Camera backgrounds and the noise field are the costly parts and never change: cache them.
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise UserError(f"synthetic world: seed must be an integer >= 0, got {self.seed!r}")
        if int(self.num_cameras) < 1:
            raise UserError(f"synthetic world: num_cameras must be >= 1, got {self.num_cameras!r}")
        size = tuple(int(v) for v in self.image_size)
        if len(size) != 2 or size[0] < 16 or size[1] < 8:
            raise UserError(f"synthetic world: image_size must be (H, W), H >= 16, W >= 8; got {self.image_size!r}")
        self.seed, self.num_cameras, self.image_size = int(self.seed), int(self.num_cameras), size
        if not isinstance(self.effects, CameraEffects):
            raise UserError(f"synthetic world: effects must be a CameraEffects, got {type(self.effects).__name__}")

    def render(self, pid: int, camid: int, index: int) -> Image.Image:
        """RGB image of person `pid` in camera `camid` (1-based), pose `index` (>= 0); W x H."""
        return self.render_with_layout(pid, camid, index)[0]

    def render_with_layout(self, pid: int, camid: int, index: int) -> tuple[Image.Image, dict]:
        """The image and where things are: {"torso": box, "person": box, "view": str, ...}."""
        self._check(pid, camid, index)
        cam = self.effects.on_camera(R.sample_camera(self.seed, camid))
        pose = self.effects.on_pose(R.sample_pose(self.seed, pid, camid, index, cam), self.seed, pid, camid, index)
        return R.paint(self._background(camid), self._noise(), R.sample_identity(self.seed, pid), cam, pose)

    def _check(self, pid: int, camid: int, index: int) -> None:
        if int(pid) < 1:
            raise UserError(f"synthetic world: pid must be >= 1, got {pid}")
        if not 1 <= int(camid) <= self.num_cameras:
            raise UserError(f"synthetic world: camid must be in 1..{self.num_cameras}, got {camid}")
        if int(index) < 0:
            raise UserError(f"synthetic world: pose index must be >= 0, got {index}")

    def _background(self, camid: int) -> Image.Image:
        scene = self.effects.scene_of(camid)
        key = ("bg", scene)
        if key not in self._cache:
            self._cache[key] = self.effects.on_scene(R.camera_background(self.seed, scene, self.image_size))
        return self._cache[key]

    def _noise(self) -> np.ndarray:
        if "noise" not in self._cache:
            self._cache["noise"] = R.noise_bank(self.seed, self.image_size)
        return self._cache["noise"]


class SyntheticUnlabeled(torch.utils.data.Dataset):
    """Unlabelled pretraining stream: images of ids 1..num_identities from random cameras/poses."""

    def __init__(self, num_images: int, num_identities: int, world: SyntheticPersons, transform=None):
        if num_images < 1 or num_identities < 1:
            raise UserError(
                f"synthetic unlabelled set: num_images, num_identities must be >= 1; got {num_images}, {num_identities}"
            )
        self.num_images, self.num_identities = int(num_images), int(num_identities)
        self.world, self.transform = world, transform

    def __len__(self) -> int:
        return self.num_images

    def item(self, index: int) -> tuple[int, int, int]:
        """(pid, camid, pose index) of stream position `index`; a function of (world seed, index)."""
        g = R.rng(self.world.seed, R.STREAM, index)
        pid = 1 + int(g.integers(self.num_identities))
        camid = 1 + int(g.integers(self.world.num_cameras))
        return pid, camid, index

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.num_images:
            raise IndexError(f"index {index} out of range for {self.num_images} images")
        img = self.world.render(*self.item(index))
        return {"image": self.transform(img) if self.transform else img, "index": index}


@dataclass(frozen=True)
class LabeledImage:
    pid: int
    camid: int
    index: int  # pose index


def identity_cameras(world: SyntheticPersons, pid: int, count: int, seed_offset: int = 0) -> list[int]:
    """The `count` cameras (sorted, 1-based) that see `pid` in a labelled split."""
    g = R.rng(world.seed, R.SPLIT, seed_offset, pid)
    return sorted(int(c) + 1 for c in g.choice(world.num_cameras, size=count, replace=False))


def labeled_split(
    world: SyntheticPersons,
    num_identities: int,
    first_pid: int,
    images_per_camera: int = 2,
    cameras_per_identity: int = 3,
    seed_offset: int = 0,
) -> tuple[list[LabeledImage], list[LabeledImage]]:
    """Market-1501-style (query, gallery) for ids first_pid .. first_pid+num_identities-1.

    Each id is seen by `cameras_per_identity` cameras. As in Market, the query holds one image
    per (id, camera) and the gallery `images_per_camera` further images per (id, camera). So
    every query has gallery matches in the id's other cameras (>= 2 cameras), and the gallery
    also holds same-camera images of it, which the Market protocol discards at evaluation.
    """
    if num_identities < 1 or first_pid < 1 or images_per_camera < 1 or seed_offset < 0:
        raise UserError(
            "labeled_split: need num_identities >= 1, first_pid >= 1, images_per_camera >= 1 and seed_offset >= 0, "
            f"got {num_identities}, {first_pid}, {images_per_camera}, {seed_offset}"
        )
    if images_per_camera >= _POSES_PER_OFFSET:
        raise UserError(f"labeled_split: images_per_camera must be < {_POSES_PER_OFFSET}, got {images_per_camera}")
    if not 2 <= cameras_per_identity <= world.num_cameras:
        raise UserError(
            f"labeled_split: cameras_per_identity must be in 2..num_cameras ({world.num_cameras}) so every "
            f"query has a match in another camera, got {cameras_per_identity}"
        )
    base = LABELED_POSE_BASE + seed_offset * _POSES_PER_OFFSET
    query, gallery = [], []
    for pid in range(first_pid, first_pid + num_identities):
        for cam in identity_cameras(world, pid, cameras_per_identity, seed_offset):
            query.append(LabeledImage(pid, cam, base))
            gallery.extend(LabeledImage(pid, cam, base + 1 + k) for k in range(images_per_camera))
    return query, gallery


class SyntheticLabeled(torch.utils.data.Dataset):
    """Labelled images (for query/gallery or supervised training) rendered on the fly."""

    def __init__(self, items: list[LabeledImage], world: SyntheticPersons, transform=None):
        self.items, self.world, self.transform = list(items), world, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        it = self.items[i]
        img = self.world.render(it.pid, it.camid, it.index)
        image = self.transform(img) if self.transform else img
        return {"image": image, "pid": it.pid, "camid": it.camid, "index": i}


# ----------------------------------------------------------------------------- Market-1501 on disk


class _MarketNamer:
    """Unique Market-style names: per camera a rising frame counter, so (camera, frame) never
    repeats and every file name is distinct even for pid 0000 / -1."""

    def __init__(self, seed: int):
        self.g = R.rng(seed, R.WRITER, 0)
        self.frame: dict[int, int] = {}

    def __call__(self, pid: int, camid: int) -> str:
        frame = self.frame.get(camid, 0) + int(self.g.integers(1, 9))
        if frame > 999_999:
            raise UserError("write_market1501: too many images for Market's 6-digit frame numbers; use fewer ids")
        self.frame[camid] = frame
        seq, bbox = int(self.g.integers(1, 7)), int(self.g.integers(1, 9))
        tag = "-1" if pid == -1 else f"{pid:04d}"
        return f"{tag}_c{camid}s{seq}_{frame:06d}_{bbox:02d}.jpg"


def _prepare_root(root: Path, overwrite: bool) -> None:
    if root.exists() and not root.is_dir():
        raise UserError(f"write_market1501: {root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise UserError(
                f"write_market1501: folder {root} is not empty; pass overwrite=True to replace its Market-1501 folders"
            )
        for name in MARKET_FOLDERS:  # only our own folders: never delete anything else the user keeps there
            if (root / name).is_dir():
                shutil.rmtree(root / name)
    for name in MARKET_FOLDERS:
        (root / name).mkdir(parents=True, exist_ok=True)


def _junk(world: SyntheticPersons, k: int) -> tuple[int, Image.Image]:
    """A bad detection, like Market's pid -1 images: a random fragment of a scene, blown up."""
    g = R.rng(world.seed, R.WRITER, 1, k)
    camid = 1 + int(g.integers(world.num_cameras))
    img = world.render(1 + int(g.integers(1_000_000)), camid, LABELED_POSE_BASE - 1 - k)
    H, W = world.image_size
    h, w = int(H * g.uniform(0.2, 0.5)), int(W * g.uniform(0.3, 0.7))
    y, x = int(g.integers(H - h + 1)), int(g.integers(W - w + 1))
    return camid, img.crop((x, y, x + w, y + h)).resize((W, H), Image.BILINEAR)


def write_market1501(
    root,
    world: SyntheticPersons,
    num_train_ids: int = 50,
    num_test_ids: int = 50,
    images_per_camera: int = 2,
    cameras_per_identity: int = 3,
    num_distractors: int = 20,
    num_junk: int = 10,
    overwrite: bool = False,
) -> dict:
    """Write a Market-1501-layout copy of the world under `root` and return the file counts.

    Train ids are 1..num_train_ids, test ids follow them. The train folder holds all labelled
    images of the train ids; query/gallery come from `labeled_split` on the test ids; the
    gallery also gets distractors (unseen people, pid 0000) and junk fragments (pid -1).
    """
    if num_train_ids < 1 or num_test_ids < 1 or num_distractors < 0 or num_junk < 0:
        raise UserError("write_market1501: need num_train_ids, num_test_ids >= 1 and num_distractors, num_junk >= 0")
    if world.num_cameras > 9:
        raise UserError(f"write_market1501: Market file names hold a one-digit camera; the world has {world.num_cameras}")
    split = dict(images_per_camera=images_per_camera, cameras_per_identity=cameras_per_identity)
    train_q, train_g = labeled_split(world, num_train_ids, 1, **split)  # checks the arguments before
    test_q, test_g = labeled_split(world, num_test_ids, num_train_ids + 1, **split)  # anything is deleted
    root = Path(root)
    _prepare_root(root, overwrite)
    name = _MarketNamer(world.seed)

    def save(img: Image.Image, folder: str, pid: int, camid: int) -> None:
        img.save(root / folder / name(pid, camid), quality=92)

    for it in train_q + train_g:
        save(world.render(it.pid, it.camid, it.index), "bounding_box_train", it.pid, it.camid)
    for folder, items in (("query", test_q), ("bounding_box_test", test_g)):
        for it in items:
            save(world.render(it.pid, it.camid, it.index), folder, it.pid, it.camid)
    first_distractor = num_train_ids + num_test_ids + 1
    g = R.rng(world.seed, R.WRITER, 2)
    for k in range(num_distractors):
        camid = 1 + int(g.integers(world.num_cameras))
        save(world.render(first_distractor + k, camid, LABELED_POSE_BASE), "bounding_box_test", 0, camid)
    for k in range(num_junk):
        camid, img = _junk(world, k)
        save(img, "bounding_box_test", -1, camid)
    return {
        "train_ids": num_train_ids,
        "test_ids": num_test_ids,
        "train": len(train_q) + len(train_g),
        "query": len(test_q),
        "gallery": len(test_g) + num_distractors + num_junk,
        "distractors": num_distractors,
        "junk": num_junk,
    }


def sample_grid(
    world: SyntheticPersons,
    path=None,
    num_ids: int = 8,
    num_cams: int | None = None,
    poses_per_camera: int = 1,
    first_pid: int = 1,
) -> Image.Image:
    """A picture of the world: rows are identities, columns cameras (x poses); saved as PNG
    when `path` is given (for the README)."""
    num_cams = world.num_cameras if num_cams is None else min(int(num_cams), world.num_cameras)
    H, W = world.image_size
    gap = max(2, W // 32)
    cols = num_cams * poses_per_camera
    grid = Image.new("RGB", (cols * (W + gap) + gap, num_ids * (H + gap) + gap), (24, 24, 24))
    for r in range(num_ids):
        for c in range(cols):
            img = world.render(first_pid + r, 1 + c // poses_per_camera, c % poses_per_camera)
            grid.paste(img, (gap + c * (W + gap), gap + r * (H + gap)))
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        grid.save(path)
    return grid
