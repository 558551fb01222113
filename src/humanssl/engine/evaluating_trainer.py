"""The engine's trainer plus an optional evaluation every few optimizer steps.

Downstream fine-tuning runs use it to score the model during training. The evaluation runs on
rank 0 between optimizer steps, in eval mode, and draws no training randomness (the trainer
seeds every step afresh), so it does not change what is trained; the run's last step is left
out because the caller evaluates the finished model anyway.
"""

from __future__ import annotations

from humanssl.engine import distributed
from humanssl.engine.trainer import Trainer


class EvaluatingTrainer(Trainer):
    def __init__(self, *args, evaluate_every: int = 0, evaluate_fn=None, **kwargs):
        """`evaluate_fn(trainer, step)` is called after every `evaluate_every` optimizer steps."""
        super().__init__(*args, **kwargs)
        self.evaluate_every, self.evaluate_fn = evaluate_every, evaluate_fn
        self.steps_per_epoch = self.sampler.batches_per_epoch // self.train_cfg.accumulation
        self.final_step = self.train_cfg.max_steps or self.train_cfg.epochs * self.steps_per_epoch

    def optimizer_step(self, step, *args):
        logged = super().optimizer_step(step, *args)
        if (self.evaluate_fn is not None and self.evaluate_every and (step + 1) % self.evaluate_every == 0
                and step + 1 < self.final_step):
            if self.dist.is_main:
                self.evaluate_fn(self, step + 1)
            distributed.barrier()
        return logged
