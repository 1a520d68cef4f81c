"""scripts/transfer_world.py: the pretraining seed and recipe overrides reach the checkpoint."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from hartutor import transfer as T
from hartutor.train import read_checkpoint

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "transfer_world.py"


@pytest.fixture()
def script(monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location("transfer_world_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    render = T.render_images
    # four images per set instead of thousands: the flags, not the training, are under test
    monkeypatch.setattr(T, "render_images", lambda n, **kw: render(min(n, 4), **kw))
    return module


def _pretrain(script, monkeypatch, out: Path, *flags: str) -> dict:
    argv = ["transfer_world.py", "pretrain", "--streams", "frame", "--out", str(out), *flags]
    monkeypatch.setattr(sys, "argv", [*argv, "--frame-epochs", "1"])
    script.main()
    return read_checkpoint(out / T.SOURCE_CHECKPOINTS["frame"])


def test_pretrain_seed_sets_the_source_weights_and_is_recorded(
    script, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
):
    default = _pretrain(script, monkeypatch, tmp_path / "default")
    zero = _pretrain(script, monkeypatch, tmp_path / "zero", "--pretrain-seed", "0")
    three = _pretrain(script, monkeypatch, tmp_path / "three", "--pretrain-seed", "3")
    slow = _pretrain(script, monkeypatch, tmp_path / "slow", "--frame-lr", "5e-4")
    weights = default["state_dict"]
    assert default["config"]["seed"] == 0 and three["config"]["seed"] == 3
    assert default["config"]["lr"] == T.PRETRAIN_RECIPES["frame"].lr == three["config"]["lr"]
    assert slow["config"]["lr"] == 5e-4 and slow["config"]["epochs"] == 1
    assert all(torch.equal(weights[k], zero["state_dict"][k]) for k in weights)
    assert not all(torch.equal(weights[k], three["state_dict"][k]) for k in weights)
    out = capsys.readouterr().out
    assert "pretraining seed 3" in out and "centred val top-1" in out
