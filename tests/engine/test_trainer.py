import pytest
import torch

from humanssl.data.collate import collate_samples
from humanssl.engine import checkpoint
from humanssl.engine.distributed import DistInfo
from humanssl.engine.settings import OptimConfig, TrainConfig
from humanssl.engine.trainer import NonFiniteLossError, Trainer
from humanssl.errors import UserError

from .toy import ToyData, ToyMethod

CPU = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def make_trainer(tmp_path, method=None, data=None, resume_from=None, optim_kw=None, **train_kw):
    train = TrainConfig(**{"epochs": 3, "batch_size": 8, "num_workers": 0, "progress": False,
                           "log_every": 1, **train_kw})
    optim = OptimConfig(**{"lr": 2.0, "warmup_epochs": 1, "weight_decay": 0.01, "weight_decay_end": 0.01,
                           **(optim_kw or {})})
    torch.manual_seed(0)
    method = method or ToyMethod()
    return Trainer(method, data or ToyData(), collate_samples, train=train, optim=optim,
                   run_dir=tmp_path, dist=CPU, config_yaml="toy: true\n", resume_from=resume_from)


def test_loss_falls_and_outputs_are_written(tmp_path):
    t = make_trainer(tmp_path, epochs=20)
    result = t.fit()
    assert result.finished and result.steps == 20 * (64 // 8)
    log = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(log) == result.steps
    import json
    first, last = json.loads(log[0]), json.loads(log[-1])
    assert last["mse"] < 0.2 * first["mse"]
    assert t.method.configured == (160, 8)
    assert (checkpoint.latest_checkpoint(tmp_path / "checkpoints") / "config.yaml").read_text() == "toy: true\n"


class MonitoredToy(ToyMethod):
    def training_step(self, batch, step):
        self.last_mean_target = batch["y"].mean()
        return super().training_step(batch, step)

    def monitors(self):
        return {"target_mean": self.last_mean_target}


def test_monitors_are_logged_beside_the_losses_and_never_summed_into_them(tmp_path):
    import json

    t = make_trainer(tmp_path, epochs=1, method=MonitoredToy(), accumulation=2)
    t.fit()
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    data = ToyData()
    assert logged and all(r["loss"] == pytest.approx(r["mse"]) for r in logged)
    # averaged over the two micro-batches of a step, like the losses: the mean target of 16 images
    assert all(data.y.min() <= r["target_mean"] <= data.y.max() for r in logged)
    assert len({round(r["target_mean"], 6) for r in logged}) > 1


@pytest.mark.parametrize("factor", [0.0, 0.01])
def test_warm_up_starts_at_the_given_fraction_of_the_peak_lr(tmp_path, factor):
    import json

    t = make_trainer(tmp_path, epochs=2, optim_kw={"warmup_start_factor": factor})
    t.fit()
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    peak = 2.0 * 8 / 256  # the linear scaling rule at batch 8
    # 8 warm-up steps rise linearly from factor x peak; step 8 is the peak itself
    assert lrs[0] == pytest.approx(factor * peak)
    assert lrs[8] == pytest.approx(peak)
    assert lrs[4] == pytest.approx(factor * peak + (peak - factor * peak) * 4 / 8)


def test_resume_is_bitwise_exact(tmp_path):
    full = make_trainer(tmp_path / "a", checkpoint_every=5)
    full.fit()
    part = make_trainer(tmp_path / "b", checkpoint_every=5, stop_after_steps=13)
    assert part.fit().finished is False
    step = checkpoint.latest_checkpoint(tmp_path / "b" / "checkpoints")
    assert step.name == "step_00000010"
    resumed = make_trainer(tmp_path / "b", checkpoint_every=5, resume_from=step)
    assert resumed.fit().steps == 24
    for (k, a), (_, b) in zip(full.method.state_dict().items(), resumed.method.state_dict().items()):
        assert torch.equal(a, b), k
    # the metrics log holds each step once, as if the run had never stopped
    steps = [line for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 24


def test_accumulation_equals_a_bigger_batch(tmp_path):
    a = make_trainer(tmp_path / "a", batch_size=8, accumulation=2)
    b = make_trainer(tmp_path / "b", batch_size=16, accumulation=1)
    a.method.net[1].p = b.method.net[1].p = 0.0  # dropout draws differ between the two layouts
    a.fit(), b.fit()
    for (k, x), (_, y) in zip(a.method.state_dict().items(), b.method.state_dict().items()):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=k)


def test_non_finite_loss_names_step_and_last_checkpoint(tmp_path):
    t = make_trainer(tmp_path, method=ToyMethod(nan_at_step=7), checkpoint_every=5)
    with pytest.raises(NonFiniteLossError) as err:
        t.fit()
    msg = str(err.value)
    assert "step 8" in msg and "mse=nan" in msg and "step_00000005" in msg
    # the good checkpoint is still there and loads
    assert checkpoint.load_weights(checkpoint.resolve(tmp_path)) is not None


def test_too_small_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="fewer than one optimizer step"):
        make_trainer(tmp_path, data=ToyData(n=5)).fit()
