"""OpenGait's pretreated layout: one pickle per sequence, `<subject>/<type>/<view>/<view>.pkl`,
holding a uint8 array (frames, 64, 64) (OpenGait cuts 10 columns per side when loading).

A pickle can run arbitrary code when loaded, so it is read with an unpickler that knows only
the few NumPy functions that rebuild an array; anything else in the file is refused by name.
We write the same layout (`write_pickle_frames`), so OpenGait reads our pre-treatment output.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from humanssl.errors import UserError

# What pickle.dump(ndarray) refers to, for NumPy 1.x (numpy.core) and 2.x (numpy._core), for
# the protocols below 5 (_reconstruct + ndarray + dtype) and protocol 5 (_frombuffer).
_ARRAY_GLOBALS = {
    (module, name)
    for prefix in ("numpy.core", "numpy._core")
    for module, name in (
        (f"{prefix}.multiarray", "_reconstruct"),
        (f"{prefix}.numeric", "_frombuffer"),
        (f"{prefix}.multiarray", "scalar"),
    )
} | {("numpy", "ndarray"), ("numpy", "dtype"),
     ("_codecs", "encode")}  # protocol 2 stores the array bytes as a latin-1 str: harmless
_DTYPES = {"numpy.dtypes"}  # NumPy 2 may name the concrete dtype class (e.g. UInt8DType)

LAYOUT = "<root>/<subject>/<type>/<view>/<view>.pkl holding a uint8 array (frames, 64, 64)"


class _ArrayOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ARRAY_GLOBALS or (module in _DTYPES and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name}: only NumPy arrays may be stored")


def read_pickle_frames(path) -> np.ndarray:
    """The silhouettes of one OpenGait pickle as uint8 (frames, h, w); a clear error otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the sequence pickle {path} ({exc}); expected {LAYOUT}") from None
    try:
        obj = _ArrayOnly(io.BytesIO(data)).load()
    except Exception as exc:  # corrupt files raise many types
        raise UserError(f"{path} is not a pickled NumPy array ({exc}); expected {LAYOUT}") from None
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(a, np.ndarray) for a in obj):
        obj = np.stack(obj) if len({a.shape for a in obj}) == 1 else obj
    if not isinstance(obj, np.ndarray) or obj.dtype == object:
        raise UserError(f"{path} holds {type(obj).__name__}, not one array of frames; expected {LAYOUT}")
    if obj.ndim == 4 and obj.shape[-1] in (1, 3):  # frames stored with a channel axis
        obj = obj[..., 0]
    if obj.ndim != 3:
        raise UserError(f"{path} holds an array shaped {obj.shape}; expected (frames, height, width), {LAYOUT}")
    if obj.dtype != np.uint8:
        scale = 255.0 if obj.size and float(obj.max()) <= 1.0 else 1.0  # 0/1 float masks
        obj = np.clip(np.rint(obj.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    return obj


def write_pickle_frames(path, frames: np.ndarray) -> None:
    """Save uint8 (frames, h, w) the way OpenGait's pretreatment does (a bare pickled array)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(np.ascontiguousarray(frames, dtype=np.uint8), f, protocol=4)
