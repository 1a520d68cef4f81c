"""Temporal Segment Networks, convolutional two-stream fusion and the cost of optical flow."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import hartutor  # noqa: F401  (before torchvision)
from hartutor.errors import ModelError
from hartutor.flow import flow_cost, flow_cost_figure, flow_cost_markdown, measure_flow_rate
from hartutor.models import build_model
from hartutor.models.conv_fusion import ConvFusion
from hartutor.models.frame import SmallConvNet
from hartutor.models.fusion import FusionOutput
from hartutor.models.tsn import (
    TSN,
    SegmentConsensus,
    SegmentSampler,
    cross_modality_init,
    cross_modality_weight,
    first_conv,
    segment_starts,
)
from hartutor.params import count_flops, count_parameters, example_inputs

# ----------------------------------------------------------------------------- segment sampling


def test_test_time_snippets_sit_at_the_segment_centres() -> None:
    # 16 frames, 3 segments of 16/3 frames: centres 2.67, 8, 13.33 -> frames 2, 8, 13.
    assert segment_starts(16, 3).tolist() == [2, 8, 13]
    # Stacks of 5 fields in 15 fields: 11 possible starts, centres 1.83, 5.5, 9.17.
    assert segment_starts(15, 3, snippet_length=5).tolist() == [1, 5, 9]
    assert segment_starts(16, 3, batch_size=2).tolist() == [[2, 8, 13]] * 2


def test_training_snippets_fall_inside_their_own_segment_and_vary() -> None:
    generator = torch.Generator().manual_seed(0)
    starts = segment_starts(30, 3, training=True, batch_size=500, generator=generator)
    assert starts.shape == (500, 3)
    for k in range(3):  # segment k holds frames 10k .. 10k+9
        assert starts[:, k].min() >= 10 * k and starts[:, k].max() <= 10 * k + 9
        assert len(starts[:, k].unique()) == 10  # every frame of the segment is drawn
    again = segment_starts(
        30, 3, training=True, batch_size=500, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(starts, again)


def test_sampler_for_data_pipelines_gives_every_frame_a_snippet_reads() -> None:
    sampler = SegmentSampler(num_segments=3, snippet_length=4)
    frames = sampler.frame_indices(16, training=False)
    assert frames.shape == (3, 4)
    assert torch.equal(frames[:, 1:] - frames[:, :-1], torch.ones(3, 3, dtype=torch.long))
    assert frames.max() <= 15 and frames.min() >= 0
    drawn = sampler(16, training=True, generator=torch.Generator().manual_seed(1))
    assert drawn.shape == (3,)
    with pytest.raises(ModelError, match="snippet of 4"):
        sampler(3, training=False)
    with pytest.raises(ModelError):
        SegmentSampler(num_segments=0)


# ----------------------------------------------------------------------------- consensus


def test_consensus_average_max_and_weighted() -> None:
    scores = torch.tensor([[[1.0, 4.0], [3.0, 0.0], [2.0, 2.0]]])  # (N=1, K=3, classes=2)
    assert torch.equal(SegmentConsensus("average")(scores), torch.tensor([[2.0, 2.0]]))
    assert torch.equal(SegmentConsensus("max")(scores), torch.tensor([[3.0, 4.0]]))
    weighted = SegmentConsensus("weighted", num_segments=3)
    torch.testing.assert_close(weighted(scores), torch.tensor([[2.0, 2.0]]))  # starts as average
    with torch.no_grad():
        weighted.weight.copy_(torch.tensor([1.0, 0.0, 0.5]))
    torch.testing.assert_close(weighted(scores), torch.tensor([[2.0, 5.0]]))
    weighted(scores).sum().backward()
    torch.testing.assert_close(weighted.weight.grad, torch.tensor([5.0, 3.0, 4.0]))
    with pytest.raises(ModelError, match="3 segment weights"):
        weighted(scores[:, :2])
    with pytest.raises(ModelError):
        SegmentConsensus("median")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- cross-modality


def test_cross_modality_weight_averages_rgb_and_replicates_it() -> None:
    rgb = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]], [[5.0, 9.0]]]])  # (1 filter, RGB, 1, 2)
    flow = cross_modality_weight(rgb, 4)
    assert flow.shape == (1, 4, 1, 2)
    for c in range(4):
        torch.testing.assert_close(flow[0, c], torch.tensor([[3.0, 5.0]]))
    flow[0, 0, 0, 0] = 0.0  # a copy, not a view of one channel
    assert flow[0, 1, 0, 0] == 3.0


def test_cross_modality_init_copies_every_layer_and_adapts_the_first() -> None:
    torch.manual_seed(0)
    rgb = SmallConvNet(in_chans=3, num_classes=5)
    flow = SmallConvNet(in_chans=10, num_classes=5)
    cross_modality_init(flow, rgb)
    expected = rgb.features[0].weight.mean(1, keepdim=True).expand(-1, 10, -1, -1)
    torch.testing.assert_close(first_conv(flow).weight, expected)
    for name, tensor in rgb.state_dict().items():
        if name != "features.0.weight":
            assert torch.equal(flow.state_dict()[name], tensor), name
    # On a flow stack whose 10 channels all hold the same image, the flow net's first conv
    # gives 10/3 times what the RGB net's gives on that image in its three channels.
    image = torch.randn(1, 1, 16, 16)
    out_flow = first_conv(flow)(image.expand(-1, 10, -1, -1))
    out_rgb = first_conv(rgb)(image.expand(-1, 3, -1, -1))
    torch.testing.assert_close(out_flow, out_rgb * 10 / 3, rtol=1e-5, atol=1e-5)
    with pytest.raises(ModelError, match="differ"):
        cross_modality_init(SmallConvNet(in_chans=10, num_classes=5, widths=(8, 16)), rgb)


def test_tsn_builder_applies_cross_modality_init() -> None:
    model = build_model("tsn", preset="tiny", num_classes=4)
    rgb, flow = model.streams["rgb"].backbone, model.streams["flow"].backbone
    torch.testing.assert_close(
        first_conv(flow).weight, cross_modality_weight(first_conv(rgb).weight, 10)
    )
    plain = build_model("tsn", preset="tiny", num_classes=4, cross_modality=False)
    assert first_conv(plain.streams["flow"].backbone).weight.shape[1] == 10


# ----------------------------------------------------------------------------- TSN


class _Recorder(nn.Module):
    """A backbone whose 'score' for an image is its mean value (to see which frames it read)."""

    num_classes = 1
    num_features = 1
    in_chans = 3

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x.flatten(1)

    def get_classifier(self) -> nn.Module:
        return nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        pass


def test_tsn_reads_the_sampled_frames_and_averages_their_scores() -> None:
    clip = torch.arange(16.0).view(1, 1, 16, 1, 1).expand(2, 3, 16, 4, 4).contiguous()
    model = TSN(_Recorder(), modality="rgb", num_segments=3).eval()
    torch.testing.assert_close(model(clip), torch.full((2, 1), (2 + 8 + 13) / 3))
    model.consensus = SegmentConsensus("max")
    assert model(clip).tolist() == [[13.0]] * 2
    model.train()
    torch.manual_seed(0)
    seen = model.forward_features(clip).flatten(1)  # the frame index each snippet read
    for k, (low, high) in enumerate(((0, 5), (5, 10), (10, 15))):
        assert ((seen[:, k] >= low) & (seen[:, k] <= high)).all()


def test_tsn_flow_stream_stacks_fields_and_checks_channels() -> None:
    backbone = SmallConvNet(in_chans=10, num_classes=7)
    model = TSN(backbone, modality="flow", num_segments=3, snippet_length=5).eval()
    flow = torch.randn(2, 2, 15, 32, 32)
    assert model.snippets(flow).shape == (2, 3, 10, 32, 32)
    assert model(flow).shape == (2, 7)
    with pytest.raises(ModelError, match="in_chans=6"):
        TSN(backbone, modality="flow", snippet_length=3)
    with pytest.raises(ModelError, match="2 channels"):
        model(torch.randn(2, 3, 15, 32, 32))


def test_tsn_presets_shapes_parameters_and_flops() -> None:
    model = build_model("tsn", preset="tiny", num_classes=13).eval()
    inputs = {
        k: torch.randn_like(v) for k, v in example_inputs(model, batch_size=2, device="cpu").items()
    }
    out = model(inputs)
    assert isinstance(out, FusionOutput) and out.fused.shape == (2, 13)
    assert model.stream_weights == {"rgb": 1.0, "flow": 1.5}  # the paper's 1 : 1.5
    torch.testing.assert_close(out.fused, out.streams["rgb"] + 1.5 * out.streams["flow"])
    from torchvision.models import googlenet

    with torch.device("meta"):
        paper = build_model("tsn", preset="paper", num_classes=101)
        reference = googlenet(weights=None, aux_logits=False, init_weights=False, num_classes=101)
    # The RGB stream is GoogLeNet itself; the flow stream's stem reads 10 channels, not 3.
    assert count_parameters(paper.streams["rgb"]) == count_parameters(reference)
    stem = 64 * 7 * 7
    assert count_parameters(paper.streams["flow"]) == count_parameters(reference) + 7 * stem
    flops, _ = count_flops(paper, example_inputs(paper))
    assert 25 * 2 * 2.5e9 < flops < 25 * 2 * 4e9  # 25 snippets per stream, ~3 GFLOPs each
    assert paper.streams["rgb"].num_test_snippets == 25 and paper.streams["rgb"].num_segments == 3


# ----------------------------------------------------------------------------- conv fusion


@pytest.mark.parametrize("method", ["sum", "concat", "conv3d"])
def test_every_fusion_method_starts_as_the_sum(method: str) -> None:
    torch.manual_seed(0)
    a, b = torch.randn(2, 8, 4, 3, 3), torch.randn(2, 8, 4, 3, 3)
    fused = ConvFusion(method, 8)(a, b)  # type: ignore[arg-type]
    torch.testing.assert_close(fused, a + b)


def test_fusion_convolutions_mix_channels_and_time_once_trained() -> None:
    torch.manual_seed(0)
    concat, conv3d = ConvFusion("concat", 4), ConvFusion("conv3d", 4)
    for fusion in (concat, conv3d):
        with torch.no_grad():
            fusion.conv.weight.normal_()
    a = torch.zeros(1, 4, 5, 3, 3)
    b = torch.zeros(1, 4, 5, 3, 3)
    b[0, 2, 2, 1, 1] = 1.0  # one temporal-stream unit at time 2
    out1, out3 = concat(a, b), conv3d(a, b)
    assert (out1[0, :, 2, 1, 1] != 0).all() and (out1[0, :, 1] == 0).all()  # 1x1: no time
    assert (out3[0, :, 1:4, 1, 1] != 0).all()  # 3x3x3: reaches times 1 and 3


def test_conv_fusion_parameter_counts_follow_the_fusion() -> None:
    counts = {}
    with torch.device("meta"):
        for method in ("sum", "concat", "conv3d", "late"):
            model = build_model("conv_fusion", preset="paper", backbone="cnn_m_2048", method=method)
            counts[method] = count_parameters(model)
        two_stream = count_parameters(build_model("two_stream", preset="paper"))
        tower = model.temporal_head
        head = count_parameters(tower)
    c = 512  # conv5 of CNN-M-2048
    assert counts["concat"] - counts["sum"] == 2 * c * c + c
    assert counts["conv3d"] - counts["sum"] == 27 * 2 * c * c + c
    assert counts["late"] - counts["sum"] == head  # conv fusion drops one fc tower
    assert counts["late"] == two_stream  # the same streams as the two-stream network
    assert head > 0.45 * counts["late"]  # ... and that tower is nearly half of it


def test_conv_fusion_presets_run_and_report_flops() -> None:
    for method in ("sum", "concat", "conv3d", "late"):
        model = build_model("conv_fusion", preset="tiny", num_classes=6, method=method).eval()
        inputs = {
            k: torch.randn_like(v)
            for k, v in example_inputs(model, batch_size=2, device="cpu").items()
        }
        out = model(inputs)
        logits = out.fused if isinstance(out, FusionOutput) else out
        assert logits.shape == (2, 6) and torch.isfinite(logits).all()
        assert isinstance(out, FusionOutput) == (method == "late")
    with torch.device("meta"):
        paper = build_model("conv_fusion", preset="paper")
    assert paper.input_spec.num_frames == 51 and paper.num_times == 5
    flops, per_module = count_flops(paper, example_inputs(paper))
    vgg16_conv = 2 * 15.35e9  # ~15.4 G multiply-adds per 224x224 image, 2 FLOPs each
    assert 10 * vgg16_conv < flops < 10 * vgg16_conv * 1.2  # 5 instances x 2 streams + fusion
    assert per_module["fusion"] > 0


@pytest.mark.parametrize("method", ["sum", "concat", "conv3d", "late"])
def test_gradients_reach_both_streams(method: str) -> None:
    torch.manual_seed(0)
    model = build_model("conv_fusion", preset="tiny", num_classes=4, method=method).train()
    inputs = {
        k: torch.randn_like(v) for k, v in example_inputs(model, batch_size=2, device="cpu").items()
    }
    out = model(inputs)
    logits = out.log_probabilities if isinstance(out, FusionOutput) else out
    nn.functional.cross_entropy(logits, torch.tensor([0, 3])).backward()
    for trunk in (model.spatial_trunk, model.temporal_trunk):
        grad = first_conv(trunk).weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    if model.fusion is not None and model.fusion.conv is not None:
        assert model.fusion.conv.weight.grad.abs().sum() > 0


def test_conv_fusion_refuses_a_single_input() -> None:
    model = build_model("conv_fusion", preset="tiny", num_classes=4)
    with pytest.raises(ModelError, match="both inputs"):
        model(torch.randn(1, 3, 16, 64, 64))
    with pytest.raises(ModelError, match="cnn_m_2048"):
        build_model("conv_fusion", preset="tiny", backbone="vgg16")


# ----------------------------------------------------------------------------- cost of flow


def test_measure_flow_rate_returns_fields_per_second() -> None:
    rate = measure_flow_rate("farneback", (32, 48), pairs=2)
    assert math.isfinite(rate) and rate > 0
    with pytest.raises(ValueError, match="pairs"):
        measure_flow_rate("dis", (32, 32), pairs=0)
    with pytest.raises(ValueError, match="size"):
        measure_flow_rate("dis", (4, 32))
    with pytest.raises(ValueError, match="unknown flow method"):
        measure_flow_rate("brox", (32, 32))


def test_flow_cost_table_and_figure() -> None:
    rates = flow_cost(
        ["dis", "farneback"], sizes=[(32, 32), (48, 40)], pairs={"dis": 2, "farneback": 1}
    )
    assert [(r.method, r.size, r.pairs) for r in rates] == [
        ("dis", (32, 32), 2),
        ("dis", (48, 40), 2),
        ("farneback", (32, 32), 1),
        ("farneback", (48, 40), 1),
    ]
    assert rates[0].seconds_per_video_second(25) == pytest.approx(25 / rates[0].fields_per_second)
    table = flow_cost_markdown(rates)
    assert "48x40" in table and table.count("\n") == 5
    fig = flow_cost_figure(rates)
    assert len(fig.axes[0].patches) == 4


def test_tsn_figure_marks_the_samplers_own_frames() -> None:
    from matplotlib.patches import Rectangle

    from hartutor.two_stream_figures import conv_fusion_figure, tsn_figure

    fig = tsn_figure(num_frames=12, num_segments=4, seed=3)
    timeline = fig.axes[0]
    boxes = [p for p in timeline.patches if isinstance(p, Rectangle) and p.get_width() == 0.8]
    assert len(boxes) == 3 * 12  # two training draws and the test row
    filled = sorted(int(p.get_x()) for p in boxes if p.get_facecolor()[:3] != (1.0, 1.0, 1.0))
    generator = torch.Generator().manual_seed(3)
    draws = [segment_starts(12, 4, training=True, generator=generator) for _ in range(2)]
    expected = sorted([*draws[0].tolist(), *draws[1].tolist(), *segment_starts(12, 4).tolist()])
    assert filled == expected
    with pytest.raises(ValueError):
        tsn_figure(num_frames=2, num_segments=3)
    texts = [
        t.get_text() for ax in conv_fusion_figure({"late": 10, "sum": 6}).axes for t in ax.texts
    ]
    assert "10 parameters" in texts and "sum 6" in texts
