"""torchrun: two CPU processes (gloo) train exactly as one process with the same global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hartutor import standins
from hartutor.models import build_model
from hartutor.train import read_checkpoint

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict[str, str]:
    root = str(HERE.parent)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }


def _torchrun(nproc: int, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        *args,
    ]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path: Path):
    # 4 classes x 3 training groups: 12 clips, three global batches of 4
    actions = {
        "Bowling": "bend_down",
        "BrushingTeeth": "wave",
        "HammerThrow": "raise_arms",
        "BabyCrawling": "sit_down",
    }
    root = standins.make_ucf101(tmp_path / "ucf", actions=actions, groups=(3,), num_frames=16)
    script = str(HERE / "ddp_fit.py")
    one = subprocess.run(
        [sys.executable, script, str(root), str(tmp_path / "one.pt")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        _torchrun(2, script, str(root), str(tmp_path / "two.pt")),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("history") == 2  # both ranks trained...
    a, b = read_checkpoint(tmp_path / "one.pt"), read_checkpoint(tmp_path / "two.pt")
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    # ...and the weights did move: the comparison is not between two untouched models
    torch.manual_seed(0)
    fresh = build_model("c3d", preset="tiny", num_classes=101, dropout=0.0).state_dict()
    moved = sum(not torch.allclose(fresh[k], v) for k, v in a["state_dict"].items())
    assert moved > 0
    assert a["history"][0]["train_loss"] == pytest.approx(b["history"][0]["train_loss"], rel=1e-4)


@pytest.mark.slow
def test_hartutor_train_runs_under_torchrun_and_rank_0_alone_writes(tmp_path: Path):
    out = tmp_path / "run.pt"
    args = [
        "-m",
        "hartutor",
        "train",
        "c3d",
        "--data",
        "synthetic",
        "--clips",
        "8",
        "--val-clips",
        "4",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
    ]
    done = subprocess.run(
        _torchrun(2, *args), env=_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("checkpoint:") == 1  # rank 0 alone speaks
    payload = read_checkpoint(out)
    assert payload["epoch"] == 1 and payload["history"][0]["val"]
    assert not any(k.startswith("module.") for k in payload["state_dict"])  # unwrapped keys
    odd_args = [
        ("3" if a == "4" and args[i - 1] == "--batch-size" else a) for i, a in enumerate(args)
    ]
    odd_args[odd_args.index(str(out))] = str(tmp_path / "odd.pt")
    odd = subprocess.run(
        _torchrun(2, *odd_args), env=_env(), capture_output=True, text=True, timeout=600
    )
    assert odd.returncode != 0 and "does not split over 2 processes" in odd.stderr
