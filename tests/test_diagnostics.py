"""Temporal diagnostics separate order-blind models from models that use motion."""

from __future__ import annotations

import torch
from torch import nn
from toy import TinyNet, ToyClips

from hartutor.diagnostics import reverse_time, shuffle_frames, temporal_diagnostics
from hartutor.train import TrainConfig, fit


class FrameMean(nn.Module):
    """Order-blind: averages frames before classifying."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3, 4)))


def test_transforms_keep_the_frames_and_change_the_order():
    video = torch.arange(2 * 3 * 5 * 2 * 2, dtype=torch.float32).view(2, 3, 5, 2, 2)
    assert torch.equal(reverse_time(video)[:, :, 0], video[:, :, -1])
    shuffled = shuffle_frames(seed=4)(video)
    assert not torch.equal(shuffled, video)
    assert torch.equal(shuffled.sort(dim=2).values, video)  # same frames, other order
    again = shuffle_frames(seed=4)(video)
    assert torch.equal(again, shuffled)  # reproducible


def test_order_blind_model_is_unaffected_and_temporal_model_collapses():
    data = ToyClips(64, seed=5)
    blind = temporal_diagnostics(FrameMean(), data, progress=False, class_names=["down", "up"])
    assert blind.drop("reversed") == 0 and blind.drop("shuffled") == 0

    torch.manual_seed(0)
    model = TinyNet()
    fit(model, ToyClips(128), config=TrainConfig(epochs=8, batch_size=8, lr=0.05, progress=False))
    report = temporal_diagnostics(model, data, progress=False, class_names=["down", "up"])
    assert report.results["original"].top1 > 0.9
    assert report.drop("reversed") > 0.8  # reversing the ramp flips every answer
    per_class = report.per_class_drop("reversed")
    assert set(per_class) == {"down", "up"} and min(per_class.values()) > 0.5
    assert "| reversed |" in report.to_markdown()


def test_pair_report_by_hand():
    from hartutor.diagnostics import pair_report, pairs_markdown
    from hartutor.metrics import ClassificationResult

    # classes: a, b (a pair), c. Rows: true class; columns: predicted.
    confusion = torch.tensor([[6, 3, 1], [4, 4, 2], [0, 0, 5]])
    result = ClassificationResult(25, {1: 0.6}, confusion, class_names=["a", "b", "c"])
    (report,) = pair_report(result, [("a", "b")])
    assert report.clips == 20
    assert report.correct == 10 / 20 and report.swapped == 7 / 20 and report.elsewhere == 3 / 20
    assert report.within_pair_accuracy == 10 / 17
    assert "| a / b | 20 | 50% | 35% | 15% | 59% |" in pairs_markdown([report])
