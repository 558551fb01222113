import numpy as np
import pytest

from humanssl.data.synthetic_scenes import SCENE_CLASSES, SyntheticScenes, SyntheticScenesDataset
from humanssl.errors import UserError


def test_scenes_are_a_function_of_seed_and_index():
    a, b = SyntheticScenes(seed=5, image_size=(48, 64)), SyntheticScenes(seed=5, image_size=(48, 64))
    img_a, lab_a = a.render(7)
    img_b, lab_b = b.render(7)
    assert img_a.size == (64, 48)
    assert np.array_equal(np.asarray(img_a), np.asarray(img_b)) and np.array_equal(lab_a, lab_b)
    img_c, _ = SyntheticScenes(seed=6, image_size=(48, 64)).render(7)
    assert not np.array_equal(np.asarray(img_a), np.asarray(img_c))
    assert np.array_equal(a.labels(7), lab_a)


def test_labels_are_multi_label_and_cover_every_class():
    world = SyntheticScenes(seed=0)
    labels = np.stack([world.labels(i) for i in range(80)])
    assert labels.shape == (80, len(SCENE_CLASSES))
    assert set(np.unique(labels)) <= {0.0, 1.0}
    assert (labels.sum(1) >= 1).all()  # every image shows something
    assert (labels.sum(1) >= 2).mean() > 0.3  # many show several classes
    assert labels.sum(0).min() > 5  # and every class occurs


def test_present_prob_one_shows_every_class():
    world = SyntheticScenes(seed=2, image_size=(64, 64), present_prob=1.0)
    img, labels = world.render(3)
    assert labels.tolist() == [1.0] * len(SCENE_CLASSES)
    # many objects on top of the background: a busier image than the sparse scenes have on average
    sparse = SyntheticScenes(seed=2, image_size=(64, 64), present_prob=0.05)
    assert sparse.labels(3).sum() == 1


def test_dataset_samples():
    world = SyntheticScenes(seed=0, image_size=(32, 32))
    ds = SyntheticScenesDataset(world, 5)
    s = ds[2]
    assert s["labels"].tolist() == world.labels(2).tolist() and s["index"] == 2
    assert not s["difficult"].any()
    assert ds.label_matrix().shape == (5, len(SCENE_CLASSES))
    plain = SyntheticScenesDataset(world, 5, with_labels=False)[0]
    assert set(plain) == {"image", "index", "failed_reads"}
    with pytest.raises(IndexError):
        ds[5]


def test_bad_sizes_are_user_errors():
    with pytest.raises(UserError, match="image_size"):
        SyntheticScenes(image_size=(8, 64))
    with pytest.raises(UserError, match="num_images"):
        SyntheticScenesDataset(SyntheticScenes(), 0)
