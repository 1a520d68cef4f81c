"""Late fusion: rules, weights, inputs, adapters, and the I3D + Xception model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hartutor  # noqa: F401
from hartutor.models import build_model
from hartutor.models.frame import ModelError
from hartutor.models.fusion import ClipAdapter, FusionOutput, LateFusion
from hartutor.models.layers import InputSpec


class Fixed(nn.Module):
    """Stand-in stream: logits = a linear map of the input's mean per clip."""

    def __init__(self, direction: list[float], key: str = "video") -> None:
        super().__init__()
        self.direction = torch.tensor(direction)
        self.input_keys = (key,)
        self.num_classes = len(direction)
        self.seen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x
        return x.flatten(1).mean(1, keepdim=True) * self.direction


def _streams() -> dict[str, nn.Module]:
    return {"a": Fixed([1.0, 0.0, -1.0]), "b": Fixed([0.0, 2.0, 0.0], key="flow")}


def test_softmax_mean_is_a_weighted_mean_of_probabilities() -> None:
    fusion = LateFusion(_streams(), weights={"a": 3.0, "b": 1.0})
    inputs = {"video": torch.randn(4, 3, 2, 4, 4), "flow": torch.randn(4, 2, 1, 4, 4)}
    out = fusion(inputs)
    assert isinstance(out, FusionOutput) and out.kind == "probabilities"
    pa, pb = F.softmax(out.streams["a"], -1), F.softmax(out.streams["b"], -1)
    torch.testing.assert_close(out.fused, 0.75 * pa + 0.25 * pb)
    torch.testing.assert_close(out.probabilities.sum(-1), torch.ones(4))
    torch.testing.assert_close(out.log_probabilities, out.fused.log())
    assert fusion.input_keys == ("video", "flow")


def test_logit_sum_returns_logits() -> None:
    fusion = LateFusion(_streams(), mode="logit_sum", weights={"a": 1.0, "b": 0.5})
    inputs = {"video": torch.randn(2, 3, 2, 4, 4), "flow": torch.randn(2, 2, 1, 4, 4)}
    out = fusion(inputs)
    assert out.kind == "logits"
    torch.testing.assert_close(out.fused, out.streams["a"] + 0.5 * out.streams["b"])
    torch.testing.assert_close(out.probabilities, F.softmax(out.fused, -1))
    torch.testing.assert_close(out.log_probabilities, F.log_softmax(out.fused, -1))


def test_each_stream_gets_its_own_input_and_a_tensor_is_the_video() -> None:
    streams = _streams()
    fusion = LateFusion(streams)
    video, flow = torch.randn(1, 3, 2, 4, 4), torch.randn(1, 2, 1, 4, 4)
    fusion({"video": video, "flow": flow, "label": torch.tensor([0])})
    assert streams["a"].seen is video and streams["b"].seen is flow
    with pytest.raises(ModelError, match="consumes \\['flow'\\]"):
        fusion(video)
    only_video = LateFusion({"a": Fixed([1.0, 2.0]), "c": Fixed([0.0, 1.0])})
    assert only_video(video).fused.shape == (1, 2)


def test_configuration_errors_name_the_problem() -> None:
    with pytest.raises(ModelError, match="weights are given for"):
        LateFusion(_streams(), weights={"a": 1.0})
    with pytest.raises(ModelError, match=">= 0"):
        LateFusion(_streams(), weights={"a": 1.0, "b": -1.0})
    with pytest.raises(ModelError, match="mode"):
        LateFusion(_streams(), mode="max")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="different numbers of classes"):
        LateFusion({"a": Fixed([1.0, 2.0]), "b": Fixed([1.0, 2.0, 3.0])})
    with pytest.raises(ModelError, match="unknown streams"):
        LateFusion(_streams(), adapters={"z": nn.Identity()})


def test_clip_adapter_samples_resizes_and_renormalises() -> None:
    clip = torch.arange(8.0).view(1, 1, 8, 1, 1).expand(1, 3, 8, 4, 4).contiguous()
    adapter = ClipAdapter(num_frames=2, size=(6, 6))
    out = adapter(clip)
    assert out.shape == (1, 3, 2, 6, 6)
    assert out[0, 0, :, 0, 0].tolist() == [2.0, 6.0]  # segment centres
    src = InputSpec(1, (4, 4), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # [-1, 1]
    dst = InputSpec(1, (4, 4), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # [0, 1]
    pixels = torch.rand(1, 3, 2, 4, 4)
    renorm = ClipAdapter(source=src, target=dst)
    torch.testing.assert_close(renorm(pixels * 2 - 1), pixels)
    assert ClipAdapter(source=src, target=src).scale is None
    with pytest.raises(ModelError, match="channel"):
        ClipAdapter(source=src, target=InputSpec(1, (4, 4), (0.0, 0.0), (1.0, 1.0)))


def test_fusion_with_an_adapter() -> None:
    stream = Fixed([1.0, -1.0])
    fusion = LateFusion({"s": stream}, adapters={"s": ClipAdapter(num_frames=3, size=(5, 5))})
    fusion(torch.randn(2, 3, 9, 4, 4))
    assert stream.seen is not None and stream.seen.shape == (2, 3, 3, 5, 5)


def test_i3d_xception_fusion_tiny() -> None:
    torch.manual_seed(0)
    model = build_model("i3d_xception_fusion", preset="tiny", num_classes=10).eval()
    assert set(model.streams) == {"i3d", "xception"}
    assert model.input_spec.shape == model.streams["i3d"].input_spec.shape
    clip = torch.randn(2, *model.input_spec.shape)
    out = model(clip)
    assert out.kind == "probabilities" and out.fused.shape == (2, 10)
    torch.testing.assert_close(out.streams["i3d"], model.streams["i3d"](clip))
    sampled = model.adapters["xception"](clip)
    assert sampled.shape[2] == 8
    torch.testing.assert_close(out.streams["xception"], model.streams["xception"](sampled))
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    # Training on the fused output works through log_probabilities.
    loss = F.cross_entropy(out.log_probabilities, torch.tensor([1, 2]))
    loss.backward()
    assert model.streams["xception"].backbone.fc.weight.grad is not None
    model.reset_classifier(4)
    assert model(clip).fused.shape == (2, 4)


def test_i3d_xception_fusion_paper_inputs() -> None:
    with torch.device("meta"):
        model = build_model("i3d_xception_fusion", num_classes=101)
        clip = torch.empty(1, *model.input_spec.shape)
        frames = model.adapters["xception"](clip)
    assert model.input_spec.shape == (3, 64, 224, 224)
    assert frames.shape == (1, 3, 8, 299, 299)
    i3d = sum(p.numel() for p in model.streams["i3d"].parameters())
    xception = sum(p.numel() for p in model.streams["xception"].parameters())
    assert xception == 22_855_952 - 2049 * 1000 + 2049 * 101
    assert sum(p.numel() for p in model.parameters()) == i3d + xception
