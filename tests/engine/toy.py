"""A tiny method and dataset that let engine tests run in milliseconds."""

import torch
from torch import nn
from torch.utils.data import Dataset

from humanssl.methods.base import Method


class ToyData(Dataset):
    def __init__(self, n=64, dim=4):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, dim, generator=g)
        self.y = self.x @ torch.arange(1.0, dim + 1) + 0.5

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        # noise drawn from the global RNG: the engine must seed it per sample
        return {"x": self.x[i] + 0.01 * torch.randn(self.x.shape[1]), "y": self.y[i], "index": i}


class ToyMethod(Method):
    def __init__(self, dim=4, nan_at_step=None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 8), nn.Dropout(0.2), nn.Linear(8, 1))
        self.ema = nn.Linear(dim, 8)
        self.ema.requires_grad_(False)
        self.nan_at_step = nan_at_step
        self.configured = None

    def configure(self, total_steps, steps_per_epoch):
        self.configured = (total_steps, steps_per_epoch)

    def training_step(self, batch, step):
        loss = (self.net(batch["x"]).squeeze(1) - batch["y"]).pow(2).mean()
        if step == self.nan_at_step:
            loss = loss * float("nan")
        return {"mse": loss}

    @torch.no_grad()
    def after_step(self, step):
        self.ema.weight.mul_(0.9).add_(0.1 * self.net[0].weight)

    def downstream_backbone(self):
        return self.net
