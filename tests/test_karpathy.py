"""Karpathy et al. 2014's four fusions in time: shapes, what frames each one sees, sizes."""

from __future__ import annotations

import pytest
import torch

import hartutor  # noqa: F401  (before timm)
from hartutor.errors import ModelError
from hartutor.models import build_model
from hartutor.models.karpathy import FUSIONS, KarpathyNet, karpathy_layout
from hartutor.params import count_flops, count_parameters, example_inputs
from hartutor.viz import save_figure, temporal_fusion_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tiny(fusion: str, num_classes: int = 5) -> KarpathyNet:
    torch.manual_seed(0)
    model = build_model("karpathy", fusion=fusion, preset="tiny", num_classes=num_classes)
    assert isinstance(model, KarpathyNet)
    return model.eval()


@pytest.mark.parametrize("fusion", FUSIONS)
def test_tiny_shapes_and_features(fusion: str) -> None:
    model = _tiny(fusion)
    x = torch.randn(2, *model.input_spec.shape)
    assert model.input_spec.shape == (3, 16, 64, 64)
    features = model.forward_features(x)
    assert tuple(features.shape[1:]) == model.feature_shape
    steps = {"single_frame": 16, "early": 1, "late": 2, "slow": 1}[fusion]
    assert features.shape[2] == steps
    assert model(x).shape == (2, 5)
    assert model.forward_head(features, pre_logits=True).shape == (2, model.num_features)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_paper_shapes_on_meta(fusion: str) -> None:
    with torch.device("meta"):
        model = build_model("karpathy", fusion=fusion, num_classes=101)
        out = model(example_inputs(model, batch_size=2))
    frames = {"single_frame": 1, "early": 10, "late": 16, "slow": 10}[fusion]
    assert model.input_spec.shape == (3, frames, 170, 170)
    assert model.feature_shape[0] == 256 and model.feature_shape[2:] == (6, 6)
    assert out.shape == (2, 101)


def test_temporal_views_say_where_time_is_fused() -> None:
    views = {f: _tiny(f).temporal_views() for f in FUSIONS}
    everything = tuple(range(16))
    # single frame: no unit of any layer sees two frames.
    assert all(len(u) == 1 for layer in views["single_frame"].values() for u in layer)
    # early: conv1 already sees the whole clip.
    assert views["early"]["conv1"] == [everything]
    # late: conv layers see one frame (0 or 15), only fc6 sees both.
    assert all(len(u) == 1 for name in ("conv1", "conv5") for u in views["late"][name])
    assert views["late"]["fc6"] == [(0, 15)]
    # slow: time grows through conv1-conv3 (4, 8, 16 frames), then stays.
    assert [len(views["slow"][n][0]) for n in ("conv1", "conv2", "conv3", "conv5")] == [
        4,
        8,
        16,
        16,
    ]
    with torch.device("meta"):
        paper = build_model("karpathy", fusion="slow").temporal_views()
    # The paper's slow fusion: conv1 extent 4 stride 2 on 10 frames -> 4 responses in time.
    assert paper["conv1"] == [(0, 1, 2, 3), (2, 3, 4, 5), (4, 5, 6, 7), (6, 7, 8, 9)]
    assert paper["conv3"] == [tuple(range(10))]


@pytest.mark.parametrize("fusion", FUSIONS)
def test_frames_outside_a_networks_view_do_not_change_its_scores(fusion: str) -> None:
    """Perturb every frame fc6 does not see: the scores stay; perturb one it sees: they move."""
    model = _tiny(fusion)
    seen = {f for unit in model.temporal_views()["fc6"] for f in unit}
    x = torch.randn(1, *model.input_spec.shape)
    unseen = [f for f in range(16) if f not in seen]
    y = x.clone()
    y[:, :, unseen] = torch.randn_like(y[:, :, unseen])
    z = x.clone()
    z[:, :, sorted(seen)[-1]] += 1.0
    with torch.no_grad():
        base, same, moved = model(x), model(y), model(z)
    torch.testing.assert_close(same, base)
    assert (moved - base).abs().max() > 1e-4
    assert (fusion == "late") == bool(unseen)  # only late fusion skips frames (1..14)


