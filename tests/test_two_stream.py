"""Two-stream network: CNN-M-2048, flow stacking, the temporal stream and the fusion."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hartutor  # noqa: F401
from hartutor.models import build_model
from hartutor.models.frame import FrameClassifier, ModelError
from hartutor.models.fusion import FusionOutput
from hartutor.models.two_stream import (
    CNNM2048,
    TemporalStream,
    TwoStreamNetwork,
    stack_flow,
    stack_starts,
)


def _cnn_m_params(in_chans: int, num_classes: int) -> int:
    convs = [(in_chans, 96, 7), (96, 256, 5), (256, 512, 3), (512, 512, 3), (512, 512, 3)]
    conv = sum((c_in * k * k + 1) * c_out for c_in, c_out, k in convs)
    fcs = (512 * 36 + 1) * 4096 + (4096 + 1) * 2048 + (2048 + 1) * num_classes
    return conv + fcs


def test_cnn_m_2048_layers_and_sizes() -> None:
    with torch.device("meta"):
        spatial = CNNM2048(num_classes=101)
        temporal = CNNM2048(in_chans=20, num_classes=101, second_norm=False)
        fmap = spatial.forward_features(torch.empty(1, 3, 224, 224))
    assert fmap.shape == (1, 512, 6, 6)  # full6 sees 6x6x512 at 224x224
    assert sum(p.numel() for p in spatial.parameters()) == _cnn_m_params(3, 101)
    assert sum(p.numel() for p in temporal.parameters()) == _cnn_m_params(20, 101)
    convs = [m for m in spatial.features if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (96, 7, 2),
        (256, 5, 2),
        (512, 3, 1),
        (512, 3, 1),
        (512, 3, 1),
    ]
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in spatial.features) == 2
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in temporal.features) == 1
    assert spatial.fc7.out_features == 2048 and spatial.num_features == 2048


def test_stack_flow_interleaves_x_and_y() -> None:
    n, t, h, w = 2, 6, 3, 3
    flow = torch.zeros(n, 2, t, h, w)
    for k in range(t):
        flow[:, 0, k] = 100 + k  # x of field k
        flow[:, 1, k] = 200 + k  # y of field k
    flow[1] += 1000
    stacks = stack_flow(flow, torch.tensor([1, 3]), stack_length=3)
    assert stacks.shape == (n, 2, 6, h, w)
    assert stacks[0, 0, :, 0, 0].tolist() == [101, 201, 102, 202, 103, 203]
    assert stacks[0, 1, :, 0, 0].tolist() == [103, 203, 104, 204, 105, 205]
    assert stacks[1, 0, 0, 0, 0] == 1101
    per_clip = stack_flow(flow, torch.tensor([[0], [2]]), stack_length=2)
    assert per_clip[:, 0, :, 0, 0].tolist() == [[100, 200, 101, 201], [1102, 1202, 1103, 1203]]


def test_stack_starts() -> None:
    assert stack_starts(15, 10, 25).tolist() == [0, 1, 2, 3, 4, 5]
    assert stack_starts(15, 10, 2).tolist() == [0, 5]
    assert stack_starts(10, 10, 25).tolist() == [0]
    with pytest.raises(ModelError, match="10 flow fields"):
        stack_starts(9, 10, 1)


class StackProbe(nn.Module):
    """Backbone recording the stacks it sees; logits = per-stack mean of channel 0."""

    num_classes = 2
    num_features = 1
    in_chans = 4

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        m = x[:, :1].mean(dim=(1, 2, 3)).unsqueeze(1)
        return m if pre_logits else torch.cat([m, -m], 1)

    def get_classifier(self) -> nn.Module:
        return nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes


def test_temporal_stream_subtracts_mean_flow_and_samples_stacks() -> None:
    probe = StackProbe()
    stream = TemporalStream(probe, stack_length=2, num_test_stacks=3).eval()
    flow = torch.randn(2, 2, 7, 4, 4) + 5.0
    stream(flow)
    seen = probe.seen[-1]
    assert seen.shape == (2 * 3, 4, 4, 4)  # N * S stacks of 2L channels
    torch.testing.assert_close(seen.mean(dim=(-2, -1)), torch.zeros(6, 4), atol=1e-5, rtol=0)
    stream.subtract_mean_flow = False
    stream(flow)
    starts = stack_starts(7, 2, 3)  # [0, 3, 5]
    expected = stack_flow(flow, starts, 2).flatten(0, 1)
    torch.testing.assert_close(probe.seen[-1], expected)
    # Training: one random stack per clip.
    stream.train()
    stream(flow)
    assert probe.seen[-1].shape == (2, 4, 4, 4)


def test_temporal_stream_checks_channels_and_length() -> None:
    with pytest.raises(ModelError, match="in_chans=20"):
        TemporalStream(CNNM2048(in_chans=3, num_classes=2), stack_length=10)
    stream = build_model("two_stream_temporal", preset="tiny", num_classes=3)
    with pytest.raises(ModelError, match="2 channels"):
        stream(torch.randn(1, 3, 15, 64, 64))
    with pytest.raises(ModelError, match="flow fields"):
        stream(torch.randn(1, 2, 5, 64, 64))


def test_two_stream_tiny_fuses_softmax_scores() -> None:
    torch.manual_seed(0)
    model = build_model("two_stream", preset="tiny", num_classes=10).eval()
    assert isinstance(model, TwoStreamNetwork)
    assert isinstance(model.spatial, FrameClassifier) and isinstance(model.temporal, TemporalStream)
    assert model.input_keys == ("video", "flow")
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params < 500_000
    batch = {"video": torch.randn(2, 3, 16, 64, 64), "flow": torch.randn(2, 2, 15, 64, 64)}
    out = model(batch)
    assert isinstance(out, FusionOutput) and out.kind == "probabilities"
    assert set(out.streams) == {"spatial", "temporal"}
    torch.testing.assert_close(out.streams["spatial"], model.spatial(batch["video"]))
    expected = (F.softmax(out.streams["spatial"], -1) + F.softmax(out.streams["temporal"], -1)) / 2
    torch.testing.assert_close(out.fused, expected)
    torch.testing.assert_close(out.fused.sum(-1), torch.ones(2))
    with pytest.raises(ModelError, match="both inputs"):
        model(batch["video"])


def test_two_stream_paper_sizes() -> None:
    with torch.device("meta"):
        model = build_model("two_stream", num_classes=101)
        out = model(
            {
                "video": torch.empty(1, 3, 11, 224, 224),
                "flow": torch.empty(1, 2, 10, 224, 224),
            }
        )
    assert out.fused.shape == (1, 101)
    assert model.temporal.backbone.in_chans == 20
    assert model.spatial.num_segments == 1
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == _cnn_m_params(3, 101) + _cnn_m_params(20, 101)


def test_temporal_stream_alone_trains() -> None:
    torch.manual_seed(0)
    stream = build_model("two_stream_temporal", preset="tiny", num_classes=2)
    flow = torch.randn(8, 2, 15, 64, 64) * 0.1
    y = torch.arange(8) % 2
    flow[y == 1, 0] += 1.0  # class 1 moves right ... but the mean is subtracted,
    flow[y == 1, 0, :, :, :32] -= 2.0  # so give it spatial structure
    opt = torch.optim.Adam(stream.parameters(), lr=3e-3)
    first = last = 0.0
    for step in range(25):
        loss = F.cross_entropy(stream(flow), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss.detach()) if step == 0 else first
        last = float(loss.detach())
    assert last < 0.5 * first
