"""scripts/transfer_world.py: the pretraining seed and recipe overrides reach the checkpoint."""

from __future__ import annotations

import importlib.util
import json
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


def test_targets_pool_every_source_run_and_fine_tuning_seed(
    script, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
):
    k = len(T.TARGET_CLASSES)
    labels = torch.arange(k)
    right = torch.eye(k) * 5
    wrong = torch.roll(right, 1, dims=1)  # every clip called the next class

    def save(folder: Path, name: str, logits: torch.Tensor) -> None:
        folder.mkdir(exist_ok=True)
        torch.save({"logits": logits, "seconds": 1.0, "clips": k}, folder / f"{name}.pt")

    shared = tmp_path / "shared"
    for seed in (0, 1):
        save(shared, f"temporal_pretrained_s{seed}", right)
        save(shared, f"temporal_scratch_s{seed}", wrong)
        save(shared, f"frame_scratch_s{seed}", wrong)
    sources = [tmp_path / "source0", tmp_path / "source1"]
    for folder, frame in zip(sources, (right, wrong), strict=True):
        save(folder, "frame_pretrained_s0", frame)
        save(folder, "frame_pretrained_s1", frame)
        torch.save(labels, folder / "labels.pt")
    out = tmp_path / "targets.json"
    argv = ["transfer_world.py", "targets", "--logits", *map(str, sources), "--shared", str(shared)]
    monkeypatch.setattr(sys, "argv", [*argv, "--json", str(out)])
    script.main()
    results = json.loads(out.read_text())
    frame_gain = results["targets"]["frame pretrained over scratch"]
    assert results["runs"] == 4 and frame_gain["values"] == [100.0, 100.0, 0.0, 0.0]
    assert frame_gain["mean"] == 50.0 and frame_gain["min"] == 0.0
    per_source = [m["frame pretrained over scratch"] for m in results["per_source"].values()]
    assert per_source == [100.0, 0.0]
    assert "| frame pretrained over scratch | 10 | +50.0 ± 57.7 | +0.0 | +100.0, +0.0 | yes |" in (
        capsys.readouterr().out
    )
    monkeypatch.setattr(sys, "argv", ["transfer_world.py", "targets", "--logits", str(shared)])
    with pytest.raises(SystemExit, match="frame_pretrained"):
        script.main()
    torch.save(labels.flip(0), shared / "labels.pt")  # the shared runs scored other clips
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit, match="other clips"):
        script.main()
