"""Xception frame stream: timm's legacy_xception (paper) and MiniXception (tiny)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hartutor  # noqa: F401  (before timm, which the tests import locally)
from hartutor.models import build_model
from hartutor.models.frame import FrameClassifier
from hartutor.models.xception import MiniXception, xception_input_spec


def _n(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_paper_xception_has_the_published_parameter_count() -> None:
    with torch.device("meta"):
        model = build_model("xception", num_classes=1000)
    assert isinstance(model, FrameClassifier)
    assert _n(model) == 22_855_952
    assert type(model.backbone).__name__ == "Xception"
    with torch.device("meta"):
        ucf = build_model("xception", num_classes=101)
    assert _n(ucf) == 22_855_952 - 2049 * 1000 + 2049 * 101


def test_input_spec_comes_from_timm_config() -> None:
    import timm

    cfg = timm.models.get_pretrained_cfg("legacy_xception")
    spec = xception_input_spec()
    assert spec.size == tuple(cfg.input_size[1:]) == (299, 299)
    assert spec.mean == tuple(cfg.mean) and spec.std == tuple(cfg.std)
    assert spec.num_channels == 3


def test_frame_stream_equals_timm_on_each_frame() -> None:
    torch.manual_seed(0)
    model = build_model("xception", preset="tiny", num_classes=5, consensus="logit_mean").eval()
    clip = torch.randn(2, 3, 4, 64, 64)
    per_frame = torch.stack([model.backbone(clip[:, :, t]) for t in range(4)], 1)
    torch.testing.assert_close(model(clip), per_frame.mean(1))
    model.consensus = "softmax_mean"
    torch.testing.assert_close(model(clip).exp(), F.softmax(per_frame, -1).mean(1))


def test_tiny_xception_is_small_and_depthwise_separable() -> None:
    from timm.models.xception import SeparableConv2d

    model = build_model("xception", preset="tiny", num_classes=10)
    assert isinstance(model.backbone, MiniXception)
    assert _n(model) < 500_000
    separable = [m for m in model.modules() if isinstance(m, SeparableConv2d)]
    assert len(separable) >= 8
    for m in separable:  # a per-channel 3x3 then a 1x1 across channels
        assert m.conv1.groups == m.conv1.in_channels == m.conv1.out_channels
        assert m.pointwise.kernel_size == (1, 1)
    out = model(torch.randn(2, *model.input_spec.shape))
    assert out.shape == (2, 10)


def test_mini_xception_interface() -> None:
    net = MiniXception(num_classes=0)
    x = torch.randn(2, 3, 64, 64)
    assert net(x).shape == (2, net.num_features)
    net.reset_classifier(7)
    assert net(x).shape == (2, 7) and net.num_classes == 7
    assert net.forward_head(net.forward_features(x), pre_logits=True).shape == (2, 192)
    assert net.num_features == 192


def test_tiny_stream_trains_on_eight_frames_and_scores_all_of_them() -> None:
    """The tiny preset trains on 8 of the 16 frames (one per segment, as many as the paper
    stream scores) and scores every frame in eval, so any order of the frames scores alike."""
    torch.manual_seed(0)
    model = build_model("xception", preset="tiny", num_classes=5)
    assert model.num_segments == 8 and model.eval_all_frames
    seen: list[int] = []
    model.backbone.stem.register_forward_hook(lambda module, args, out: seen.append(len(args[0])))
    clip = torch.randn(2, 3, 16, 64, 64)
    model.train()(clip)
    model.eval()
    with torch.no_grad():
        scores = model(clip)
        shuffled = model(clip[:, :, torch.randperm(16)])
    assert seen[:2] == [2 * 8, 2 * 16]
    per_frame = torch.stack([model.backbone(clip[:, :, t]) for t in range(16)], 1)
    torch.testing.assert_close(scores.exp(), F.softmax(per_frame, -1).mean(1))
    torch.testing.assert_close(shuffled, scores)
    every = build_model("xception", preset="tiny", num_classes=5, num_segments=0)
    assert every.num_segments is None
    centres = build_model("xception", preset="tiny", num_classes=5, num_segments=4)
    assert not centres.eval_all_frames
    assert centres.eval_frame_indices(16).tolist() == [2, 6, 10, 14]
    paper = build_model("xception", preset="paper", num_classes=5, num_segments=0)
    assert paper.num_segments is None


@pytest.mark.slow
def test_imagenet_weights_load_through_hartutor_weights(tmp_path) -> None:
    """A legacy_xception state dict in timm's format loads into the stream, classifier too."""
    import timm

    from hartutor.weights import load_pretrained

    reference = timm.create_model("legacy_xception", pretrained=False)
    torch.save(reference.state_dict(), tmp_path / "xception.pth")
    model = load_pretrained(
        "xception_imagenet1k_tf", path=tmp_path / "xception.pth", check_hash=False
    )
    assert isinstance(model, FrameClassifier) and model.num_classes == 1000
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[key], value)
