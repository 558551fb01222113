"""How strongly each camera of the synthetic person world marks its images: a difficulty dial.

The world is built so that raw pixels group by camera (scene, light, framing, viewpoint,
occluders) and only a learned representation groups by identity. At CPU scale that can be more
confound than a short self-supervised run overcomes (benchmarks/README.md, "What stops
self-supervision in the synthetic world"), so each camera effect has a strength here. The
defaults are the world as designed, bit for bit; any other value changes only the effect it
names, and every image stays a pure function of (world seed, pid, camid, pose index, effects).

    SyntheticPersons(seed=0, effects=CameraEffects(cast=0.0, scenery_saturation=0.25))
    humanssl pretrain method=dino data.synthetic_effects.cast=0 data.synthetic_effects.occlusion=0
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from PIL import Image, ImageEnhance

from ..errors import UserError
from . import synthetic_render as R

DESIGNED_HEIGHTS = R.PERSON_HEIGHTS
EVEN_VIEW_P = 1.0 / len(R.VIEWS)  # every viewpoint equally likely: no camera prefers its own


@dataclass(frozen=True)
class CameraEffects:
    # per-camera colour cast and brightness, as a fraction of the designed one; 0: neutral light
    cast: float = 1.0
    # how far a camera's preference for its own viewpoint is kept (0.6-0.85 as designed); 0: even
    view_bias: float = 1.0
    # fraction of the occluders kept (each one kept or dropped by its own seeded draw); 0: none
    occlusion: float = 1.0
    # the range of person height / image height across cameras; (0.8, 0.95): detector-tight boxes
    person_height: tuple[float, float] = DESIGNED_HEIGHTS
    # colourfulness and contrast of every camera's scene; 0 and 0: a flat grey wall
    scenery_saturation: float = 1.0
    scenery_contrast: float = 1.0
    # every camera films camera 1's scene (a person's surroundings no longer tell the camera);
    # with saturation and contrast 0 too: one flat grey wall for all cameras
    scenery_shared: bool = False

    def __post_init__(self) -> None:
        where = "synthetic camera effects (data.synthetic_effects)"
        for name in ("cast", "view_bias", "occlusion"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise UserError(f"{where}: {name} must be a number in 0..1, got {value!r}")
        for name in ("scenery_saturation", "scenery_contrast"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0.0:
                raise UserError(f"{where}: {name} must be a number >= 0, got {value!r}")
        if not isinstance(self.scenery_shared, bool):
            raise UserError(f"{where}: scenery_shared must be true or false, got {self.scenery_shared!r}")
        heights = tuple(self.person_height)
        if len(heights) != 2 or not 0.0 < heights[0] <= heights[1] <= 1.0:
            raise UserError(f"{where}: person_height must be (low, high) with 0 < low <= high <= 1, "
                            f"got {self.person_height!r}")
        object.__setattr__(self, "person_height", (float(heights[0]), float(heights[1])))

    def on_camera(self, cam):
        """The camera (synthetic_render.Camera) with its cast, view preference and framing set."""
        change = {}
        if self.cast != 1.0:
            change["gain"] = tuple(1.0 + (g - 1.0) * self.cast for g in cam.gain)
            change["brightness"] = 1.0 + (cam.brightness - 1.0) * self.cast
        if self.view_bias != 1.0:
            change["view_p"] = EVEN_VIEW_P + (cam.view_p - EVEN_VIEW_P) * self.view_bias
        if self.person_height != DESIGNED_HEIGHTS:
            # the same place in the new range: cameras keep their order from close to far
            lo, hi = DESIGNED_HEIGHTS
            new_lo, new_hi = self.person_height
            change["scale"] = new_lo + (cam.scale - lo) / (hi - lo) * (new_hi - new_lo)
        return dataclasses.replace(cam, **change) if change else cam

    def on_pose(self, pose, seed: int, pid: int, camid: int, index: int):
        """The pose (synthetic_render.Pose) with its occluder kept or dropped by a seeded draw of
        its own stream, so the other draws of the pose never shift; the designed world draws nothing."""
        if pose.occluder is None or self.occlusion >= 1.0:
            return pose
        if R.rng(seed, R.OCCLUDER, pid, camid, index).random() < self.occlusion:
            return pose
        return dataclasses.replace(pose, occluder=None)

    def scene_of(self, camid: int) -> int:
        """The camera whose scene camera `camid` films."""
        return 1 if self.scenery_shared else camid

    def on_scene(self, scene: Image.Image) -> Image.Image:
        if self.scenery_saturation != 1.0:
            scene = ImageEnhance.Color(scene).enhance(self.scenery_saturation)
        if self.scenery_contrast != 1.0:
            scene = ImageEnhance.Contrast(scene).enhance(self.scenery_contrast)
        return scene
