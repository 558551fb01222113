"""Painting one synthetic person: identity, camera and pose parameters, and the painter.

Kept apart from `synthetic.py` so that file stays about datasets. The world is built to be
*learnable but confounded*: who someone is lives in clothes, body and accessories, while the
camera owns background, light, scale, viewpoint and occlusion, so raw pixels group by camera
and only a learned representation groups by identity.

All lengths of the body are fractions of the person's height in pixels; `_Frame` maps them to
the image. Every random draw comes from its own seeded stream (see `rng`), so adding a camera
never changes anyone's clothes and rendering is bit-identical across runs and processes.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

# One stream tag per kind of randomness: streams never share draws, so each part of the
# world can change (more cameras, another split) without reshuffling the others.
IDENTITY, CAMERA, POSE, BACKGROUND, NOISE, SPLIT, STREAM, WRITER, OCCLUDER = range(1, 10)

VIEWS = ("front", "right", "back", "left")  # left/right: the side view, facing that way
PERSON_HEIGHTS = (0.55, 0.93)  # the range a camera's person height / image height is drawn in

Colour = tuple[int, int, int]


def rng(*keys: int) -> np.random.Generator:
    """A generator fixed by integer keys (world seed, stream tag, ids...); keys must be >= 0."""
    return np.random.default_rng([int(k) for k in keys])


def _hsv(h: float, s: float, v: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def _make_palette() -> list[Colour]:
    # 12 hues in a bright and a dark version (the dark hue offset by half a step, so the two
    # rings do not share hues) plus neutrals: 30 garment colours, 900 upper/lower pairs before
    # patterns and accessories, so hundreds of ids stay distinguishable.
    bright = [_hsv(i / 12, 0.85, 0.92) for i in range(12)]
    dark = [_hsv(i / 12 + 1 / 24, 0.75, 0.5) for i in range(12)]
    neutral = [(22, 22, 24), (238, 238, 232), (150, 150, 150), (78, 78, 82), (28, 38, 92), (205, 185, 145)]
    return bright + dark + neutral


PALETTE = _make_palette()
SKIN = [(255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 92), (141, 85, 54), (96, 60, 40)]
HAIR = [
    (20, 16, 14), (60, 38, 24), (110, 72, 40), (200, 160, 90),
    (150, 60, 30), (160, 160, 160), (235, 230, 215), (120, 40, 140),
]
LOGO_SHAPES = ("circle", "triangle", "square", "diamond")


def _pick(g: np.random.Generator, options):
    return options[int(g.integers(len(options)))]


def _far_colour(g: np.random.Generator, base: Colour, min_dist: float = 130.0) -> Colour:
    """A palette colour clearly different from `base`, so patterns read as patterns."""
    choices = [c for c in PALETTE if math.dist(c, base) >= min_dist]
    return _pick(g, choices)


@dataclass(frozen=True)
class Identity:
    """Everything a person keeps from camera to camera."""

    height: float  # fraction of the camera's person scale: taller people fill more of the frame
    head_r: float
    shoulder_w: float  # half-width at the shoulders, front view
    waist_ratio: float  # waist half-width / shoulder half-width
    leg_frac: float  # hip to sole
    arm_len: float
    arm_w: float  # half-thickness
    leg_w: float
    top_len: float  # how far the upper garment reaches past the hip (negative: cropped)
    skin: Colour
    hair: Colour
    hair_len: int  # 0 shaved, 1 short, 2 medium, 3 long
    upper: Colour
    lower: Colour
    pattern: str  # plain | hstripes | vstripes | logo
    pattern_colour: Colour
    n_stripes: int
    logo_shape: str
    long_sleeves: bool
    lower_kind: str  # trousers | shorts | skirt
    shoes: Colour
    bag_side: int  # 0 none, -1 / +1: the person's right / left, as seen from the front
    bag_colour: Colour
    hat: Colour | None
    backpack: Colour | None


@lru_cache(maxsize=8192)
def sample_identity(seed: int, pid: int) -> Identity:
    g = rng(seed, IDENTITY, pid)
    upper, lower = _pick(g, PALETTE), _pick(g, PALETTE)
    return Identity(
        height=float(g.uniform(0.88, 1.0)),
        head_r=float(g.uniform(0.055, 0.07)),
        shoulder_w=float(g.uniform(0.105, 0.155)),
        waist_ratio=float(g.uniform(0.68, 0.92)),
        leg_frac=float(g.uniform(0.44, 0.52)),
        arm_len=float(g.uniform(0.34, 0.39)),
        arm_w=float(g.uniform(0.026, 0.036)),
        leg_w=float(g.uniform(0.036, 0.052)),
        top_len=float(g.uniform(-0.04, 0.06)),
        skin=_pick(g, SKIN),
        hair=_pick(g, HAIR),
        hair_len=int(g.choice(4, p=[0.08, 0.42, 0.25, 0.25])),
        upper=upper,
        lower=lower,
        pattern=_pick(g, ("plain", "hstripes", "vstripes", "logo")),
        pattern_colour=_far_colour(g, upper),
        n_stripes=int(g.integers(2, 6)),
        logo_shape=_pick(g, LOGO_SHAPES),
        long_sleeves=bool(g.random() < 0.6),
        lower_kind=str(g.choice(["trousers", "shorts", "skirt"], p=[0.6, 0.2, 0.2])),
        shoes=_pick(g, PALETTE),
        bag_side=int(g.choice([0, -1, 1], p=[0.6, 0.2, 0.2])),
        bag_colour=_pick(g, PALETTE),
        hat=_pick(g, PALETTE) if g.random() < 0.2 else None,
        backpack=_pick(g, PALETTE) if g.random() < 0.3 else None,
    )


@dataclass(frozen=True)
class Camera:
    """Everything a camera imposes on whoever walks past it."""

    view: str  # the direction most people face in this camera
    view_p: float  # how often they do
    gain: tuple[float, float, float]  # colour cast
    brightness: float
    scale: float  # person height / image height
    occlusion_p: float
    noise_sigma: float
    shadow: Colour


@lru_cache(maxsize=1024)
def sample_camera(seed: int, camid: int) -> Camera:
    g = rng(seed, CAMERA, camid)
    # Dominant views cycle through the four directions from a per-world offset, so any six
    # cameras cover front, back and both sides instead of a random pile of fronts.
    offset = int(rng(seed, CAMERA, 0).integers(4))
    return Camera(
        view=VIEWS[(camid - 1 + offset) % 4],
        view_p=float(g.uniform(0.6, 0.85)),
        gain=tuple(float(x) for x in g.uniform(0.85, 1.15, 3)),
        brightness=float(g.uniform(0.8, 1.15)),
        scale=float(g.uniform(*PERSON_HEIGHTS)),
        occlusion_p=float(g.uniform(0.0, 0.35)),
        noise_sigma=float(g.uniform(2.0, 7.0)),
        shadow=tuple(int(x) for x in g.uniform(20, 70, 3)),
    )


@dataclass(frozen=True)
class Pose:
    """What changes from one image to the next of the same person in the same camera."""

    view: str
    stride: float  # leg angle from vertical, radians
    arm_swing: float
    arm_out: float  # front/back view: arms held away from the body
    shift: float  # horizontal offset, fraction of the image width
    scale_jitter: float
    lift: float  # vertical offset, fraction of the image height
    occluder: tuple | None  # (side, cover fraction, colour, stripe colour, extent) or None
    noise_yx: tuple[int, int]
    light: float  # per-image brightness jitter
    scenery_x: float  # which window of the camera's scene is behind the person, 0..1


def sample_pose(seed: int, pid: int, camid: int, index: int, cam: Camera) -> Pose:
    g = rng(seed, POSE, pid, camid, index)
    view = cam.view if g.random() < cam.view_p else _pick(g, VIEWS)
    occluder = None
    if g.random() < cam.occlusion_p:
        occluder = (
            _pick(g, ("bottom", "left", "right")),
            float(g.uniform(0.22, 0.45)),
            tuple(int(x) for x in g.uniform(20, 235, 3)),
            tuple(int(x) for x in g.uniform(20, 235, 3)),
            float(g.uniform(0.0, 0.35)),
        )
    return Pose(
        view=view,
        stride=float(g.uniform(0.0, 0.42)),
        arm_swing=float(g.uniform(-0.45, 0.45)),
        arm_out=float(g.uniform(0.06, 0.28)),
        # detector boxes are loose and off-centre: people drift and change size inside the crop
        shift=float(g.uniform(-0.15, 0.15)),
        scale_jitter=float(g.uniform(0.85, 1.1)),
        lift=float(g.uniform(-0.02, 0.02)),
        occluder=occluder,
        noise_yx=(int(g.integers(1 << 16)), int(g.integers(1 << 16))),
        light=float(g.uniform(0.93, 1.07)),
        scenery_x=float(g.uniform(0.0, 1.0)),
    )


# ----------------------------------------------------------------------------- camera scenery


def camera_background(seed: int, camid: int, size: tuple[int, int]) -> Image.Image:
    """A per-camera scene, twice as wide as an image: tilted wall gradient, blocks (shop fronts,
    windows), a tiled floor and smooth blotches. Each image sees a window of it where its person
    happens to stand, so images of one camera share a look but not their exact pixels, as
    detector crops from one real camera do. Callers cache it: it is the slow part."""
    H, W = size[0], 2 * size[1]
    g = rng(seed, BACKGROUND, camid)
    top, bottom = g.uniform(35, 225, 3), g.uniform(35, 225, 3)
    yy = np.linspace(0.0, 1.0, H, dtype=np.float32)[:, None, None]
    xx = np.linspace(-0.5, 0.5, W, dtype=np.float32)[None, :, None]
    t = np.clip(yy + g.uniform(-0.6, 0.6) * xx, 0.0, 1.0)
    wall = top * (1.0 - t) + bottom * t
    img = Image.fromarray(np.clip(wall, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    floor_y = int(H * g.uniform(0.6, 0.82))
    for _ in range(int(g.integers(4, 12))):
        w, h = g.uniform(0.15, 0.6) * W, g.uniform(0.05, 0.3) * H
        x0, y0 = g.uniform(-0.2, 1.0) * W, g.uniform(-0.1, 0.9) * floor_y
        # muted, like real street scenery: mostly the wall's own tone, a little colour of its own
        colour = tuple(int(c) for c in np.clip(g.uniform(20, 235, 3) * 0.35 + top * 0.45 + 128 * 0.2, 0, 255))
        draw.rectangle([x0, y0, x0 + w, y0 + h], fill=colour)
    floor = g.uniform(40, 200, 3)
    arr = np.asarray(img, dtype=np.float32).copy()
    tile_w, tile_h = max(2, int(W * g.uniform(0.08, 0.3))), max(2, int(H * g.uniform(0.03, 0.08)))
    ys, xs = np.mgrid[0 : H - floor_y, 0:W]
    checker = ((ys // tile_h + xs // tile_w) % 2).astype(np.float32)[..., None]
    arr[floor_y:] = floor + checker * g.uniform(-30, 30)
    arr += _blotches(g, H, W) * g.uniform(8, 22)
    # street scenery is mostly greys and browns: keep less than half of each pixel's colourfulness
    grey = arr.mean(axis=2, keepdims=True)
    arr = grey + 0.4 * (arr - grey)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _blotches(g: np.random.Generator, H: int, W: int) -> np.ndarray:
    """Smooth low-frequency noise, (H, W, 3) in about [-1, 1]: dirt and light pools."""
    coarse = g.uniform(0, 255, (6, 4, 3)).astype(np.uint8)
    up = Image.fromarray(coarse).resize((W, H), Image.BICUBIC)
    return (np.asarray(up, dtype=np.float32) - 127.5) / 127.5


def noise_bank(seed: int, size: tuple[int, int]) -> np.ndarray:
    """One big sensor-noise field; each image crops it at its own offset, which is much
    cheaper than drawing fresh gaussians for every pixel of every image."""
    H, W = size
    return rng(seed, NOISE, H, W).standard_normal((2 * H, 2 * W, 3), dtype=np.float32)


# ----------------------------------------------------------------------------- the painter


class _Frame:
    """Body fractions to pixels: x is relative to the body's centre line, y to the head top."""

    def __init__(self, cx: float, top: float, h: float):
        self.cx, self.top, self.h = cx, top, h

    def pt(self, fx: float, fy: float) -> tuple[float, float]:
        return (self.cx + fx * self.h, self.top + fy * self.h)

    def box(self, fx0: float, fy0: float, fx1: float, fy1: float) -> list[float]:
        (x0, y0), (x1, y1) = self.pt(fx0, fy0), self.pt(fx1, fy1)
        return [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]


