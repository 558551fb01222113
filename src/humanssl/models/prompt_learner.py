"""CLIP-ReID's prompt learner: "A photo of a X X X X person." with identity-specific X's.

The four X token embeddings are replaced by learnable vectors `cls_ctx` (num_ids, 4, width),
one set per training identity (init N(0, 0.02)). The embeddings of the fixed words
(prefix: SOS "a photo of a"; suffix: "person ." EOT and padding) are computed once with CLIP's
token embedding and kept as frozen buffers, so the token embedding table itself is not kept.
VeRi and VehicleID use "vehicle" instead of "person".
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from humanssl.models.clip_towers import import_open_clip

N_CTX_PREFIX = 4  # "a photo of a" after SOS
N_CLS_CTX = 4     # the X X X X placeholders

VEHICLE_DATASETS = ("veri", "vehicleid")


def prompt_template(dataset: str) -> str:
    noun = "vehicle" if dataset.lower().replace("-", "").replace("_", "") in VEHICLE_DATASETS else "person"
    return f"A photo of a X X X X {noun}."


def tokenize(text: str, context_length: int = 77) -> Tensor:
    """(1, context_length) CLIP BPE ids, from the vocabulary that ships with open_clip (offline)."""
    open_clip = import_open_clip()
    with torch.device("cpu"):  # a meta-device build still needs real token ids
        return open_clip.tokenize([text], context_length=context_length).cpu()


class PromptLearner(nn.Module):
    def __init__(self, num_classes: int, token_embedding: nn.Embedding, dataset: str = "market1501",
                 context_length: int = 77):
        super().__init__()
        dim = token_embedding.embedding_dim
        tokens = tokenize(prompt_template(dataset), context_length)
        with torch.no_grad():
            embedding = token_embedding(tokens.to(token_embedding.weight.device))
        cls_ctx = torch.empty(num_classes, N_CLS_CTX, dim, device=token_embedding.weight.device)
        self.cls_ctx = nn.Parameter(nn.init.normal_(cls_ctx, std=0.02))
        self.register_buffer("token_prefix", embedding[:, :N_CTX_PREFIX + 1].clone())
        self.register_buffer("token_suffix", embedding[:, N_CTX_PREFIX + 1 + N_CLS_CTX:].clone())
        self.register_buffer("tokenized_prompts", tokens, persistent=False)
        self.num_classes = num_classes

    @property
    def eot_index(self) -> int:
        return int(self.tokenized_prompts.argmax(-1))

    def forward(self, labels: Tensor) -> Tensor:
        """(B,) identity labels -> (B, context_length, width) full prompt embeddings."""
        b = labels.shape[0]
        return torch.cat([self.token_prefix.expand(b, -1, -1), self.cls_ctx[labels],
                          self.token_suffix.expand(b, -1, -1)], dim=1)