def test_single_frame_is_blind_to_order_and_the_others_are_not() -> None:
    x = torch.randn(1, 3, 16, 64, 64)
    shuffled = x[:, :, torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        for fusion in FUSIONS:
            model = _tiny(fusion)
            moved = (model(x) - model(x.flip(2))).abs().max().item()
            if fusion == "single_frame":
                torch.testing.assert_close(model(shuffled), model(x), rtol=1e-5, atol=1e-6)
                assert moved < 1e-5
            else:
                assert moved > 1e-4, fusion


def test_paper_parameter_counts_and_flops() -> None:
    """Counted from the layers (conv1 96x3x11x11 ... fc 4096), at 101 classes."""
    convs = 96 * 3 * 121 + 256 * 96 * 25 + 384 * 256 * 9 + 384 * 384 * 9 + 256 * 384 * 9
    biases = 96 + 256 + 384 + 384 + 256 + 4096 + 4096 + 101
    fcs = 9216 * 4096 + 4096 * 4096 + 4096 * 101
    single = convs + biases + fcs
    extra = {
        "single_frame": 0,
        "early": 96 * 3 * 121 * 9,  # conv1 over 10 frames instead of 1
        "late": 9216 * 4096,  # fc6 reads two towers
        "slow": 96 * 3 * 121 * 3 + 256 * 96 * 25 + 384 * 256 * 9,  # conv1 x4, conv2/3 x2
    }
    flops = {}
    for fusion in FUSIONS:
        with torch.device("meta"):
            model = build_model("karpathy", fusion=fusion, num_classes=101)
        assert count_parameters(model) == single + extra[fusion], fusion
        flops[fusion], per_module = count_flops(model, example_inputs(model))
        assert per_module["conv1.conv"] > 0 and per_module["fc8"] == 2 * 4096 * 101
    # Slow fusion computes conv1-conv3 at several times: the most work per clip.
    assert max(flops, key=flops.get) == "slow"
    assert flops["single_frame"] < flops["early"] < flops["slow"]


@pytest.mark.parametrize("fusion", FUSIONS)
def test_gradients_reach_every_parameter(fusion: str) -> None:
    model = _tiny(fusion).train()
    x = torch.randn(2, *model.input_spec.shape)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 3]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ModelError, match="fusion"):
        build_model("karpathy", fusion="middle", preset="tiny")
    model = _tiny("late")
    with pytest.raises(ModelError, match="16-frame"):
        model(torch.randn(1, 3, 8, 64, 64))
    with pytest.raises(ModelError, match="late_gap"):
        karpathy_layout("late", num_frames=10, late_gap=15)
    model.reset_classifier(7)
    assert model(torch.randn(1, 3, 16, 64, 64)).shape == (1, 7)


def test_cli_arg_sets_the_fusion() -> None:
    from hartutor.models.registry import parse_builder_arguments

    assert parse_builder_arguments("karpathy", ["fusion=early"]) == {"fusion": "early"}
    with pytest.raises(ValueError, match="single_frame"):
        parse_builder_arguments("karpathy", ["fusion=middle"])


def test_temporal_fusion_figure_draws_every_network(tmp_path) -> None:
    views = {f: _tiny(f).temporal_views() for f in FUSIONS}
    fig = temporal_fusion_figure(views)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == list(FUSIONS)
    # One marker per (unit, frame) pair: the late network's input has 2 frames, not 16.
    late = axes[2]
    points = sum(len(c.get_offsets()) for c in late.collections)
    assert points == sum(len(u) for layer in views["late"].values() for u in layer)
    path = save_figure(fig, tmp_path / "fusions.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError):
        temporal_fusion_figure({})


@pytest.mark.parametrize("fusion", FUSIONS)
def test_accel_computes_the_same_for_every_fusion(fusion: str) -> None:
    """tests/test_accel.py builds the default (slow) fusion; the other three here."""
    import copy

    from hartutor import accel

    model = _tiny(fusion)
    fast = accel.optimize(copy.deepcopy(model))
    assert accel.is_optimized(fast)
    x = torch.randn(2, *model.input_spec.shape)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)


def test_multiresolution_streams() -> None:
    """Fovea (centre crop) and context (half resolution) towers, concatenated into fc6."""
    with torch.device("meta"):
        paper = build_model("karpathy", fusion="slow", num_classes=101, multiresolution=True)
        out = paper(example_inputs(paper))
        single = build_model("karpathy", fusion="slow", num_classes=101, preset="paper")
    assert paper.input_spec.size == (178, 178) and out.shape == (1, 101)
    # 89x89 streams without the last pool: 6x6 maps of 256 each, so fc6 reads 2 x 9216.
    assert paper.feature_shape == (512, 1, 6, 6)
    towers = sum(p.numel() for n, p in single.named_parameters() if n.startswith("conv"))
    assert count_parameters(paper) == count_parameters(single) + towers + 9216 * 4096

    torch.manual_seed(0)
    model = build_model(
        "karpathy", fusion="early", preset="tiny", num_classes=5, multiresolution=True
    ).eval()
    x = torch.randn(1, *model.input_spec.shape)
    border = x.clone()
    border[..., :4, :] += 1.0  # top rows: outside the 32x32 fovea (rows 16-47)
    with torch.no_grad():
        fovea, context = model.forward_features(x).chunk(2, dim=1)
        fovea2, context2 = model.forward_features(border).chunk(2, dim=1)
    torch.testing.assert_close(fovea2, fovea)  # the fovea sees only the centre
    assert (context2 - context).abs().max() > 1e-4  # the context sees the whole frame
    assert model(x).shape == (1, 5)
