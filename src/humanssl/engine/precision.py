"""Mixed precision: which autocast dtype to use and whether a gradient scaler is needed."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from humanssl.errors import UserError


@dataclass(frozen=True)
class Precision:
    name: str  # fp32, bf16, fp16
    device_type: str

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def needs_scaler(self) -> bool:
        return self.name == "fp16"

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)


def resolve_precision(requested: str, device: torch.device) -> Precision:
    if requested == "auto":
        if device.type == "cuda":
            requested = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            requested = "fp32"
    if requested == "fp16" and device.type != "cuda":
        raise UserError("train.precision=fp16 needs a CUDA device; on CPU use bf16 or fp32")
    return Precision(requested, device.type)
