"""Frame-level models: sampling helpers, FrameClassifier (single-frame), LRCN and its CNN."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hartutor  # noqa: F401  (before timm)
from hartutor.models import build_model, list_models
from hartutor.models.frame import (
    LRCN,
    FrameClassifier,
    LRCNConvNet,
    ModelError,
    SmallConvNet,
    clip_to_frames,
    frame_consensus,
    gather_frames,
    random_segment_indices,
    uniform_indices,
)
from hartutor.models.layers import InputSpec


class FrameMeanNet(nn.Module):
    """A transparent backbone: logit k of a frame = mean of channel 0 times (k + 1)."""

    num_features = 1
    num_classes = 3

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = x.mean(dim=(1, 2, 3)).unsqueeze(1)
        return pooled if pre_logits else pooled * torch.arange(1.0, 4.0)

    def get_classifier(self) -> nn.Module:
        return nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes


def test_builders_registered() -> None:
    assert {"single_frame", "lrcn"} <= set(list_models())


def test_uniform_indices_are_segment_centres() -> None:
    assert uniform_indices(16, 4).tolist() == [2, 6, 10, 14]
    assert uniform_indices(11, 1).tolist() == [5]
    assert uniform_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]  # repeats when too few


def test_random_segment_indices_stay_in_their_segment() -> None:
    gen = torch.Generator().manual_seed(0)
    idx = random_segment_indices(64, 16, 4, generator=gen)
    assert idx.shape == (64, 4)
    for s in range(4):
        assert idx[:, s].min() >= 4 * s and idx[:, s].max() <= 4 * s + 3
    assert len(set(idx[:, 0].tolist())) > 1  # actually random


def test_gather_frames_shared_and_per_clip() -> None:
    x = torch.arange(2 * 1 * 5).float().view(2, 1, 5, 1, 1).expand(2, 1, 5, 2, 2)
    shared = gather_frames(x, torch.tensor([4, 0]))
    assert shared[:, 0, :, 0, 0].tolist() == [[4.0, 0.0], [9.0, 5.0]]
    per_clip = gather_frames(x, torch.tensor([[1, 2], [3, 3]]))
    assert per_clip.shape == (2, 1, 2, 2, 2)
    assert per_clip[:, 0, :, 0, 0].tolist() == [[1.0, 2.0], [8.0, 8.0]]


def test_frame_consensus_modes() -> None:
    scores = torch.randn(4, 5, 7)
    torch.testing.assert_close(frame_consensus(scores, "logit_mean"), scores.mean(1))
    fused = frame_consensus(scores, "softmax_mean")
    torch.testing.assert_close(fused.exp(), F.softmax(scores, -1).mean(1))
    torch.testing.assert_close(F.softmax(fused, -1), F.softmax(scores, -1).mean(1))
    with pytest.raises(ModelError, match="consensus"):
        frame_consensus(scores, "max")  # type: ignore[arg-type]


def test_frame_classifier_averages_per_frame_scores() -> None:
    model = FrameClassifier(FrameMeanNet(), consensus="logit_mean").eval()
    x = torch.zeros(2, 3, 4, 5, 5)
    for t in range(4):
        x[:, 0, t] = t  # frame t has mean t
    x[1, 0] += 10
    out = model(x)
    frame_means = torch.tensor([[0.0, 1, 2, 3], [10, 11, 12, 13]])
    expected = frame_means.mean(1, keepdim=True) * torch.arange(1.0, 4.0)
    torch.testing.assert_close(out, expected)
    # The batch is not mixed up with time: clip 1's answer does not depend on clip 0.
    torch.testing.assert_close(model(x[1:]), expected[1:])
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 1)


def test_frame_classifier_segments_eval_and_train() -> None:
    model = FrameClassifier(FrameMeanNet(), num_segments=2, consensus="logit_mean")
    x = torch.zeros(1, 3, 8, 2, 2)
    for t in range(8):
        x[:, 0, t] = t
    model.eval()
    # centres of segments [0..3] and [4..7]: frames 2 and 6
    torch.testing.assert_close(model(x)[0, 0], torch.tensor(4.0))
    model.train()
    torch.manual_seed(0)
    values = {float(model(x)[0, 0]) for _ in range(20)}
    assert len(values) > 1 and all(2.0 <= v <= 5.0 for v in values)


def test_frame_classifier_rejects_bad_input() -> None:
    model = build_model("single_frame", preset="tiny", num_classes=4)
    with pytest.raises(ModelError, match=r"\(N, C, T, H, W\)"):
        model(torch.randn(3, 16, 64, 64))
    with pytest.raises(ModelError, match="3 channels"):
        model(torch.randn(1, 16, 3, 64, 64))
    with pytest.raises(ModelError, match="float"):
        model(torch.zeros(1, 3, 16, 64, 64, dtype=torch.uint8))
    with pytest.raises(ModelError, match="preset"):
        build_model("single_frame", preset="huge")
    with pytest.raises(ModelError, match="consensus"):
        build_model("single_frame", preset="tiny", consensus="vote")
    with pytest.raises(ModelError, match="timm has no model"):
        build_model("single_frame", backbone="resnet_does_not_exist")


def test_single_frame_tiny_shapes_and_spec() -> None:
    model = build_model("single_frame", preset="tiny", num_classes=12)
    assert isinstance(model, FrameClassifier) and isinstance(model.backbone, SmallConvNet)
    assert model.input_spec.shape == (3, 16, 64, 64)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params < 500_000
    out = model(torch.randn(2, *model.input_spec.shape))
    assert out.shape == (2, 12) and torch.isfinite(out).all()
    model.reset_classifier(5)
    assert model.num_classes == 5 and model(torch.randn(1, 3, 4, 64, 64)).shape == (1, 5)


def test_single_frame_paper_reads_timm_config() -> None:
    with torch.device("meta"):
        model = build_model("single_frame", num_classes=101, backbone="resnet18")
    spec = model.input_spec
    assert spec.size == (224, 224) and spec.mean == pytest.approx((0.485, 0.456, 0.406))
    assert model.num_classes == 101
    # resnet18 has 11,689,512 parameters at 1000 classes (torchvision / timm).
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 11_689_512 - 513 * 1000 + 513 * 101


def test_lrcn_convnet_matches_the_released_caffe_model() -> None:
    with torch.device("meta"):
        net = LRCNConvNet(num_classes=0)
        feats = net.forward_features(torch.empty(1, 3, 227, 227))
    assert feats.shape == (1, 384, 6, 6)  # Caffe's ceil-mode pooling: pool5 is 6x6
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    expected = (
        (3 * 49 + 1) * 96
        + (48 * 25 + 1) * 384
        + (384 * 9 + 1) * 512
        + (256 * 9 + 1) * 512
        + (256 * 9 + 1) * 384
        + (384 * 36 + 1) * 4096
    )
    assert sum(p.numel() for p in net.parameters()) == expected


def test_lrcn_paper_parameter_count() -> None:
    with torch.device("meta"):
        model = build_model("lrcn", num_classes=101)
    assert model.lstm.hidden_size == 256 and model.input_spec.size == (227, 227)
    cnn = sum(p.numel() for p in model.backbone.parameters())
    lstm = 4 * 256 * (4096 + 256) + 2 * 4 * 256
    assert sum(p.numel() for p in model.parameters()) == cnn + lstm + 257 * 101


def test_lrcn_aggregation_and_order_sensitivity() -> None:
    torch.manual_seed(0)
    model = build_model("lrcn", preset="tiny", num_classes=6).eval()
    x = torch.randn(2, 3, 8, 64, 64)
    hidden = model.forward_features(x)
    assert hidden.shape == (2, 8, 64)
    step_logits = model.fc(hidden)
    torch.testing.assert_close(model(x), frame_consensus(step_logits, "softmax_mean"))
    model.aggregate = "last"
    torch.testing.assert_close(model(x), step_logits[:, -1])
    # Unlike the single-frame model, reversing time changes an LSTM's answer.
    assert not torch.allclose(model(x), model(x.flip(2)))


def test_lrcn_rejects_bad_options() -> None:
    with pytest.raises(ModelError, match="aggregate"):
        LRCN(SmallConvNet(num_classes=0), num_classes=3, aggregate="max")  # type: ignore[arg-type]


def test_tiny_single_frame_learns_a_brightness_task() -> None:
    """The tiny model can fit a trivial two-class problem: its gradients reach every layer."""
    torch.manual_seed(0)
    model = build_model("single_frame", preset="tiny", num_classes=2)
    x = torch.randn(16, 3, 4, 32, 32) * 0.1
    y = torch.arange(16) % 2
    x[y == 1] += 0.5
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert losses[0] == pytest.approx(math.log(2), abs=0.3)


def test_input_spec_is_an_input_spec() -> None:
    for name in ("single_frame", "lrcn"):
        assert isinstance(build_model(name, preset="tiny", num_classes=3).input_spec, InputSpec)


@pytest.mark.parametrize("sampled", [False, True], ids=["whole clip", "sampled frames"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_clip_to_frames_puts_frame_t_of_clip_n_at_n_times_t_plus_t(
    channels_last: bool, sampled: bool
) -> None:
    """In the layout asked for, also for sampled frames: those come as a view of a (N, T, C,
    H, W) tensor, which once gave default-layout frames when channels-last was asked for."""
    clip = torch.randn(2, 3, 4, 5, 6)
    if sampled:
        clip = clip.transpose(1, 2).contiguous().transpose(1, 2)
    frames = clip_to_frames(clip, channels_last=channels_last)
    assert frames.shape == (8, 3, 5, 6)
    for n in range(2):
        for t in range(4):
            assert torch.equal(frames[n * 4 + t], clip[n, :, t])
    layout = torch.channels_last if channels_last else torch.contiguous_format
    assert frames.is_contiguous(memory_format=layout)


def test_shared_helpers_live_in_common_and_keep_their_old_names() -> None:
    """two_stream, xception and fusion share helpers through models.common, not through
    frame's private names; frame still re-exports the public ones."""
    import ast
    from pathlib import Path

    from hartutor.models import common, frame

    for name in ("check_choice", "check_clip", "uniform_indices", "gather_frames", "Preset"):
        assert getattr(frame, name) is getattr(common, name), name
    folder = Path(common.__file__).parent
    private = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hartutor"):
                private += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert private == []
