"""hartutor.explain: Captum attributions per stream, fused attributions, memory-aware batching."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import hartutor  # noqa: F401
from hartutor.errors import ModelError
from hartutor.explain import (
    METHODS,
    _guided_functional_relus,
    choose_batch_size,
    default_layer,
    estimate_memory,
    explain,
    explain_streams,
    temporal_importance,
)
from hartutor.models import build_model

NUM_CLASSES = 13
FAST = {"n_steps": 4}  # keeps IG cheap where only shapes are checked


@pytest.fixture(scope="module")
def fusion() -> nn.Module:
    torch.manual_seed(0)
    return build_model("i3d_xception_fusion", preset="tiny", num_classes=NUM_CLASSES).eval()


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return torch.randn(3, 16, 64, 64, generator=torch.Generator().manual_seed(1)).clamp(-1, 1)


@pytest.fixture(scope="module")
def i3d() -> nn.Module:
    torch.manual_seed(2)
    return build_model("i3d", preset="tiny", num_classes=NUM_CLASSES).eval()


class FrameZeroNet(nn.Module):
    """Looks at frame 0 only: a 2D conv on it, pooled, then a linear classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x[:, :, 0])).mean(dim=(2, 3)))


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_maps_on_each_streams_own_input(fusion, clip, method):
    options = dict(FAST) if method == "integrated_gradients" else {}
    if method == "occlusion":
        options["sliding_window_shapes"] = (3, 8, 32, 32)
    results = explain_streams(fusion, clip, target=3, method=method, **options)
    channels = 1 if method == "grad_cam" else 3
    assert results["i3d"].map.shape == (channels, 16, 64, 64)
    # Xception sees 8 frames sampled from the clip by its adapter
    assert results["xception"].map.shape == (channels, 8, 64, 64)
    assert results["xception"].inputs["video"].shape == (3, 8, 64, 64)
    assert results["xception"].frame_indices["video"] == (1, 3, 5, 7, 9, 11, 13, 15)
    if method in ("grad_cam", "guided_grad_cam"):
        assert "fused" not in results
    else:  # the fused probability through the adapters: the shared clip's shape
        assert results["fused"].map.shape == (3, 16, 64, 64)
        assert results["fused"].stream is None
    for name, result in results.items():
        assert torch.isfinite(result.map).all(), name
        assert result.method == method and result.target == 3


def test_saliency_is_the_absolute_input_gradient(fusion, clip):
    stream = fusion.streams["i3d"]
    x = clip.unsqueeze(0).clone().requires_grad_()
    stream(x)[0, 5].backward()
    result = explain(fusion, clip, target=5, method="saliency", stream="i3d")
    torch.testing.assert_close(result.map, x.grad[0].abs())
    with torch.no_grad():
        expected = float(stream(clip.unsqueeze(0))[0, 5])
    assert result.score == pytest.approx(expected, abs=1e-5)


def test_integrated_gradients_completeness(fusion, clip):
    stream = fusion.streams["xception"]
    adapted = fusion.stream_input("xception", clip.unsqueeze(0))
    with torch.no_grad():
        gaps = stream(adapted)[0] - stream(torch.zeros_like(adapted))[0]
    target = int(gaps.abs().argmax())  # the class whose score moves most: a meaningful check
    gap = float(gaps[target])
    result = explain(
        fusion, clip, target=target, method="integrated_gradients", stream="xception", n_steps=16
    )
    assert float(result.map.sum()) == pytest.approx(gap, rel=0.05)


def test_integrated_gradients_do_not_depend_on_the_batch_size(i3d, clip):
    one = explain(
        i3d, clip, target=1, method="integrated_gradients", n_steps=4, internal_batch_size=1
    )
    four = explain(
        i3d, clip, target=1, method="integrated_gradients", n_steps=4, internal_batch_size=4
    )
    assert one.options["internal_batch_size"] == 1 and four.options["internal_batch_size"] == 4
    torch.testing.assert_close(one.map, four.map, rtol=1e-4, atol=1e-6)


def test_a_tiny_budget_forces_batch_size_one(i3d, clip):
    assert choose_batch_size(10_000, 5_000, 50) == 1
    assert choose_batch_size(1_000, 10_000, 50) == 10
    assert choose_batch_size(1, 10_000, 7) == 7
    with pytest.warns(ResourceWarning, match="memory_budget_mb"):
        result = explain(
            i3d, clip, target=0, method="integrated_gradients", n_steps=4, memory_budget_mb=0.01
        )
    assert result.options["internal_batch_size"] == 1
    roomy = explain(i3d, clip, target=0, method="integrated_gradients", n_steps=4)
    assert roomy.options["internal_batch_size"] == 4  # all steps fit in the default budget
    with pytest.warns(ResourceWarning):
        occluded = explain(
            i3d,
            clip,
            target=0,
            method="occlusion",
            memory_budget_mb=0.01,
            sliding_window_shapes=(3, 8, 32, 32),
        )
    assert occluded.options["perturbations_per_eval"] == 1