def _shade(c: Colour, f: float) -> Colour:
    return tuple(min(255, int(v * f)) for v in c)


def _disc(draw: ImageDraw.ImageDraw, p, r: float, colour: Colour) -> None:
    draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=colour)


def _limb(draw: ImageDraw.ImageDraw, p0, p1, half_w: float, colour: Colour) -> None:
    """A thick segment with rounded ends (round ends hide the seams at shoulders and hips)."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    n = math.hypot(dx, dy) or 1.0
    ox, oy = -dy / n * half_w, dx / n * half_w
    draw.polygon(
        [(p0[0] + ox, p0[1] + oy), (p1[0] + ox, p1[1] + oy), (p1[0] - ox, p1[1] - oy), (p0[0] - ox, p0[1] - oy)],
        fill=colour,
    )
    _disc(draw, p0, half_w, colour)
    _disc(draw, p1, half_w, colour)


def _lerp(a, b, t: float):
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def _end(p, length: float, angle: float):
    return (p[0] + length * math.sin(angle), p[1] + length * math.cos(angle))


class _Body:
    """The key levels of one identity in one view, in body fractions."""

    def __init__(self, ident: Identity, view: str):
        self.side = view in ("left", "right")
        self.facing = {"right": 1, "left": -1}.get(view, 0)
        depth = 0.55 if self.side else 1.0  # a side view shows the body's depth, not its width
        self.sh_y = 2 * ident.head_r + 0.022
        self.hip_y = 1.0 - ident.leg_frac
        self.sw = ident.shoulder_w * depth
        self.ww = ident.shoulder_w * ident.waist_ratio * depth
        self.top_end = self.hip_y + ident.top_len
        self.shoe_h = 0.032


def draw_person(draw: ImageDraw.ImageDraw, f: _Frame, ident: Identity, pose: Pose) -> dict:
    """Paint one person back to front; returns the layout (pixel boxes) for tests and tools."""
    b = _Body(ident, pose.view)
    if b.side:
        _accessories_behind_side(draw, f, ident, b)
        _arm(draw, f, ident, b, back=True, swing=-pose.arm_swing)
        _leg(draw, f, ident, b, pose, back=True)
        _leg(draw, f, ident, b, pose, back=False)
    else:
        if pose.view == "front":
            _long_hair(draw, f, ident, b)  # behind the shoulders; from the back it goes on top
        for s in (-1, 1):
            _leg(draw, f, ident, b, pose, back=False, sign=s)
    _pelvis(draw, f, ident, b)
    if ident.lower_kind == "skirt":
        _skirt(draw, f, ident, b)
    torso = _torso(draw, f, ident, b, pose)
    if b.side:
        _arm(draw, f, ident, b, back=False, swing=pose.arm_swing)
    else:
        for s in (-1, 1):
            _arm(draw, f, ident, b, back=False, swing=s * pose.arm_out, sign=s)
    _head(draw, f, ident, b, pose.view)
    _accessories_front(draw, f, ident, b, pose.view)
    return {"torso": torso, "person": f.box(-b.sw - 0.05, 0.0, b.sw + 0.05, 1.0), "view": pose.view}


def _leg(draw, f: _Frame, ident: Identity, b: _Body, pose: Pose, back: bool, sign: int = 0) -> None:
    if b.side:
        hip = f.pt(0.0, b.hip_y)
        angle = (-1 if back else 1) * pose.stride * b.facing
    else:
        hip = f.pt(sign * b.ww * 0.5, b.hip_y)
        angle = sign * (0.03 + 0.25 * pose.stride)  # striding toward the camera barely spreads the feet
    length = (1.0 - b.shoe_h * 0.6 - b.hip_y) * f.h
    foot = _end(hip, length, angle)
    dim = 0.82 if back else 1.0  # the far leg in shadow gives the side view its depth
    skin, lower = _shade(ident.skin, dim), _shade(ident.lower, dim)
    half = ident.leg_w * f.h
    if ident.lower_kind == "trousers":
        _limb(draw, hip, foot, half, lower)
    else:
        _limb(draw, hip, foot, half * 0.8, skin)
        if ident.lower_kind == "shorts":
            _limb(draw, hip, _lerp(hip, foot, 0.42), half * 1.05, lower)
    _shoe(draw, foot, half, b, f, _shade(ident.shoes, dim))


def _shoe(draw, foot, half: float, b: _Body, f: _Frame, colour: Colour) -> None:
    hh = b.shoe_h * f.h * 0.6
    if b.side:
        front, heel = foot[0] + b.facing * half * 2.0, foot[0] - b.facing * half * 0.9
        draw.ellipse([min(front, heel), foot[1] - hh, max(front, heel), foot[1] + hh], fill=colour)
    else:
        draw.ellipse([foot[0] - half * 1.15, foot[1] - hh, foot[0] + half * 1.15, foot[1] + hh], fill=colour)


def _pelvis(draw, f: _Frame, ident: Identity, b: _Body) -> None:
    top, bottom = b.hip_y - 0.06, b.hip_y + 0.035
    w0, w1 = b.ww, b.ww * 1.02
    draw.polygon([f.pt(-w0, top), f.pt(w0, top), f.pt(w1, bottom), f.pt(-w1, bottom)], fill=ident.lower)


def _skirt(draw, f: _Frame, ident: Identity, b: _Body) -> None:
    hem = b.hip_y + ident.leg_frac * 0.5
    waist = b.hip_y - 0.04
    w0, w1 = b.ww, b.ww * 1.6
    draw.polygon([f.pt(-w0, waist), f.pt(w0, waist), f.pt(w1, hem), f.pt(-w1, hem)], fill=ident.lower)


def _torso(draw, f: _Frame, ident: Identity, b: _Body, pose: Pose) -> list[float]:
    """Upper garment (a trapezoid, so patterns can be clipped to it analytically)."""
    y0, y1 = b.sh_y, b.top_end
    draw.polygon([f.pt(-b.sw, y0), f.pt(b.sw, y0), f.pt(b.ww, y1), f.pt(-b.ww, y1)], fill=ident.upper)
    neck = ident.head_r * 0.42
    draw.rectangle(f.box(-neck, b.sh_y - 0.035, neck, b.sh_y + 0.004), fill=ident.skin)

    def half_at(y: float) -> float:
        return b.sw + (b.ww - b.sw) * (y - y0) / (y1 - y0)

    c, n = ident.pattern_colour, ident.n_stripes
    if ident.pattern == "hstripes":
        step = (y1 - y0) / (2 * n + 1)
        for k in range(n):
            ya, yb = y0 + (2 * k + 1) * step, y0 + (2 * k + 2) * step
            ha, hb = half_at(ya), half_at(yb)
            draw.polygon([f.pt(-ha, ya), f.pt(ha, ya), f.pt(hb, yb), f.pt(-hb, yb)], fill=c)
    elif ident.pattern == "vstripes":
        for k in range(n):
            ua, ub = (2 * k + 1) / (2 * n + 1), (2 * k + 2) / (2 * n + 1)
            top = [-b.sw + 2 * b.sw * u for u in (ua, ub)]
            bot = [-b.ww + 2 * b.ww * u for u in (ua, ub)]
            draw.polygon([f.pt(top[0], y0), f.pt(top[1], y0), f.pt(bot[1], y1), f.pt(bot[0], y1)], fill=c)
    elif ident.pattern == "logo" and pose.view == "front":
        _logo(draw, f.pt(0.0, y0 + 0.085), 0.042 * f.h, ident.logo_shape, c)
    return f.box(-b.ww, y0, b.ww, y1)


def _logo(draw, centre, r: float, shape: str, colour: Colour) -> None:
    x, y = centre
    if shape == "circle":
        _disc(draw, centre, r, colour)
    elif shape == "square":
        draw.rectangle([x - r * 0.85, y - r * 0.85, x + r * 0.85, y + r * 0.85], fill=colour)
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x + r, y + r * 0.8), (x - r, y + r * 0.8)], fill=colour)
    else:
        draw.polygon([(x, y - r * 1.1), (x + r, y), (x, y + r * 1.1), (x - r, y)], fill=colour)


def _arm(draw, f: _Frame, ident: Identity, b: _Body, back: bool, swing: float, sign: int = 0) -> None:
    half = ident.arm_w * f.h
    if b.side:
        shoulder = f.pt(0.0, b.sh_y + ident.arm_w)
    else:
        shoulder = f.pt(sign * (b.sw - ident.arm_w * 0.8), b.sh_y + ident.arm_w)
    hand = _end(shoulder, ident.arm_len * f.h, swing)
    dim = 0.82 if back else 1.0
    sleeve, skin = _shade(ident.upper, dim), _shade(ident.skin, dim)
    if ident.long_sleeves:
        _limb(draw, shoulder, hand, half, sleeve)
    else:
        _limb(draw, shoulder, hand, half * 0.85, skin)
        _limb(draw, shoulder, _lerp(shoulder, hand, 0.4), half, sleeve)
    _disc(draw, _end(hand, half * 0.6, swing), half * 1.1, skin)


def _head(draw, f: _Frame, ident: Identity, b: _Body, view: str) -> None:
    r = ident.head_r * f.h
    c = f.pt(b.facing * 0.008, ident.head_r)
    hair_r = r * (1.0 if ident.hair_len == 0 else 1.1)
    if view == "back":
        _disc(draw, c, hair_r, ident.hair if ident.hair_len else _shade(ident.skin, 0.9))
        _long_hair(draw, f, ident, b)
    elif view == "front":
        if ident.hair_len:
            _disc(draw, c, hair_r, ident.hair)
        hairline = c[1] - r * (0.45 if ident.hair_len else 1.0)
        draw.ellipse([c[0] - r * 0.88, hairline, c[0] + r * 0.88, c[1] + r], fill=ident.skin)
        eye = max(0.8, r * 0.11)
        for s in (-1, 1):
            _disc(draw, (c[0] + s * r * 0.36, c[1] + r * 0.1), eye, (30, 25, 25))
    else:
        _disc(draw, c, r, ident.skin)
        if ident.hair_len:
            # hair covers the crown and the back of the head: a wedge away from the face
            start, end = (120, 345) if b.facing > 0 else (195, 420)
            draw.pieslice([c[0] - hair_r, c[1] - hair_r, c[0] + hair_r, c[1] + hair_r], start, end, fill=ident.hair)
            if ident.hair_len >= 2:  # hangs from the back of the head, down the neck
                length = 0.035 if ident.hair_len == 2 else 0.13
                back = -b.facing * ident.head_r
                sheet = f.box(back * 0.2, ident.head_r, back * 1.08, ident.head_r * 1.6 + length)
                draw.rectangle(sheet, fill=ident.hair)
        _disc(draw, (c[0] + b.facing * r * 0.55, c[1] + r * 0.05), max(0.8, r * 0.11), (30, 25, 25))
    if ident.hat is not None:
        _hat(draw, f, ident, b)


def _long_hair(draw, f: _Frame, ident: Identity, b: _Body) -> None:
    """Medium/long hair below the head, as one sheet: the caller picks the drawing order."""
    if ident.hair_len < 2:
        return
    length = 0.05 if ident.hair_len == 2 else 0.16
    w = ident.head_r * 1.05
    draw.rectangle(f.box(-w, ident.head_r, w, b.sh_y + length), fill=ident.hair)


def _hat(draw, f: _Frame, ident: Identity, b: _Body) -> None:
    r = ident.head_r
    brim_y = r * 0.5
    front = 1.7 if b.side else 1.25  # a cap's peak sticks out toward the face in profile
    x0, x1 = (-1.25 * r, front * r) if b.facing >= 0 else (-front * r, 1.25 * r)
    draw.rectangle(f.box(x0, brim_y - 0.012, x1, brim_y + 0.006), fill=_shade(ident.hat, 0.8))
    draw.chord(f.box(-r * 1.05, -0.2 * r, r * 1.05, r * 1.3), 180, 360, fill=ident.hat)


def _accessories_behind_side(draw, f: _Frame, ident: Identity, b: _Body) -> None:
    if ident.backpack is not None:
        x0 = -b.facing * b.sw * 0.9
        pack = f.box(x0, b.sh_y + 0.02, x0 - b.facing * 0.085, b.sh_y + 0.22)
        draw.rounded_rectangle(pack, radius=max(1, 0.02 * f.h), fill=ident.backpack)
    # Facing right, the camera sees the person's right side (bag_side -1), and vice versa.
    if ident.bag_side and ident.bag_side == b.facing:
        # bag on the far hip: only its edge shows behind the body
        _bag(draw, f, ident, b, x=b.facing * -0.02, strap=False)


def _accessories_front(draw, f: _Frame, ident: Identity, b: _Body, view: str) -> None:
    if ident.backpack is not None and not b.side:
        if view == "back":
            pack = f.box(-b.sw * 0.72, b.sh_y + 0.02, b.sw * 0.72, b.sh_y + 0.23)
            draw.rounded_rectangle(pack, radius=max(1, 0.02 * f.h), fill=ident.backpack)
        else:
            for s in (-1, 1):
                p0 = f.pt(s * b.sw * 0.55, b.sh_y)
                _limb(draw, p0, f.pt(s * b.sw * 0.6, b.sh_y + 0.16), max(0.6, 0.011 * f.h), ident.backpack)
    if not ident.bag_side:
        return
    if b.side:
        if ident.bag_side == -b.facing:
            _bag(draw, f, ident, b, x=-b.facing * 0.01, strap=True)
        return
    # Seen from behind the person's left and right swap sides in the image.
    side = ident.bag_side if view == "front" else -ident.bag_side
    _bag(draw, f, ident, b, x=side * (b.ww + 0.04), strap=True, strap_from=-side * b.sw * 0.7)


def _bag(draw, f: _Frame, ident: Identity, b: _Body, x: float, strap: bool, strap_from: float | None = None):
    top = b.hip_y - 0.03
    if strap:
        start = f.pt(strap_from if strap_from is not None else x, b.sh_y)
        _limb(draw, start, f.pt(x, top), max(0.6, 0.008 * f.h), _shade(ident.bag_colour, 0.7))
    box = f.box(x - 0.045, top, x + 0.045, top + 0.085)
    draw.rounded_rectangle(box, radius=max(1, 0.012 * f.h), fill=ident.bag_colour)


def _occluder(draw, size: tuple[int, int], person: list[float], occ: tuple) -> None:
    """Something between camera and person (a bench, a pole, a passer-by) over part of them."""
    H, W = size
    side, cover, colour, stripe, extent = occ
    x0, y0, x1, y1 = person
    if side == "bottom":
        top = y1 - cover * (y1 - y0) * 1.2
        box = [W * (0.0 - extent), top, W * (1.0 - extent * 0.5), H]
        bands = [[box[0], top + k * (H - top) / 5, box[2], top + k * (H - top) / 5 + (H - top) / 12] for k in range(5)]
    else:
        reach = x0 + cover * (x1 - x0) if side == "left" else x1 - cover * (x1 - x0)
        box = [-1, H * extent * 0.6, reach, H] if side == "left" else [reach, H * extent * 0.6, W, H]
        bands = [[box[0], box[1] + k * H / 6, box[2], box[1] + k * H / 6 + H / 24] for k in range(6)]
    draw.rectangle(box, fill=colour)
    ridge = tuple(int(0.75 * a + 0.25 * b) for a, b in zip(colour, stripe))  # slats, not a flag
    for band in bands:
        draw.rectangle(band, fill=ridge)


def paint(
    background: Image.Image, noise: np.ndarray, ident: Identity, cam: Camera, pose: Pose
) -> tuple[Image.Image, dict]:
    """Person on the camera's background, then occluder, camera light and sensor noise."""
    scene_w, H = background.size
    W = scene_w // 2
    left = int(round(pose.scenery_x * (scene_w - W)))
    img = background.crop((left, 0, left + W, H))
    draw = ImageDraw.Draw(img)
    h = H * cam.scale * ident.height * pose.scale_jitter
    feet = H * (0.5 + cam.scale * 0.5) - 1 + pose.lift * H  # the crop keeps feet near the bottom
    cx = W * (0.5 + pose.shift)
    f = _Frame(cx, feet - h, h)
    draw.ellipse(f.box(-0.17, 1.0 - 0.018, 0.17, 1.0 + 0.014), fill=cam.shadow)
    layout = draw_person(draw, f, ident, pose)
    if pose.occluder is not None:
        _occluder(draw, (H, W), layout["person"], pose.occluder)
        layout["occluder"] = pose.occluder[0]
    arr = np.asarray(img, dtype=np.float32)
    arr = arr * (np.asarray(cam.gain, dtype=np.float32) * (cam.brightness * pose.light))
    oy, ox = pose.noise_yx[0] % (noise.shape[0] - H + 1), pose.noise_yx[1] % (noise.shape[1] - W + 1)
    arr += noise[oy : oy + H, ox : ox + W] * cam.noise_sigma
    np.clip(arr, 0.0, 255.0, out=arr)
    return Image.fromarray(arr.astype(np.uint8)), layout
