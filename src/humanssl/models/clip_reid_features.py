"""A CLIP-ReID / SVLL-ReID model as a feature extractor for retrieval.

The test feature is concat(CLS, CLS @ proj) before the BNNecks, L2-normalised (the official
TEST.NECK_FEAT 'before', FEAT_NORM 'yes'). Models trained with side information (SIE) embed
the camera / view of the image at test time too, as the official test does, so this module
takes them from the batch: `uses_side_information` tells the feature extractor to pass them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from humanssl.models.clip_reid import ClipReid


class ClipReidFeatures(nn.Module):
    uses_side_information = True

    def __init__(self, model: ClipReid):
        super().__init__()
        self.model = model
        self.embed_dim = model.image_encoder.width + model.image_encoder.proj_dim

    def forward(self, images: Tensor, camid: Tensor | None = None, viewid: Tensor | None = None) -> Tensor:
        # The ViT tower has no dropout or batch statistics; the RN50 tower's BatchNorms need eval mode.
        m = self.model
        side = m.side_information(camid if m.sie_camera else None, viewid if m.sie_view else None)
        _, f, f_proj = m.image_encoder.pooled(images, side)
        return F.normalize(torch.cat([f, f_proj], dim=1), dim=1)