def test_checkpointing_does_not_change_the_result(i3d, clip):
    plain = explain(i3d, clip, target=2, method="saliency", checkpoint=False)
    checkpointed = explain(i3d, clip, target=2, method="saliency", checkpoint=True)
    assert checkpointed.options["checkpoint"] and not plain.options["checkpoint"]
    torch.testing.assert_close(plain.map, checkpointed.map)
    # "auto" turns it on when a plain backward exceeds the budget
    estimate = plain.options["memory_estimate"]
    assert estimate.checkpointed_grad_bytes < estimate.grad_bytes
    budget_mb = (estimate.checkpointed_grad_bytes + estimate.grad_bytes) / 2 / 2**20
    auto = explain(i3d, clip, target=2, method="saliency", memory_budget_mb=budget_mb)
    assert auto.options["checkpoint"]


def test_a_model_that_only_sees_frame_zero():
    torch.manual_seed(3)
    model = FrameZeroNet().eval()
    clip = torch.randn(3, 6, 32, 32)
    target = int(model(clip.unsqueeze(0)).argmax())
    occluded = explain(
        model, clip, target=target, method="occlusion", sliding_window_shapes=(3, 1, 8, 8)
    )
    assert occluded.options["evaluations"] == 6 * 4 * 4
    assert occluded.map[:, 1:].abs().max() == 0
    assert occluded.map[:, 0].abs().max() > 0
    np.testing.assert_allclose(occluded.temporal_importance(), [1, 0, 0, 0, 0, 0])
    saliency = explain(model, clip, target=target, method="saliency")
    assert saliency.map[:, 1:].abs().max() == 0
    assert saliency.temporal_importance()[0] == pytest.approx(1.0)


def test_stream_shares_follow_the_fusion_weights(clip):
    torch.manual_seed(4)
    model = build_model(
        "i3d_xception_fusion", preset="tiny", num_classes=NUM_CLASSES, weights=(3.0, 1.0)
    ).eval()
    result = explain(model, clip, target=6, method="saliency", stream="xception")
    assert sum(result.shares.values()) == pytest.approx(1.0)
    with torch.no_grad():
        out = model(clip.unsqueeze(0))
    p = {name: float(torch.softmax(z, -1)[0, 6]) for name, z in out.streams.items()}
    expected = 1.0 * p["xception"] / (3.0 * p["i3d"] + 1.0 * p["xception"])
    assert result.share == pytest.approx(expected)
    fused = explain(model, clip, target=6, method="saliency")
    assert fused.score == pytest.approx(float(out.fused[0, 6]), abs=1e-6)
    assert fused.share is None


def test_two_stream_fused_and_per_stream_maps():
    torch.manual_seed(5)
    model = build_model("two_stream", preset="tiny", num_classes=NUM_CLASSES).eval()
    inputs = {"video": torch.randn(3, 16, 64, 64), "flow": torch.randn(2, 15, 64, 64)}
    fused = explain(model, inputs, target=1, method="integrated_gradients", **FAST)
    assert {k: tuple(v.shape) for k, v in fused.maps.items()} == {
        "video": (3, 16, 64, 64),
        "flow": (2, 15, 64, 64),
    }
    cam = explain(model, inputs, target=1, method="grad_cam", stream="temporal")
    assert cam.map.shape == (1, 15, 64, 64)
    assert (cam.map >= 0).all()
    assert cam.frames().shape == (15, 64, 64, 3)  # flow shown colour-coded
    with pytest.raises(ModelError, match="stream="):
        explain(model, inputs, target=1, method="grad_cam")


def test_guided_grad_cam_matches_captums_class(i3d, clip):
    from captum.attr import GuidedGradCam

    ours = explain(i3d, clip, target=7, method="guided_grad_cam")
    assert ours.options["layer"] == "Mixed_5b" and default_layer(i3d) is i3d.Mixed_5b
    for p in i3d.parameters():
        p.requires_grad_(False)
    try:
        with _guided_functional_relus(i3d), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = GuidedGradCam(i3d, i3d.Mixed_5b).attribute(
                clip.unsqueeze(0).clone().requires_grad_(), target=7, interpolate_mode="trilinear"
            )
    finally:
        for p in i3d.parameters():
            p.requires_grad_(True)
    torch.testing.assert_close(ours.map, theirs[0].detach(), rtol=1e-4, atol=1e-7)


