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
def test_two_gloo_processes_match_one_process_and_resume_across_counts(tmp_path: Path):
    # split 1 trains on groups 10 and 12 and the poster's video of each class: 4 classes x 3
    # = 12 clips, three global batches of 4
    actions = {
        "Bowling": "bend_down",
        "BrushingTeeth": "wave",
        "HammerThrow": "raise_arms",
        "BabyCrawling": "sit_down",
    }
    root = standins.make_ucf101(
        tmp_path / "ucf", actions=actions, groups=(3, 10, 12), num_frames=16
    )
    script = str(HERE / "ddp_fit.py")

    def run(nproc: int, out: str, *flags: str) -> subprocess.CompletedProcess[str]:
        args = [script, str(root), str(tmp_path / out), "2", *flags]
        command = _torchrun(nproc, *args) if nproc > 1 else [sys.executable, *args]
        done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (nproc, out, done.stderr[-3000:])
        return done

    def assert_same_weights(a: dict, b: dict) -> None:
        for key, value in a["state_dict"].items():
            torch.testing.assert_close(b["state_dict"][key], value, rtol=1e-4, atol=1e-5, msg=key)

    # epoch 1 of a 2-epoch run, then a restart: one process, and two under torchrun
    run(1, "one.pt", "--stop-after-epoch-1")
    two = run(2, "two.pt", "--stop-after-epoch-1")
    assert two.stdout.count("history") == 0  # both ranks stopped after saving epoch 1
    a, b = read_checkpoint(tmp_path / "one.pt"), read_checkpoint(tmp_path / "two.pt")
    assert a["epoch"] == b["epoch"] == 1
    assert_same_weights(a, b)
    torch.manual_seed(0)  # ...and the weights did move: not two untouched models compared
    fresh = build_model("c3d", preset="tiny", num_classes=101, dropout=0.0).state_dict()
    assert sum(not torch.allclose(fresh[k], v) for k, v in a["state_dict"].items()) > 0
    assert a["history"][0]["train_loss"] == pytest.approx(b["history"][0]["train_loss"], rel=1e-4)
    # --resume with the other number of processes: each run finishes epoch 2 the same way
    run(2, "one.pt", "--resume")
    run(1, "two.pt", "--resume")
    a, b = read_checkpoint(tmp_path / "one.pt"), read_checkpoint(tmp_path / "two.pt")
    assert a["epoch"] == b["epoch"] == 2
    assert_same_weights(a, b)


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


@pytest.mark.parametrize("size", [1, 2, 3])
def test_rank_shares_interleave_into_one_process_loader_order(size: int):
    """The ranks' shares, interleaved, are exactly the order of fit's one-process loader."""
    from hartutor.distributed import RankShare, World
    from hartutor.train import TrainConfig, _as_loader

    config = TrainConfig(seed=3, batch_size=1)
    loader = _as_loader(list(range(10)), config, shuffle=True, epoch=3)
    one_process = [int(batch) for batch in loader]
    seed = 3 * 100_003 + 3
    # the order fit always had: the seeded generator, two draws, then the permutation
    old = torch.Generator().manual_seed(seed)
    for _ in range(2):
        torch.empty((), dtype=torch.int64).random_(generator=old)
    assert one_process == torch.randperm(10, generator=old).tolist()
    shares = [list(RankShare(10, seed=seed, here=World(rank, size))) for rank in range(size)]
    interleaved = [shares[k % size][k // size] for k in range(sum(map(len, shares)))]
    assert interleaved[:10] == one_process
    assert all(len(share) == -(-10 // size) for share in shares)


def test_progress_bar_opens_a_loader_once():
    from torch.utils.data import DataLoader

    from hartutor._progress import progress_bar

    opened = []

    class Counting(DataLoader):
        def __iter__(self):
            opened.append(1)
            return super().__iter__()

    loader = Counting(list(range(6)), batch_size=2)
    bar = progress_bar(loader, disable=True)
    assert bar.total == 3 and [b.tolist() for b in bar] == [[0, 1], [2, 3], [4, 5]]
    assert len(opened) == 1


def test_gpu_check_script_says_plainly_when_there_is_no_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the script would run its full check")
    env = _env()  # the script runs the environment's python, as in an activated venv
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = subprocess.run(
        ["bash", str(HERE.parent / "scripts" / "gpu_check.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "gpu_check: no CUDA device here; nothing measured"
