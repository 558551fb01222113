"""The SAIP student and teacher: the ViT and its decoders under the official names of
`csl_vit_tiny_patch16` (`backbone`, `csr_decoder`, `csm_decoder`, `css_decoder`), so their state
dicts read like an official checkpoint's `student` / `teacher` entries.

The official teacher is a full copy, decoders included, but only its backbone and CSM head are
ever run; ours holds just those two (the EMA of the other decoders would be dead weight).
"""

from __future__ import annotations

from torch import nn

from humanssl.errors import UserError
from humanssl.models import saip_vit
from humanssl.models.saip_decoders import CSMDecoder, CSRDecoder, CSSDecoder

BACKBONES = ("saip_vit_tiny", "saip_vit_mini")


class SAIPNetwork(nn.Module):
    def __init__(self, backbone: saip_vit.SAIPViT, csm_decoder: CSMDecoder, csr_decoder: CSRDecoder | None = None,
                 css_decoder: CSSDecoder | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        if csr_decoder is not None:  # registered in the official order
            self.csr_decoder = csr_decoder
        self.csm_decoder = csm_decoder
        if css_decoder is not None:
            self.css_decoder = css_decoder


def saip_backbone(name: str, img_size, drop_path: float = 0.0, pos_resample: str = "sequence",
                  weights: str | None = None, init: str = "official") -> saip_vit.SAIPViT:
    """A SAIP ViT whose `forward` gives the final class token (kNN, downstream) while the
    method calls `forward_features` for everything else."""
    if name not in BACKBONES:
        raise UserError(f"model.backbone={name!r}: SAIP trains its own ViT; expected one of {', '.join(BACKBONES)}")
    model = getattr(saip_vit, name)(img_size=tuple(int(s) for s in img_size), drop_path_rate=drop_path,
                                    pos_resample=pos_resample, pooled_only=True, init=init)
    if weights is not None:
        saip_vit.load_saip_weights(model, weights)
    return model