def test_guided_hooks_reach_functional_relus(i3d, clip):
    x = clip.unsqueeze(0)
    grads = []
    for guided in (False, True):
        xi = x.clone().requires_grad_()
        if guided:
            with _guided_functional_relus(i3d):
                i3d(xi)[0, 7].backward()
        else:
            i3d(xi)[0, 7].backward()
        grads.append(xi.grad)
    assert not torch.allclose(grads[0], grads[1])


def test_memory_estimate_counts_activations(i3d, clip):
    estimate, output = estimate_memory(i3d, (clip.unsqueeze(0),))
    assert output.shape == (1, NUM_CLASSES)
    assert estimate.input_bytes == clip.nbytes
    assert estimate.activation_bytes > clip.nbytes
    assert estimate.checkpointed_grad_bytes < estimate.grad_bytes


def test_temporal_importance_and_helpers(fusion, clip):
    result = explain(fusion, clip, target=2, method="saliency", stream="xception")
    curve = result.temporal_importance()
    assert curve.shape == (8,) and curve.sum() == pytest.approx(1.0)
    positions, _ = result.temporal_curve()
    assert positions.tolist() == [1, 3, 5, 7, 9, 11, 13, 15]
    heat = result.heatmap()
    assert heat.shape == (8, 64, 64) and heat.max() == pytest.approx(1.0) and heat.min() >= 0
    frames = result.frames()
    assert frames.dtype == np.uint8 and frames.shape == (8, 64, 64, 3)
    np.testing.assert_allclose(temporal_importance(np.zeros((3, 4, 2, 2))), np.zeros(4))


def test_clear_errors(fusion, i3d, clip):
    with pytest.raises(ModelError, match="method="):
        explain(i3d, clip, target=0, method="lime")
    with pytest.raises(ModelError, match="target"):
        explain(i3d, clip, target=NUM_CLASSES, method="saliency")
    with pytest.raises(ModelError, match="one clip"):
        explain(i3d, clip.expand(2, -1, -1, -1, -1), target=0, method="saliency")
    with pytest.raises(ModelError, match="LateFusion"):
        explain(i3d, clip, target=0, method="saliency", stream="i3d")
    with pytest.raises(ModelError, match="no stream"):
        explain(fusion, clip, target=0, method="saliency", stream="flow")
    with pytest.raises(ModelError, match="unknown options"):
        explain(i3d, clip, target=0, method="saliency", steps=3)
    with pytest.raises(ModelError, match="no layer"):
        explain(i3d, clip, target=0, method="grad_cam", layer="Mixed_9z")
    with pytest.raises(ModelError, match="float"):
        explain(i3d, (clip * 100).to(torch.uint8), target=0, method="saliency")


def test_explain_restores_the_models_state(i3d, clip):
    i3d.train()
    try:
        explain(i3d, clip, target=0, method="saliency")
        assert i3d.training
        trainable = [p.requires_grad for p in i3d.parameters()]
        explain(i3d, clip, target=0, method="grad_cam")
        assert [p.requires_grad for p in i3d.parameters()] == trainable
    finally:
        i3d.eval()


def test_controls_helpers():
    from hartutor.explain import centre_hump, motion_free_baseline, motion_per_frame

    hump = centre_hump(16)
    assert hump.sum() == pytest.approx(1.0) and hump.argmax() in (7, 8) and hump[0] < hump[8]
    flow = np.zeros((2, 3, 4, 4), dtype=np.float32)
    flow[0, 1] = 2.0  # motion between frames 1 and 2 only
    np.testing.assert_allclose(motion_per_frame(flow), [0, 0.5, 0.5, 0])
    assert not motion_per_frame(np.zeros_like(flow)).any()
    video = torch.rand(3, 5, 4, 4)
    still = motion_free_baseline(video)
    assert still.shape == video.shape and torch.allclose(still[:, 0], video.mean(1))


def test_temporal_controls_on_the_tiny_fusion():
    from hartutor.course import shipped_checkpoint
    from hartutor.explain import controls_markdown, temporal_controls
    from hartutor.widgets import load_model

    model = load_model(shipped_checkpoint("i3d_xception_fusion_tiny.pt")).model
    rows = temporal_controls(model, ["sit_down"], (0,))
    assert len(rows) == 1 and all(-1 <= v <= 1 for v in (rows[0].motion, rows[0].still_hump))
    assert "mean" in controls_markdown(rows)


def test_smoothgrad_averages_noisy_saliency():
    from hartutor.models import build_model

    torch.manual_seed(0)
    model = build_model("i3d", preset="tiny", num_classes=5).eval()
    clip = torch.rand(3, *model.input_spec.shape[1:])
    plain = explain(model, clip, target=1, method="saliency")
    smooth = explain(model, clip, target=1, method="smoothgrad", nt_samples=4)
    assert smooth.maps["video"].shape == plain.maps["video"].shape
    assert not torch.equal(smooth.maps["video"], plain.maps["video"])
    assert smooth.options["nt_samples"] == 4
