"""Temporal diagnostics separate order-blind models from models that use motion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from toy import TinyNet, ToyClips

from hartutor.diagnostics import (
    reverse_batch,
    reverse_time,
    shuffle_batch,
    shuffle_frames,
    temporal_diagnostics,
)
from hartutor.synth import REVERSAL_PAIRS
from hartutor.synth.render import render_clip
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


@pytest.mark.parametrize(("forward", "backward"), REVERSAL_PAIRS)
def test_reversed_batch_is_the_partner_clip_with_its_flow(forward: str, backward: str):
    # A reversal pair rendered with one seed is the same clip played both ways, so reversing
    # the forward batch must give the backward clip and (to first order) its true flow.
    fwd = render_clip(forward, 3, with_flow=True)
    bwd = render_clip(backward, 3, with_flow=True)
    batch = {
        "video": torch.from_numpy(fwd.frames.copy()).permute(3, 0, 1, 2)[None],
        "flow": torch.from_numpy(fwd.flow.copy())[None],
        "label": torch.tensor([fwd.label]),
    }
    reversed_batch = reverse_batch(batch)
    expected_video = torch.from_numpy(bwd.frames.copy()).permute(3, 0, 1, 2)[None]
    assert torch.equal(reversed_batch["video"], expected_video)
    epe = np.sqrt(((reversed_batch["flow"][0].numpy() - bwd.flow) ** 2).sum(0))
    speed = np.sqrt((bwd.flow**2).sum(0))
    assert epe.mean() < 0.1 * speed.mean(), (epe.mean(), speed.mean())
    assert torch.equal(reversed_batch["label"], batch["label"])  # labels are never touched


def test_shuffled_batch_permutes_flow_fields_too():
    video = torch.rand(2, 3, 6, 4, 4)
    flow = torch.rand(2, 2, 5, 4, 4)
    out = shuffle_batch(seed=1)({"video": video, "flow": flow})
    assert not torch.equal(out["flow"], flow)
    assert torch.equal(out["flow"].sort(dim=2).values, flow.sort(dim=2).values)
    assert torch.equal(out["video"].sort(dim=2).values, video.sort(dim=2).values)


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
    # every clip of the pair predicted as a third class: no within-pair accuracy to show
    elsewhere = ClassificationResult(
        10, {1: 0.0}, torch.tensor([[0, 0, 5], [0, 0, 5], [0, 0, 0]]), class_names=["a", "b", "c"]
    )
    assert "| a / b | 10 | 0% | 0% | 100% | n/a |" in pairs_markdown(
        pair_report(elsewhere, [("a", "b")])
    )
