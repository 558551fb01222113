"""The batched, on-device multi-crop against torchvision's per-image operations."""

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image

from humanssl.data import tensor_colour as C
from humanssl.data.device_multicrop import CanvasTransform, DeviceMultiCrop, crop_resize, sample_boxes
from humanssl.data.transforms import MultiCropConfig


def images(n=3, h=16, w=8, seed=0):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("ours, theirs, factors", [
    (C.adjust_brightness, TF.adjust_brightness, [0.6, 1.0, 1.4]),
    (C.adjust_contrast, TF.adjust_contrast, [0.6, 1.0, 1.4]),
    (C.adjust_saturation, TF.adjust_saturation, [0.8, 0.0, 1.2]),
    (C.adjust_hue, TF.adjust_hue, [-0.1, 0.05, 0.5]),
])
def test_each_image_gets_its_own_factor_as_torchvision_would_apply_it(ours, theirs, factors):
    x = images()
    got = ours(x, torch.tensor(factors))
    want = torch.stack([theirs(x[i], f) for i, f in enumerate(factors)])
    # 2e-4: our luma is PIL's (0.299 red, as the official PIL pipeline), torchvision's 0.2989.
    torch.testing.assert_close(got, want, atol=2e-4, rtol=0)


def test_hsv_round_trip_and_grayscale_and_solarize():
    x = images(4)
    torch.testing.assert_close(C.hsv_to_rgb(C.rgb_to_hsv(x)), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(C.grayscale(x), TF.rgb_to_grayscale(x), atol=2e-4, rtol=0)  # 0.299 vs 0.2989
    pil = Image.fromarray((x[0] * 255).round().byte().permute(1, 2, 0).numpy()).convert("L")
    ours = (C.grayscale((x[:1] * 255).round() / 255) * 255)[0, 0]
    assert (ours - TF.pil_to_tensor(pil)[0].float()).abs().max() <= 1.0  # PIL rounds to bytes
    assert torch.equal(C.random_solarize(x, 1.0), TF.solarize(x, 128 / 255))
    assert torch.equal(C.random_solarize(x, 0.0), x)
    gray = C.random_grayscale(x, 1.0)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])


def test_jitter_with_only_brightness_is_brightness_and_prob_zero_is_identity():
    x = images()
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    out = C.color_jitter(x, (0.4, 0.0, 0.0, 0.0), 1.0, g1)
    factor = torch.rand(3, generator=g2) * 0.8 + 0.6  # the first draw is the brightness factor
    torch.testing.assert_close(out, C.adjust_brightness(x, factor))
    assert torch.equal(C.color_jitter(x, (0.4, 0.4, 0.2, 0.1), 0.0), x)


def test_blur_matches_a_gaussian_away_from_the_border():
    x = images(2, 24, 24)
    g = torch.Generator().manual_seed(3)
    out = C.random_gaussian_blur(x, 1.0, (1.0, 1.0), g)
    want = TF.gaussian_blur(x, kernel_size=[7, 7], sigma=[1.0, 1.0])
    torch.testing.assert_close(out[..., 3:-3, 3:-3], want[..., 3:-3, 3:-3], atol=1e-5, rtol=0)
    assert torch.equal(C.random_gaussian_blur(x, 0.0, (0.1, 2.0)), x)


def test_boxes_fit_and_follow_the_scale_and_aspect_ranges():
    boxes = sample_boxes(2000, 256, 128, (0.05, 0.8), (0.4, 0.6), torch.Generator().manual_seed(0))
    top, left, h, w = boxes.unbind(1)
    assert bool((top >= 0).all() and (left >= 0).all() and (top + h <= 256).all() and (left + w <= 128).all())
    area = h * w / (256 * 128)
    assert area.min() > 0.04 and area.max() < 0.82
    aspect = w / h
    assert aspect.min() > 0.38 and aspect.max() < 0.63
    assert area.std() > 0.1  # really spread over the range


def test_boxes_fall_back_to_the_centre_crop_when_nothing_fits():
    # An area over 1 never fits: torchvision then takes the centre crop, clamped to the ratio.
    boxes = sample_boxes(4, 100, 100, (2.0, 3.0), (0.4, 0.6))
    assert boxes.tolist() == [[0, 20, 100, 60]] * 4


def test_a_full_box_is_a_bicubic_resize_and_flip_mirrors_it():
    x = images(2, 32, 16)
    full = torch.tensor([[0, 0, 32, 16]] * 2)
    want = F.interpolate(x, size=(20, 10), mode="bicubic", align_corners=False).clamp(0, 1)
    torch.testing.assert_close(crop_resize(x, full, (20, 10)), want, atol=1e-5, rtol=0)
    flipped = crop_resize(x, full, (20, 10), torch.tensor([True, False]))
    torch.testing.assert_close(flipped[0], want[0].flip(-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(flipped[1], want[1], atol=1e-5, rtol=0)


def test_a_box_selects_its_region():
    x = torch.zeros(1, 3, 32, 16)
    x[..., 8:16, 4:12] = 1.0
    out = crop_resize(x, torch.tensor([[8, 4, 8, 8]]), (8, 8))
    assert out.min() > 0.99


def test_multicrop_gives_the_recipes_views_and_reduces_to_resize_when_everything_is_off():
    cfg = MultiCropConfig(global_size=(32, 16), local_size=(16, 8), local_number=3)
    canvas = (images(2, 40, 20) * 255).to(torch.uint8)
    out = DeviceMultiCrop(cfg, torch.Generator().manual_seed(0))({"image": canvas, "index": torch.arange(2)})
    assert [tuple(c.shape) for c in out["image"]] == [(2, 3, 32, 16)] * 2 + [(2, 3, 16, 8)] * 3
    assert torch.equal(out["index"], torch.arange(2))
    again = DeviceMultiCrop(cfg, torch.Generator().manual_seed(0))({"image": canvas})
    assert all(torch.equal(a, b) for a, b in zip(out["image"], again["image"]))
    plain = MultiCropConfig(global_size=(32, 16), local_number=0, global_scale=(1.0, 1.0), aspect=(0.5, 0.5),
                            flip_prob=0.0, jitter_prob=0.0, grayscale_prob=0.0, blur_probs=(0.0, 0.0, 0.0),
                            solarize_prob=0.0)
    out = DeviceMultiCrop(plain)({"image": canvas})["image"]
    resized = F.interpolate(canvas.float() / 255, size=(32, 16), mode="bicubic", align_corners=False).clamp(0, 1)
    want = TF.normalize(resized, plain.mean, plain.std)
    assert len(out) == 2
    torch.testing.assert_close(out[0], want, atol=1e-4, rtol=0)


def test_canvas_transform_resizes_and_keeps_bytes():
    img = Image.new("RGB", (30, 50), (10, 200, 30))
    t = CanvasTransform((64, 32))(img)
    assert t.dtype == torch.uint8 and tuple(t.shape) == (3, 64, 32)
    assert t[:, 10, 10].tolist() == [10, 200, 30]
    assert math.isclose(float(t.float().mean()), 80.0, abs_tol=1.0)
