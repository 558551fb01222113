"""Multi-stage recipes: each stage its own optimiser, lr schedule, step count and data source,
and a resumed run (inside a stage or between stages) equals an uninterrupted one."""

import json

import numpy as np
import torch
from torch import nn

from humanssl.data.collate import collate_samples
from humanssl.engine import checkpoint
from humanssl.engine.distributed import DistInfo
from humanssl.engine.settings import OptimConfig, TrainConfig
from humanssl.engine.trainer import Trainer
from humanssl.methods.base import Method, Stage

from .toy import ToyData

CPU = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


class TwoStages(Method):
    """Stage "a" fits `head` to cached targets without reading images; stage "b" fits `net` on data."""

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(4, 1)
        self.head = nn.Linear(4, 1)
        self.stage = None
        self.bank = None
        self.prepared = []
        self.batches = []

    def stages(self):
        return [Stage("a", epochs=2, prepare=self.cache, steps_per_epoch=3,
                      optim=OptimConfig(name="sgd", momentum=0.0, weight_decay=0.0, weight_decay_end=0.0, clip_grad=0),
                      lr=lambda total, per_epoch: np.full(total, 0.05)),
                Stage("b", epochs=2)]

    def begin_stage(self, name):
        self.stage = name
        self.net.requires_grad_(name == "b")
        self.head.requires_grad_(name == "a")

    def cache(self, loader):
        self.prepared.append(self.stage)
        self.bank = torch.randn(12, 4, generator=torch.Generator().manual_seed(1))

    def param_groups(self):
        return [{"name": "all", "params": [p for p in self.parameters() if p.requires_grad]}]

    def training_step(self, batch, step):
        self.batches.append((self.stage, sorted(batch)))
        if self.stage == "a":
            x = self.bank[(step * 4) % 12:(step * 4) % 12 + 4]
            return {"a": (self.head(x).squeeze(1) - x.sum(1)).pow(2).mean()}
        return {"b": (self.net(batch["x"]).squeeze(1) - batch["y"]).pow(2).mean()}

    def downstream_backbone(self):
        return self.net


def make(tmp_path, name, resume_from=None, **train_kw):
    torch.manual_seed(0)
    method = TwoStages()
    train = TrainConfig(**{"epochs": 1, "batch_size": 8, "num_workers": 0, "progress": False, "log_every": 1,
                           **train_kw})
    optim = OptimConfig(lr=4.0, warmup_epochs=0, weight_decay=0.0, weight_decay_end=0.0)
    return Trainer(method, ToyData(), collate_samples, train=train, optim=optim, run_dir=tmp_path / name, dist=CPU,
                   config_yaml="toy: true\n", resume_from=resume_from)


def test_each_stage_has_its_own_steps_schedule_and_data(tmp_path):
    t = make(tmp_path, "run")
    head_before = t.method.head.weight.detach().clone()
    net_before = t.method.net.weight.detach().clone()
    result = t.fit()
    assert result.finished and result.steps == 2 * 3 + 2 * (64 // 8)
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    a = [r for r in log if r["stage"] == "a"]
    b = [r for r in log if r["stage"] == "b"]
    assert len(a) == 6 and all(r["lr"] == 0.05 for r in a)  # stage a's own schedule, not scaled
    assert len(b) == 16 and np.mean([r["b"] for r in b[-4:]]) < 0.5 * np.mean([r["b"] for r in b[:4]])
    assert a[-1]["a"] < a[0]["a"]
    assert {s for s, keys in t.method.batches if not keys} == {"a"}  # stage a never read an image
    assert t.method.prepared == ["a"]
    assert not torch.equal(t.method.head.weight, head_before) and not torch.equal(t.method.net.weight, net_before)


def test_resume_inside_and_between_stages_equals_an_uninterrupted_run(tmp_path):
    make(tmp_path, "full").fit()
    final = checkpoint.load_weights(checkpoint.latest_checkpoint(tmp_path / "full" / "checkpoints"))
    for cut in (2, 6, 9):  # inside stage a, at its end, inside stage b
        name = f"cut{cut}"
        assert not make(tmp_path, name, stop_after_steps=cut, checkpoint_every=1).fit().finished
        last = checkpoint.latest_checkpoint(tmp_path / name / "checkpoints")
        resumed = make(tmp_path, name, resume_from=last)
        assert resumed.fit().steps == 22
        assert resumed.method.prepared == (["a"] if cut < 6 else [])  # a finished stage prepares nothing
        got = checkpoint.load_weights(checkpoint.latest_checkpoint(tmp_path / name / "checkpoints"))
        for k in final:
            assert torch.equal(final[k], got[k]), (cut, k)
