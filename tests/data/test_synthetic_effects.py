"""The synthetic world's camera-effect dials: each one changes only what it names."""

import numpy as np
import pytest

from humanssl.config import load_config
from humanssl.data import synthetic_render as R
from humanssl.data.synthetic import SyntheticPersons
from humanssl.data.synthetic_effects import CameraEffects
from humanssl.errors import UserError
from humanssl.pretrain import build_dataset, knn_sets
from humanssl.pretrain_config import PretrainConfig

SIZE = (64, 32)
POSES = range(40)


def world(**effects) -> SyntheticPersons:
    return SyntheticPersons(seed=0, num_cameras=6, image_size=SIZE, effects=CameraEffects(**effects))


def occluded(w: SyntheticPersons, camid: int) -> list[int]:
    return [i for i in POSES if "occluder" in w.render_with_layout(3, camid, i)[1]]


def most_occluded_camera() -> int:
    return max(range(1, 7), key=lambda c: R.sample_camera(0, c).occlusion_p)


def test_default_effects_leave_camera_and_scene_untouched():
    cam = R.sample_camera(0, 2)
    scene = R.camera_background(0, 2, SIZE)
    assert CameraEffects().on_camera(cam) is cam
    assert CameraEffects().on_scene(scene) is scene
    a, b = SyntheticPersons(seed=0, image_size=SIZE).render(4, 2, 5), world().render(4, 2, 5)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_cast_zero_gives_neutral_light_and_changes_only_the_light():
    cam = R.sample_camera(0, 3)
    neutral = CameraEffects(cast=0.0).on_camera(cam)
    assert neutral.gain == (1.0, 1.0, 1.0) and neutral.brightness == 1.0
    assert (neutral.scale, neutral.view_p, neutral.occlusion_p) == (cam.scale, cam.view_p, cam.occlusion_p)
    half = CameraEffects(cast=0.5).on_camera(cam)
    assert half.gain[0] == pytest.approx(1 + (cam.gain[0] - 1) / 2)
    assert not np.array_equal(np.asarray(world().render(4, 3, 5)), np.asarray(world(cast=0.0).render(4, 3, 5)))


def test_view_bias_zero_draws_the_four_views_evenly():
    assert CameraEffects(view_bias=0.0).on_camera(R.sample_camera(0, 1)).view_p == 0.25


def test_person_height_maps_every_camera_into_the_range_keeping_their_order():
    effects = CameraEffects(person_height=(0.8, 0.95))
    designed = [R.sample_camera(0, c).scale for c in range(1, 7)]
    tight = [effects.on_camera(R.sample_camera(0, c)).scale for c in range(1, 7)]
    assert all(0.8 <= s <= 0.95 for s in tight)
    assert np.argsort(designed).tolist() == np.argsort(tight).tolist()


def test_occlusion_dial_keeps_a_seeded_subset_of_the_occluders():
    camid = most_occluded_camera()
    full, half = occluded(world(), camid), occluded(world(occlusion=0.5), camid)
    assert len(full) >= 4  # the camera does occlude: the test can see the dial work
    assert set(half) < set(full) and 0 < len(half)
    assert occluded(world(occlusion=0.0), camid) == []
    assert occluded(world(occlusion=0.5), camid) == half  # the same subset every time


def test_scenery_with_no_colour_and_no_contrast_is_a_flat_grey_wall():
    flat = CameraEffects(scenery_saturation=0.0, scenery_contrast=0.0)
    scene = np.asarray(flat.on_scene(R.camera_background(0, 2, SIZE)), dtype=np.int16)
    assert scene.std(axis=(0, 1)).max() == 0 and len(set(scene[0, 0].tolist())) == 1
    muted = np.asarray(world(scenery_saturation=0.25).render(4, 2, 5))
    assert not np.array_equal(muted, np.asarray(world().render(4, 2, 5)))


def test_shared_scenery_gives_every_camera_camera_1s_scene_and_nothing_else():
    shared, designed = world(scenery_shared=True), world()
    # camera 1 is filmed as designed; camera 3 keeps its people, light and framing but sees
    # camera 1's scene
    assert np.array_equal(np.asarray(shared.render(4, 1, 5)), np.asarray(designed.render(4, 1, 5)))
    assert not np.array_equal(np.asarray(shared.render(4, 3, 5)), np.asarray(designed.render(4, 3, 5)))
    assert shared.render_with_layout(4, 3, 5)[1] == designed.render_with_layout(4, 3, 5)[1]
    flat = world(scenery_shared=True, scenery_saturation=0.0, scenery_contrast=0.0)
    walls = [np.asarray(flat._background(c), dtype=np.int16) for c in (2, 5)]
    assert np.array_equal(*walls) and walls[0].std(axis=(0, 1)).max() == 0  # one flat grey for all
    own = [np.asarray(world(scenery_saturation=0.0, scenery_contrast=0.0)._background(c)) for c in (2, 5)]
    assert not np.array_equal(*own)  # unshared, each camera keeps its own grey


@pytest.mark.parametrize("effects, key", [
    (dict(cast=1.5), "cast"), (dict(occlusion=-0.1), "occlusion"), (dict(view_bias="all"), "view_bias"),
    (dict(scenery_contrast=-1.0), "scenery_contrast"), (dict(person_height=(0.9, 0.5)), "person_height"),
    (dict(scenery_shared="yes"), "scenery_shared"),
])
def test_out_of_range_dials_are_refused_by_name(effects, key):
    with pytest.raises(UserError, match=f"data.synthetic_effects.*{key}"):
        CameraEffects(**effects)


def test_a_world_refuses_effects_of_another_type():
    with pytest.raises(UserError, match="CameraEffects"):
        SyntheticPersons(effects={"cast": 0.0})


def test_pretrain_config_sets_the_same_effects_on_training_stream_and_knn_sets():
    cfg = load_config(PretrainConfig, None, [
        "data.synthetic_images=4", "data.synthetic_identities=2", "knn.identities=2", "crops.global_size=[64,32]",
        "crops.local_size=[32,16]", "data.synthetic_effects.cast=0", "data.synthetic_effects.person_height=[0.8,0.95]",
    ])
    expected = CameraEffects(cast=0.0, person_height=(0.8, 0.95))
    query, gallery = knn_sets(cfg)
    assert query.world.effects == gallery.world.effects == expected
    assert build_dataset(cfg).world.effects == expected
    with pytest.raises(UserError, match="data.synthetic_effects.*cast"):
        load_config(PretrainConfig, None, ["data.synthetic_effects.cast=3"])
