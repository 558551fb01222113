"""Triplet fine-tuning of a gait encoder (SelfGait's `finetune`, GaitSet's training loss).

Per step, for P x M clips (n, s, 64, 44) with subject labels:
  1. feature = TP_1(conv_trans(online_network(clips)))  -> (n, 31, hidden_dim)
  2. loss = GaitSet's triplet loss on every strip on its own (batch-all by default, margin 0.2),
     averaged over the 31 strips.
The encoder keeps SelfGait's module names (under `encoder.`), so a fine-tuned run evaluates with
`humanssl evaluate gait --checkpoint RUN` like a pretraining run.
"""

from __future__ import annotations

from torch import Tensor, nn

from humanssl.engine.optim import decay_groups
from humanssl.losses.gait_triplet import PartTripletLoss
from humanssl.methods.base import Method
from humanssl.models.selfgait import SelfGaitEncoder


class GaitFinetune(Method):
    def __init__(self, encoder: SelfGaitEncoder, margin: float = 0.2, mode: str = "full",
                 decay_norms_and_biases: bool = True) -> None:
        super().__init__()
        self.encoder = encoder
        self.triplet = PartTripletLoss(margin, mode)
        # The official SGD decays every parameter, norms and biases included.
        self.decay_norms_and_biases = decay_norms_and_biases

    def training_step(self, batch: dict, step: int) -> dict[str, Tensor]:
        feature = self.encoder(batch["silhouettes"].float())  # (n, parts, d)
        label = batch["label"].to(feature.device)
        return {"triplet": self.triplet(feature.transpose(0, 1).contiguous(), label)}

    def param_groups(self) -> list[dict]:
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        if self.decay_norms_and_biases:
            return [{"name": "all", "params": [p for _, p in named], "apply_weight_decay": True}]
        return decay_groups(named)

    def downstream_backbone(self) -> nn.Module:
        return self.encoder
