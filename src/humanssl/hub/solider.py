"""Released SOLIDER weights in, safetensors out (and back).

Layouts recognised, whichever file they come in:
  * a full training checkpoint (`checkpoint.pth`, the released `swin_*.pth`): `teacher` holds
    `backbone.<key>` + `head.*`, `student` the same under `module.` (DDP);
  * `checkpoint_tea.pth` (SOLIDER's convert_model.py): the teacher dict alone;
  * a bare backbone state dict, optionally under `state_dict` / `model` / `module.`;
  * Microsoft's ImageNet Swin (`{"model": {"layers.0...."}}`), renamed and permuted on the way in;
  * a humanssl run folder or its model.safetensors (`teacher.backbone.<key>`).
Loading never succeeds silently with nothing: the key prefixes tried are named when none fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from humanssl.errors import UserError
from humanssl.hub.reading import read_checkpoint, unwrap_state_dict
from humanssl.hub.swin_keys import infer_swin_arch, is_microsoft_swin, microsoft_to_solider, resize_bias_table
from humanssl.hub.swin_keys import solider_to_microsoft

# First names of the backbone's state dict; a key counts as a backbone key if it starts so.
SWIN_ROOTS = ("patch_embed.projection.", "patch_embed.norm.", "stages.", "norm0.", "norm1.", "norm2.", "norm3.",
              "semantic_embed_w.", "semantic_embed_b.", "absolute_pos_embed")
PARTS = ("teacher", "student")
# Allowed to be absent from a file: derived buffers, and what Microsoft's Swin does not have.
_ALWAYS_OPTIONAL = ("relative_position_index",)
_NOT_IN_MICROSOFT = ("semantic_embed_w.", "semantic_embed_b.", "norm0.", "norm1.", "norm2.")


@dataclass
class Extracted:
    """A backbone state dict found inside a checkpoint, with where it was found."""

    state: dict[str, Tensor]
    origin: str
    source: str = "solider"  # or "microsoft"
    part: str | None = None  # "teacher" / "student" for a full training checkpoint
    prefix: str = ""
    ignored: list[str] = field(default_factory=list)  # tensors outside the backbone (heads, ...)

    def describe(self) -> str:
        where = f"the {self.part} of " if self.part else ""
        how = f"key prefix '{self.prefix}'" if self.prefix else "no key prefix"
        extra = f", {len(self.ignored)} other tensors left out" if self.ignored else ""
        kind = "Microsoft Swin weights (converted)" if self.source == "microsoft" else "SOLIDER Swin weights"
        return f"{len(self.state)} {kind} from {where}{self.origin} ({how}{extra})"


@dataclass
class LoadReport:
    extracted: Extracted
    missing: list[str]
    unexpected: list[str]
    resized: list[str]
    tolerated: list[str]  # missing or unexpected, but expected to be (see load_swin_state)

    def summary(self) -> str:
        lines = [f"loaded {self.extracted.describe()}"]
        if self.resized:
            lines.append(f"resized relative position tables (bicubic): {len(self.resized)}")
        for name, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            keys = [k for k in keys if k not in self.tolerated]
            if keys:
                lines.append(f"{name} keys ({len(keys)}): {_some(keys)}")
        if self.tolerated:
            lines.append(f"{len(self.tolerated)} keys absent or unused as expected ({_some(self.tolerated, 2)})")
        return "; ".join(lines)


def extract_backbone(obj: Any, origin: str = "<memory>", which: str = "teacher") -> Extracted:
    """The Swin backbone tensors of a loaded checkpoint object, SOLIDER names, no prefix."""
    if which not in PARTS:
        raise UserError(f"which must be one of {', '.join(PARTS)}, not '{which}'")
    part = None
    if isinstance(obj, dict) and any(isinstance(obj.get(p), dict) for p in PARTS):
        if not isinstance(obj.get(which), dict):
            present = [p for p in PARTS if isinstance(obj.get(p), dict)]
            raise UserError(f"{origin} is a training checkpoint without a '{which}' entry (it has {present})")
        obj, part = obj[which], which
    tensors = unwrap_state_dict(obj, origin)
    if not tensors:
        raise UserError(f"{origin} holds no tensors (keys: {_some(list(obj))})")

    source = "solider"
    if is_microsoft_swin(tensors):
        tensors, source = microsoft_to_solider(tensors), "microsoft"
    prefixes = _prefixes(which)
    counts = [sum(k.startswith(p) and k[len(p):].startswith(SWIN_ROOTS) for k in tensors) for p in prefixes]
    best = max(range(len(prefixes)), key=lambda i: counts[i])  # ties go to the earlier prefix
    has_blocks = any(k.startswith(f"{prefixes[best]}stages.") for k in tensors)
    if counts[best] == 0 or not has_blocks:
        tried = ", ".join(repr(p) for p in prefixes)
        raise UserError(
            f"{origin}: no SOLIDER Swin backbone weights found; tried the key prefixes {tried} and "
            f"expected keys such as 'patch_embed.projection.weight' after them. The file's keys "
            f"look like: {_some(sorted(tensors))}"
        )
    prefix, state, ignored = prefixes[best], {}, []
    for k, v in tensors.items():
        if k.startswith(prefix) and k[len(prefix):].startswith(SWIN_ROOTS):
            state[k[len(prefix):]] = v
        else:
            ignored.append(k)
    return Extracted(state, origin, source, part, prefix, ignored)


def _prefixes(which: str) -> list[str]:
    other = PARTS[1 - PARTS.index(which)]
    # "base." is the backbone of SOLIDER-REID / TransReID fine-tuned re-id models (beside their
    # "bottleneck." and "classifier." heads, which are left out).
    return ["backbone.", "module.backbone.", f"{which}.backbone.", "", "module.", f"{other}.backbone.",
            "base.", "module.base."]


def load_swin_weights(model: nn.Module, path: str | Path, *, which: str = "teacher",
                      trust_checkpoint: bool = False, strict: bool = True) -> LoadReport:
    """Load released SOLIDER (or Microsoft ImageNet) Swin weights into a `SwinTransformer`."""
    obj = read_checkpoint(path, trust_checkpoint=trust_checkpoint)
    return load_swin_state(model, extract_backbone(obj, str(path), which), strict=strict)


def load_swin_state(model: nn.Module, extracted: Extracted, strict: bool = True) -> LoadReport:
    """Copy extracted tensors into the model. Relative position tables of another window size
    are resized; index buffers of another window size are rebuilt by the model, not loaded.
    Tolerated gaps: `relative_position_index` (derived), for Microsoft weights the parts
    Microsoft's Swin lacks (controller, norm0-2), and controller weights given to a plain Swin.
    Other missing/unexpected keys raise with `strict`, else they are only reported."""
    own = model.state_dict()
    state, resized, bad_shapes = {}, [], []
    for k, v in extracted.state.items():
        if k in own and v.shape != own[k].shape:
            if k.endswith("relative_position_bias_table") and v.shape[1] == own[k].shape[1]:
                v = resize_bias_table(v, own[k].shape[0], k)
                resized.append(k)
            elif k.endswith("relative_position_index"):
                continue
            else:
                bad_shapes.append(f"{k}: file {tuple(v.shape)}, model {tuple(own[k].shape)}")
                continue
        state[k] = v
    origin = extracted.origin
    if bad_shapes:
        raise UserError(
            f"{origin} does not fit the model ({len(bad_shapes)} shape mismatches, e.g. {'; '.join(bad_shapes[:3])}); "
            f"the file looks like a Swin with {_arch_words(extracted.state)}"
        )
    missing = sorted(k for k in own if k not in extracted.state)
    unexpected = sorted(k for k in state if k not in own)
    plain = not getattr(model, "has_controller", True)
    tolerated = [k for k in missing if k.endswith(_ALWAYS_OPTIONAL)
                 or (extracted.source == "microsoft" and k.startswith(_NOT_IN_MICROSOFT))]
    tolerated += [k for k in unexpected if plain and k.startswith(("semantic_embed_w.", "semantic_embed_b."))]
    if strict and (set(missing) | set(unexpected)) - set(tolerated):
        bad_missing = [k for k in missing if k not in tolerated]
        bad_unexpected = [k for k in unexpected if k not in tolerated]
        raise UserError(
            f"{origin} does not match the model: missing keys ({len(bad_missing)}) {_some(bad_missing)}, "
            f"unexpected keys ({len(bad_unexpected)}) {_some(bad_unexpected)}; "
            f"the file looks like a Swin with {_arch_words(extracted.state)}"
        )
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return LoadReport(extracted, missing, unexpected, resized, tolerated)


def _arch_words(state: dict[str, Tensor]) -> str:
    try:
        a = infer_swin_arch(state)
    except (UserError, KeyError, IndexError):
        return "an unrecognised layout"
    return f"embed_dims {a['embed_dims']}, depths {a['depths']}, heads {a['num_heads']}, window {a['window_size']}"


def _some(keys: list[str], n: int = 5) -> str:
    return "[" + ", ".join(keys[:n]) + (", ..." if len(keys) > n else "") + "]" if keys else "none"


# ---------------------------------------------------------------- conversion
def convert_solider(in_path: str | Path, out_path: str | Path, *, which: str = "teacher",
                    trust_checkpoint: bool = False) -> Extracted:
    """Write the backbone of an official SOLIDER (or Microsoft Swin) file as a bare safetensors
    state dict with SOLIDER names; heads, optimizer and training state are left out."""
    from safetensors.torch import save_file

    from humanssl.engine.checkpoint import cpu_tensors

    extracted = extract_backbone(read_checkpoint(in_path, trust_checkpoint), str(in_path), which)
    arch = infer_swin_arch(extracted.state)  # also proves the layout is complete enough to rebuild
    meta = {"format": "pt", "humanssl": "solider-swin-backbone", "source": extracted.source,
            "origin": Path(in_path).name, "part": extracted.part or "", "arch": _arch_words(extracted.state)}
    meta["semantic_controller"] = str(arch["semantic_weight"] >= 0).lower()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_file(cpu_tensors(extracted.state), str(out_path), metadata=meta)
    return extracted


def export_solider(in_path: str | Path, out_path: str | Path, *, layout: str = "teacher",
                   trust_checkpoint: bool = False) -> Extracted:
    """The way back: write a backbone (any layout above, e.g. our safetensors) as a .pth file
    for the official code. layout "teacher": `backbone.<key>` (checkpoint_tea.pth, what
    SOLIDER's init_weights and SOLIDER-REID load); "bare": keys as they are; "microsoft":
    `{"model": ...}` in Microsoft's Swin names (controller and norm0-2 dropped)."""
    extracted = extract_backbone(read_checkpoint(in_path, trust_checkpoint), str(in_path))
    state = {k: v.contiguous() for k, v in extracted.state.items()}
    if layout == "teacher":
        obj: dict = {f"backbone.{k}": v for k, v in state.items()}
    elif layout == "bare":
        obj = state
    elif layout == "microsoft":
        obj = {"model": solider_to_microsoft(state)}
    else:
        raise UserError(f"unknown export layout '{layout}'; expected teacher, bare or microsoft")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, out_path)
    return extracted


def swin_from_checkpoint(path: str | Path, *, which: str = "teacher", trust_checkpoint: bool = False,
                         **kwargs) -> nn.Module:
    """A `SwinTransformer` of the file's architecture with the file's weights; kwargs (strides,
    semantic_weight, pooled_only, drop_path_rate ...) go to the constructor."""
    from humanssl.models.swin import SwinTransformer

    extracted = extract_backbone(read_checkpoint(path, trust_checkpoint), str(path), which)
    arch = infer_swin_arch(extracted.state)
    if "semantic_weight" in kwargs and arch["semantic_weight"] < 0 <= kwargs["semantic_weight"]:
        raise UserError(f"{path} has no semantic controller weights; it cannot take a semantic weight")
    model = SwinTransformer(**{**arch, **kwargs})
    load_swin_state(model, extracted)
    return model
