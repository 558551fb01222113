"""Checkpoints are atomic: a SIGKILL at any moment leaves a loadable newest checkpoint."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from humanssl.engine import checkpoint
from humanssl.errors import UserError

WRITER = textwrap.dedent("""
    import sys, torch
    from pathlib import Path
    from humanssl.engine.checkpoint import save_checkpoint
    root = Path(sys.argv[1])
    step = 0
    while True:
        step += 1
        tensors = {f"w{i}": torch.full((256, 1024), float(step)) for i in range(6)}
        state = {"global_step": step, "optimizer": {"m": torch.full((1000,), float(step))}}
        save_checkpoint(root, step, tensors, state, f"step: {step}\\n", keep=2)
        print(step, flush=True)
""")


def test_sigkill_during_writes_never_leaves_a_broken_checkpoint(tmp_path):
    root = tmp_path / "checkpoints"
    for trial, delay in enumerate([0.3, 0.5, 0.8, 1.2]):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, text=True)
        # wait until at least one checkpoint exists, then kill at a varying moment of a later write
        assert proc.stdout.readline().strip()
        time.sleep(delay * (0.5 + 0.1 * trial))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        newest = checkpoint.resolve(root)
        weights = checkpoint.load_weights(newest)
        state = checkpoint.load_state(newest)
        step = state["global_step"]
        assert newest.name == checkpoint.step_dir_name(step)
        assert all(torch.all(w == step) for w in weights.values())
        assert (newest / "config.yaml").read_text() == f"step: {step}\n"


def test_resolve_accepts_run_folder_checkpoints_folder_and_step_folder(tmp_path):
    run = tmp_path / "run"
    step = checkpoint.save_checkpoint(run / "checkpoints", 3, {"a": torch.ones(2)}, {"global_step": 3}, "x: 1\n")
    assert checkpoint.resolve(run) == step
    assert checkpoint.resolve(run / "checkpoints") == step
    assert checkpoint.resolve(step) == step


def test_keeps_only_the_newest_and_cleans_leftovers(tmp_path):
    root = tmp_path / "checkpoints"
    (root / ".tmp-step_00000001-999999").mkdir(parents=True)
    for s in range(1, 5):
        checkpoint.save_checkpoint(root, s, {"a": torch.ones(1) * s}, {"global_step": s}, "", keep=2)
    names = sorted(p.name for p in root.iterdir())
    assert names == ["latest", "step_00000003", "step_00000004"]


def test_bad_checkpoint_paths_and_files_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        checkpoint.resolve(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no checkpoint in"):
        checkpoint.resolve(tmp_path / "empty")
    step = checkpoint.save_checkpoint(tmp_path / "c", 1, {"a": torch.ones(1)}, {"global_step": 1}, "")
    (step / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read weights"):
        checkpoint.load_weights(step)
    (step / "state.pt").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read training state"):
        checkpoint.load_state(step)
