"""Two-process DDP on CPU (gloo) equals one process on the combined batch."""

import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from humanssl.config import load_config, save_yaml
from humanssl.data.samplers import ResumableSampler
from humanssl.engine import checkpoint
from humanssl.pretrain import build_method
from humanssl.pretrain_config import PretrainConfig

from ..test_pretrain import TINY


def test_ranks_get_disjoint_samples_whose_union_is_the_single_process_batch():
    single = ResumableSampler(40, batch_size=8, seed=3)
    ranks = [ResumableSampler(40, batch_size=4, seed=3, rank=r, world_size=2) for r in range(2)]
    one = [i for _, i in single]
    per_rank = [[i for _, i in s] for s in ranks]
    assert not set(per_rank[0]) & set(per_rank[1])
    for step in range(5):
        combined = per_rank[0][4 * step:4 * step + 4] + per_rank[1][4 * step:4 * step + 4]
        assert sorted(combined) == sorted(one[8 * step:8 * step + 8])


def run(tmp_path, name, nproc, batch):
    # A config file of its own, so the embedded demo's settings never leak in. No BatchNorm: on
    # CPU each process would normalise with its own batch statistics, which no gloo run can sync.
    config = tmp_path / f"{name}.yaml"
    save_yaml(load_config(PretrainConfig, None, TINY + ["dino.use_bn_in_head=false"]), config)
    args = [str(config), f"train.output_dir={tmp_path}", f"train.run_name={name}", f"train.batch_size={batch}",
            "train.max_steps=3", "knn.enabled=false", "model.drop_path=0.0", "optim.name=sgd",
            "optim.lr=5.0", "optim.warmup_epochs=0"]  # SGD: Adam would blow float noise in tiny gradients up to lr
    if nproc == 1:
        cmd = [sys.executable, "-m", "humanssl", "pretrain", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "humanssl", "pretrain", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return load_file(str(checkpoint.resolve(tmp_path / name) / "model.safetensors")), done.stdout


def test_two_process_ddp_equals_one_process_on_the_combined_batch(tmp_path):
    ddp, out = run(tmp_path, "ddp", nproc=2, batch=4)
    assert "2 process(es)" in out
    single, _ = run(tmp_path, "single", nproc=1, batch=8)
    assert ddp.keys() == single.keys()
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], rtol=1e-4, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}")
    # the weights really moved away from their (shared) initial values, so the comparison means something
    cfg = load_config(PretrainConfig, None, TINY + ["model.drop_path=0.0", "dino.use_bn_in_head=false"])
    torch.manual_seed(cfg.train.seed)
    initial = build_method(cfg).state_dict()
    moved = max((single[k] - initial[k]).abs().max().item() for k in single if k.startswith("student."))
    assert moved > 1e-3
