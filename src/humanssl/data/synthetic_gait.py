"""Synthetic gait: walking silhouettes written in the CASIA-B layout, so the gait pipeline runs
end to end without the real data.

    write_casiab("data/synthetic-casiab", num_ids=20)      # 20 x 10 walks x 11 views, 64x44 PNGs
    write_casiab("raw", num_ids=2, raw=True)                # raw canvases, for gait-pretreat

Who someone is lives in how they are built and how they walk: body proportions (leg, torso,
head, shoulder and hip widths, body depth, limb thickness), stride, knee lift, arm swing,
cadence (frames per gait cycle) and posture. A walk adds only small jitter (start phase,
cadence, stride). Views 000..180 (18-degree steps) turn the walker about the vertical axis
under a weak perspective: 000 walks towards the camera (lateral widths seen, swing
foreshortened), 090 is the side view (swing seen in full, body depth as width), 180 walks away.
Conditions follow CASIA-B: nm-01..06 normal; bg-01..02 a bag (shoulder bag, hand bag or
backpack, which also damps the arm swing on its side); cl-01..02 a coat (wider torso down to
the thighs or knees, thicker arms). Everything comes from seeded streams keyed by (seed, id,
walk, view), so any subset renders identically and the output is the same on every run.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from humanssl.data.gait.casiab import TYPES, VIEWS
from humanssl.data.gait.pretreat import pretreat_frame
from humanssl.data.synthetic_render import rng
from humanssl.errors import UserError

GAIT_IDENTITY, GAIT_WALK, GAIT_VIEW = 101, 102, 103  # stream tags, apart from synthetic_render's
RAW_SIZE = (120, 160)  # (height, width): CASIA-B's 240x320 at half size
PERSPECTIVE = 0.12  # relative size change per unit of body height towards the camera


@dataclass(frozen=True)
class GaitIdentity:
    leg: float  # hip height, fraction of body height
    thigh_frac: float
    torso: float  # hip to shoulder
    head_r: float
    shoulder_w: float  # half-widths
    hip_w: float
    depth: float  # half-depth of the torso, front to back
    arm: float
    arm_t: float  # half-thickness of limbs
    leg_t: float
    foot: float
    stride: float  # hip swing amplitude, radians
    knee: float  # knee flexion amplitude, radians
    arm_swing: float
    elbow: float
    cadence: float  # frames per gait cycle
    lean: float  # forward lean of the upper body, radians


@lru_cache(maxsize=4096)
def sample_gait_identity(seed: int, pid: int) -> GaitIdentity:
    g = rng(seed, GAIT_IDENTITY, pid)
    u = lambda a, b: float(g.uniform(a, b))  # noqa: E731
    return GaitIdentity(
        leg=u(0.45, 0.54), thigh_frac=u(0.46, 0.54), torso=u(0.27, 0.33), head_r=u(0.05, 0.07),
        shoulder_w=u(0.095, 0.145), hip_w=u(0.065, 0.1), depth=u(0.045, 0.08), arm=u(0.34, 0.42),
        arm_t=u(0.02, 0.034), leg_t=u(0.032, 0.055), foot=u(0.05, 0.075),
        stride=math.radians(u(16, 32)), knee=math.radians(u(30, 65)), arm_swing=math.radians(u(8, 42)),
        elbow=math.radians(u(5, 30)), cadence=u(20, 34), lean=math.radians(u(-3, 9)),
    )


@dataclass(frozen=True)
class Walk:
    """One walk of one identity (shared by its 11 views, as CASIA-B records them at once)."""

    bag: str  # "" | "shoulder" | "hand" | "backpack"
    bag_side: int
    bag_size: tuple[float, float, float]  # forward, lateral, vertical extent
    coat: float  # 0: none, else how far below the hip the coat reaches
    cadence: float
    stride: float
    arm_swing: float


def sample_walk(seed: int, pid: int, seq_type: str) -> Walk:
    ident = sample_gait_identity(seed, pid)
    g = rng(seed, GAIT_WALK, pid, TYPES.index(seq_type) if seq_type in TYPES else sum(map(ord, seq_type)))
    kind = seq_type[:2]
    bag = str(g.choice(["shoulder", "hand", "backpack"])) if kind == "bg" else ""
    size = {"shoulder": (0.1, 0.05, 0.14), "hand": (0.12, 0.04, 0.1), "backpack": (0.1, 0.2, 0.22), "": (0, 0, 0)}[bag]
    size = tuple(float(s * g.uniform(0.8, 1.25)) for s in size)
    return Walk(
        bag=bag, bag_side=int(g.choice([-1, 1])), bag_size=size,
        coat=float(g.uniform(0.12, 0.3)) if kind == "cl" else 0.0,
        cadence=ident.cadence * float(g.uniform(0.96, 1.04)), stride=ident.stride * float(g.uniform(0.95, 1.05)),
        arm_swing=ident.arm_swing * float(g.uniform(0.9, 1.1)),
    )


def _pose(ident: GaitIdentity, walk: Walk, phase: float) -> dict:
    """3D joints (forward, left, up) at a gait phase; the lower foot touches the ground."""
    thigh, shin = ident.leg * ident.thigh_frac, ident.leg * (1 - ident.thigh_frac)
    legs, drop = {}, []
    for side, ph in ((1, phase), (-1, phase + math.pi)):
        a = walk.stride * math.sin(ph)
        k = ident.knee * (max(0.0, math.cos(ph - 0.4)) ** 1.5) + 0.08 * ident.knee
        knee = np.array([thigh * math.sin(a), 0.0, -thigh * math.cos(a)])
        ankle = knee + [shin * math.sin(a - k), 0.0, -shin * math.cos(a - k)]
        legs[side] = (knee, ankle)
        drop.append(-ankle[2])
    pelvis_z = max(drop) + 0.015
    lean = np.array([math.sin(ident.lean), 0.0, math.cos(ident.lean)])
    joints = {"pelvis": np.array([0.0, 0.0, pelvis_z])}
    joints["neck"] = joints["pelvis"] + ident.torso * lean
    joints["head"] = joints["neck"] + (0.03 + ident.head_r) * lean
    for side, (knee, ankle) in legs.items():
        hip = joints["pelvis"] + [0.0, side * ident.hip_w * 0.6, 0.0]
        joints[f"hip{side}"], joints[f"knee{side}"], joints[f"ankle{side}"] = hip, hip + knee, hip + ankle
        joints[f"toe{side}"] = hip + ankle + [ident.foot, 0.0, 0.0]
    for side, ph in ((1, phase + math.pi), (-1, phase)):  # arms swing against the same-side leg
        damp = 0.3 if walk.bag in ("shoulder", "hand") and walk.bag_side == side else 1.0
        g = walk.arm_swing * damp * math.sin(ph)
        e = ident.elbow * (1.0 + 0.6 * max(0.0, math.sin(ph)))
        upper, fore = 0.45 * ident.arm, 0.55 * ident.arm
        shoulder = joints["neck"] + [0.0, side * (ident.shoulder_w - ident.arm_t), -0.02]
        elbow = shoulder + [upper * math.sin(g), 0.0, -upper * math.cos(g)]
        joints[f"shoulder{side}"], joints[f"elbow{side}"] = shoulder, elbow
        joints[f"wrist{side}"] = elbow + [fore * math.sin(g + e), 0.0, -fore * math.cos(g + e)]
    return joints


def render_frame(ident: GaitIdentity, walk: Walk, phase: float, view_deg: float, size=RAW_SIZE,
                 scale: float = 0.78, shift: float = 0.0) -> np.ndarray:
    """One raw silhouette, uint8 (h, w) with values 0 / 255."""
    h, w = size
    th = math.radians(view_deg)
    s_u, c_u = math.sin(th), math.cos(th)
    px = scale * h
    joints = _pose(ident, walk, phase)

    def project(p) -> tuple[float, float, float]:
        u = p[0] * s_u - p[1] * c_u
        d = p[0] * c_u + p[1] * s_u  # towards the camera
        k = 1.0 + PERSPECTIVE * d
        return w / 2 + shift * w + u * k * px, h * 0.92 - (p[2] * k - 0.5 * (k - 1)) * px, k

    def half_width(lateral: float, depth: float) -> float:
        return abs(lateral * c_u) + abs(depth * s_u)

    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)

    def limb(a, b, t):
        (x0, y0, k0), (x1, y1, k1) = project(a), project(b)
        r = max(1.0, t * px * (k0 + k1) / 2)
        draw.line([(x0, y0), (x1, y1)], fill=255, width=max(1, round(2 * r)))
        for x, y in ((x0, y0), (x1, y1)):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)

    def slab(bottom, top, half_bottom, half_top):
        (xb, yb, kb), (xt, yt, kt) = project(bottom), project(top)
        draw.polygon([(xb - half_bottom * kb * px, yb), (xb + half_bottom * kb * px, yb),
                      (xt + half_top * kt * px, yt), (xt - half_top * kt * px, yt)], fill=255)

    coat_t = 1.35 if walk.coat else 1.0
    depth = ident.depth * (1.25 if walk.coat else 1.0)
    for side in (1, -1):
        limb(joints[f"hip{side}"], joints[f"knee{side}"], ident.leg_t)
        limb(joints[f"knee{side}"], joints[f"ankle{side}"], ident.leg_t * 0.8)
        limb(joints[f"ankle{side}"], joints[f"toe{side}"], ident.leg_t * 0.55)
        limb(joints[f"shoulder{side}"], joints[f"elbow{side}"], ident.arm_t * coat_t)
        limb(joints[f"elbow{side}"], joints[f"wrist{side}"], ident.arm_t * 0.85 * coat_t)
    pelvis, neck = joints["pelvis"], joints["neck"]
    slab(pelvis + [0, 0, -0.03], neck, half_width(ident.hip_w, depth), half_width(ident.shoulder_w, depth))
    if walk.coat:
        hem = pelvis + [0.0, 0.0, -walk.coat]
        slab(hem, pelvis, half_width(ident.hip_w * 1.35 + 0.02, depth * 1.2), half_width(ident.hip_w * 1.1, depth))
    hx, hy, hk = project(joints["head"])
    r = ident.head_r * hk * px
    draw.ellipse([hx - r, hy - r * 1.15, hx + r, hy + r * 1.15], fill=255)
    if walk.bag:
        f_ext, l_ext, z_ext = walk.bag_size
        side = walk.bag_side
        if walk.bag == "backpack":
            centre = neck + [-(depth + f_ext / 2), 0.0, -0.35 * ident.torso]
        elif walk.bag == "hand":
            centre = joints[f"wrist{side}"] + [0.0, 0.0, -z_ext / 2]
        else:
            centre = pelvis + [0.02, side * (ident.hip_w + l_ext / 2 + 0.01), 0.02]
        cx, cy, ck = project(centre)
        hw_ = half_width(l_ext / 2, f_ext / 2) * ck * px
        hz = z_ext / 2 * ck * px
        draw.rounded_rectangle([cx - hw_, cy - hz, cx + hw_, cy + hz], radius=max(1, int(hw_ / 3)), fill=255)
    return np.asarray(img)


def render_sequence(seed: int, pid: int, seq_type: str, view: str | int, num_frames: int | None = None,
                    frames: tuple[int, int] = (40, 56), raw: bool = False, size=RAW_SIZE) -> np.ndarray:
    """uint8 (s, 64, 44) pretreated silhouettes of one walk from one view (0/255), or the raw
    canvases (s, *size) with `raw=True`."""
    ident, walk = sample_gait_identity(seed, pid), sample_walk(seed, pid, seq_type)
    view_deg = float(view)
    g = rng(seed, GAIT_VIEW, pid, TYPES.index(seq_type) if seq_type in TYPES else 99, int(view_deg))
    n = int(num_frames) if num_frames is not None else int(g.integers(frames[0], frames[1] + 1))
    phase0, scale, shift = float(g.uniform(0, 2 * math.pi)), float(g.uniform(0.7, 0.82)), float(g.uniform(-0.12, 0.12))
    out = []
    for t in range(n):
        canvas = render_frame(ident, walk, phase0 + 2 * math.pi * t / walk.cadence, view_deg, size, scale, shift)
        if raw:
            out.append(canvas)
            continue
        frame = pretreat_frame(canvas)
        if frame is None:  # cannot happen for a whole figure; kept so the length is always n
            frame = np.zeros((64, 44), np.uint8)
        out.append(np.where(frame >= 128, 255, 0).astype(np.uint8))
    return np.stack(out) if out else np.zeros((0, *(size if raw else (64, 44))), np.uint8)


def write_casiab(root, num_ids: int, seed: int = 0, *, types=TYPES, views=VIEWS, frames: tuple[int, int] = (40, 56),
                 raw: bool = False, first_id: int = 1) -> Path:
    """Write `num_ids` synthetic subjects as `<root>/<id>/<type>/<view>/<id>-<type>-<view>-<nnn>.png`.

    Pretreated 64x44 binary frames by default (ready for `load_casiab`); `raw=True` writes the
    raw canvases instead (for `humanssl gait-pretreat`). Returns root.
    """
    if int(num_ids) < 1 or not 1 <= frames[0] <= frames[1]:
        raise UserError(f"write_casiab needs num_ids >= 1 and 1 <= frames[0] <= frames[1]; got {num_ids}, {frames}")
    unknown = [t for t in types if t not in TYPES] + [v for v in views if v not in VIEWS]
    if unknown:
        raise UserError(f"write_casiab: unknown walk/view {', '.join(unknown)}; "
                        f"expected types from {TYPES} and views from {VIEWS}")
    root = Path(root)
    for pid in range(first_id, first_id + int(num_ids)):
        subject = f"{pid:03d}"
        for seq_type in types:
            for view in views:
                folder = root / subject / seq_type / view
                os.makedirs(folder, exist_ok=True)
                for i, frame in enumerate(render_sequence(seed, pid, seq_type, view, frames=frames, raw=raw), start=1):
                    Image.fromarray(frame).save(folder / f"{subject}-{seq_type}-{view}-{i:03d}.png", compress_level=1)
    return root
