"""Loading and converting official checkpoints (see solider.py for the layouts recognised)."""

from humanssl.hub.reading import read_checkpoint
from humanssl.hub.solider import (
    Extracted,
    LoadReport,
    convert_solider,
    export_solider,
    extract_backbone,
    load_swin_state,
    load_swin_weights,
    swin_from_checkpoint,
)
from humanssl.hub.swin_keys import infer_swin_arch, microsoft_to_solider, resize_bias_table, solider_to_microsoft

__all__ = [
    "Extracted", "LoadReport", "convert_solider", "export_solider", "extract_backbone", "infer_swin_arch",
    "load_swin_state", "load_swin_weights", "microsoft_to_solider", "read_checkpoint", "resize_bias_table",
    "solider_to_microsoft", "swin_from_checkpoint",
]
