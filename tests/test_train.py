"""The training engine: learns, checkpoints atomically, resumes exactly, stops on divergence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset
from toy import TinyNet, ToyClips

from hartutor.errors import WeightsError
from hartutor.metrics import confusion_matrix, topk_correct
from hartutor.train import (
    TrainConfig,
    TrainingDiverged,
    evaluate,
    fit,
    read_checkpoint,
    save_checkpoint,
)


def _config(**kw) -> TrainConfig:
    base = dict(epochs=4, batch_size=8, lr=0.05, progress=False, seed=1, warmup_epochs=0.5)
    return TrainConfig(**{**base, **kw})


def test_fit_learns_a_temporal_task_and_evaluate_reports_it(tmp_path: Path):
    torch.manual_seed(0)
    model = TinyNet()
    before = evaluate(model, ToyClips(64, seed=9), progress=False, ks=(1,))
    result = fit(model, ToyClips(128), val_data=ToyClips(64, seed=9), config=_config(epochs=8))
    after = evaluate(model, ToyClips(64, seed=9), progress=False, ks=(1,))
    assert after.top1 > max(before.top1, 0.9)
    assert len(result.history) == 8
    assert result.history[-1].val["top1"] == pytest.approx(after.top1)
    assert after.confusion.sum() == 64


class Interrupted(Exception):
    pass


class CrashingClips(Dataset):
    """``ToyClips`` that raise after ``crash_after`` items, like a killed run."""

    def __init__(self, data: ToyClips, crash_after: int):
        self.data, self.crash_after, self.served = data, crash_after, 0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        self.served += 1
        if self.served > self.crash_after:
            raise Interrupted
        return self.data[i]


def test_resume_continues_exactly(tmp_path: Path):
    data, config = ToyClips(48), _config()
    torch.manual_seed(0)
    straight = TinyNet()
    fit(straight, data, config=config, checkpoint_path=tmp_path / "straight.pt")

    torch.manual_seed(0)
    with pytest.raises(Interrupted):  # dies in the middle of epoch 3
        fit(
            TinyNet(),
            CrashingClips(data, 2 * len(data) + 5),
            config=config,
            checkpoint_path=tmp_path / "run.pt",
        )
    assert read_checkpoint(tmp_path / "run.pt")["epoch"] == 2

    resumed = TinyNet()  # fresh weights: everything must come from the checkpoint
    result = fit(resumed, data, config=config, checkpoint_path=tmp_path / "run.pt", resume=True)
    assert [r.epoch for r in result.history] == [1, 2, 3, 4]
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_resume_with_a_changed_configuration_is_refused(tmp_path: Path):
    fit(TinyNet(), ToyClips(16), config=_config(epochs=1), checkpoint_path=tmp_path / "x.pt")
    with pytest.raises(Exception, match="configuration changed"):
        fit(
            TinyNet(),
            ToyClips(16),
            config=_config(epochs=2, lr=0.5),
            checkpoint_path=tmp_path / "x.pt",
            resume=True,
        )


def test_divergence_stops_with_a_clear_message():
    model = TinyNet()
    with torch.no_grad():
        model.fc.weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="learning rate"):
        fit(model, ToyClips(16), config=_config(epochs=1))


def test_checkpoints_are_atomic_and_loaded_safely(tmp_path: Path):
    path = save_checkpoint(tmp_path / "m.pt", {"epoch": 1, "state_dict": TinyNet().state_dict()})
    assert read_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(WeightsError, match=r"m\.pt"):
        read_checkpoint(path)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "hartutor-checkpoint-v1", "obj": TinyNet()}, evil)
    with pytest.raises(WeightsError, match="safely"):
        read_checkpoint(evil)
    with pytest.raises(WeightsError, match="does not exist"):
        read_checkpoint(tmp_path / "absent.pt")


def test_metrics_by_hand():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.35, 0.25]])
    labels = torch.tensor([1, 1, 0, 2])
    assert topk_correct(scores, labels, (1, 2, 3)) == {1: 1, 2: 2, 3: 4}
    cm = confusion_matrix(scores.argmax(1), labels, 3)
    assert cm.tolist() == [[0, 0, 1], [1, 1, 0], [1, 0, 0]]


def test_evaluate_streams_scores_each_stream_and_the_fusion():
    from hartutor.models.fusion import LateFusion
    from hartutor.train import evaluate_streams

    torch.manual_seed(0)
    fusion = LateFusion({"a": TinyNet(), "b": TinyNet()})
    data = ToyClips(32, seed=2)
    results = evaluate_streams(fusion, data, progress=False, ks=(1,))
    assert set(results) == {"a", "b", "fused"}
    alone = evaluate(fusion.streams["a"], data, progress=False, ks=(1,))
    assert results["a"].top1 == alone.top1
    assert torch.equal(results["a"].confusion, alone.confusion)
    assert evaluate(fusion, data, progress=False, ks=(1,)).top1 == results["fused"].top1


def test_a_fusion_trains_each_stream_on_its_own_loss_by_default():
    """Streams learn as if trained separately (the papers' recipe); "fused" is one loss."""
    from hartutor.models.fusion import LateFusion

    data = ToyClips(8, seed=3)
    batch = {"video": data.videos, "label": data.labels}
    for mode in ("streams", "fused"):
        torch.manual_seed(0)
        fusion = LateFusion({"a": TinyNet(), "b": TinyNet()}).eval()
        with torch.no_grad():
            out = fusion(batch["video"])
        per_stream = [nn.functional.cross_entropy(s, batch["label"]) for s in out.streams.values()]
        expected = {
            "streams": float(torch.stack(per_stream).mean()),
            "fused": float(nn.functional.nll_loss(out.log_probabilities, batch["label"])),
        }[mode]
        for module in fusion.modules():
            if isinstance(module, nn.Dropout):
                module.p = 0.0  # the recorded training loss must be the eval-mode loss
        config = TrainConfig(epochs=1, batch_size=8, lr=1e-3, progress=False, fusion_loss=mode)
        history = fit(fusion, data, config=config).history
        assert abs(history[0].train_loss - expected) < 1e-5, (mode, history[0].train_loss)
    assert expected != float(torch.stack(per_stream).mean())  # the two rules differ here


def test_training_on_cached_synthetic_clips_ends_with_the_same_weights():
    """The cache only saves rendering: two epochs (RGB and flow) train exactly as without it."""
    from hartutor.data import build_datasets
    from hartutor.models import build_model

    weights = {}
    for cache_mb in (0.0, 64.0):
        torch.manual_seed(0)
        model = build_model("two_stream", preset="tiny", num_classes=13)
        data = build_datasets(
            "synthetic", model=model, train_clips=6, val_clips=1, seed=2, cache_mb=cache_mb
        )
        fit(model, data.train, config=_config(epochs=2, batch_size=3, lr=1e-3))
        assert data.train.cached_clips == (6 if cache_mb else 0)
        weights[cache_mb] = model.state_dict()
    for (name, a), b in zip(weights[0.0].items(), weights[64.0].values(), strict=True):
        assert torch.equal(a, b), name
