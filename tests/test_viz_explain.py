"""The attribution plots of hartutor.viz (object API, so headless without choosing a backend)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure

import hartutor  # noqa: F401
from hartutor import viz
from hartutor.params import Claim, ModelRow


@pytest.fixture
def frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (6, 16, 20, 3), dtype=np.uint8)


def test_overlay_keeps_cold_pixels_and_colours_hot_ones(frames):
    heat = np.zeros((6, 16, 20), dtype=np.float32)
    heat[2, 4:8, 5:9] = 1.0
    out = viz.overlay(frames, heat, alpha=0.6, cmap="jet")
    assert out.dtype == np.uint8 and out.shape == frames.shape
    cold = heat == 0
    np.testing.assert_array_equal(out[cold], frames[cold])
    assert not np.array_equal(out[2, 4:8, 5:9], frames[2, 4:8, 5:9])
    # alpha 0 leaves the frames untouched
    np.testing.assert_array_equal(viz.overlay(frames, heat, alpha=0.0), frames)


def test_overlay_resizes_and_scales_raw_attributions(frames):
    attribution = np.zeros((3, 6, 4, 5), dtype=np.float32)  # (C, T, h, w), any sign
    attribution[:, 1] = -5.0
    out = viz.overlay(frames, attribution)
    assert out.shape == frames.shape
    np.testing.assert_array_equal(out[0], frames[0])
    assert not np.array_equal(out[1], frames[1])
    with pytest.raises(ValueError, match="T=6"):
        viz.overlay(frames, np.zeros((5, 16, 20)))
    with pytest.raises(ValueError, match="alpha"):
        viz.overlay(frames, np.zeros((6, 16, 20)), alpha=2)


def test_attribution_strip_and_curves(frames, tmp_path):
    heat = np.random.default_rng(1).random((6, 16, 20))
    fig = viz.attribution_strip(frames, heat, num_frames=4, title="strip")
    assert isinstance(fig, Figure) and len(fig.axes) == 9  # 8 pictures and the colourbar
    assert "attribution" in fig.axes[-1].get_ylabel()
    viz.save_figure(fig, tmp_path / "strip.png")
    curves = {"i3d": np.full(6, 1 / 6), "xception": (np.array([1.0, 4.0]), np.array([0.3, 0.7]))}
    fig = viz.temporal_importance_plot(curves, marker=2)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines[:2]] == ["i3d", "xception"]
    np.testing.assert_allclose(lines[1].get_xdata(), [1, 4])
    # one scale: an even spread reads 1 whatever the number of frames
    np.testing.assert_allclose(lines[0].get_ydata(), 1.0)
    np.testing.assert_allclose(lines[1].get_ydata(), [0.6, 1.4])
    raw = viz.temporal_importance_plot(curves, relative=False).axes[0].get_lines()
    np.testing.assert_allclose(raw[1].get_ydata(), [0.3, 0.7])
    viz.save_figure(fig, tmp_path / "curves.png")
    with pytest.raises(ValueError, match="differ"):
        viz.temporal_importance_plot({"bad": (np.arange(3), np.ones(2))})


def test_stream_share_and_confusion_figures(tmp_path):
    fig = viz.stream_share_figure({"i3d": 0.25, "xception": 0.75})
    widths = sorted(p.get_width() for p in fig.axes[0].patches)
    np.testing.assert_allclose(widths, [25, 75])
    confusion = np.array([[3, 1, 0], [0, 0, 0], [2, 0, 2]])
    fig = viz.confusion_figure(confusion, ["a", "b", "c"], normalize=True)
    image = fig.axes[0].get_images()[0].get_array()
    np.testing.assert_allclose(image[0], [0.75, 0.25, 0.0])
    assert np.isnan(np.asarray(image.filled(np.nan))[1]).all()  # no samples: empty row
    viz.save_figure(fig, tmp_path / "confusion.png")
    raw = viz.confusion_figure(confusion, ["a", "b", "c"], normalize=False)
    np.testing.assert_allclose(raw.axes[0].get_images()[0].get_array(), confusion)
    with pytest.raises(ValueError, match="3 class names"):
        viz.confusion_figure(np.zeros((2, 2)), ["a", "b", "c"])


def test_params_accuracy_figure(tmp_path):
    rows = [
        ModelRow("I3D", "i3d", "", 12_697_264, 108.0),
        ModelRow(
            "Fusion",
            "i3d_xception_fusion",
            "",
            35_000_000,
            200.0,
            poster_top1=Claim("87.5%", number=87.5),
        ),
        ModelRow("C3D", "c3d", "", 78_000_000, 77.0),
    ]
    fig = viz.params_accuracy_figure(rows, {"I3D": 0.8})
    points = [c.get_offsets()[0].tolist() for c in fig.axes[0].collections]
    assert points == [[12_697_264, 80.0], [35_000_000, 87.5]]
    viz.save_figure(fig, tmp_path / "params.png")


def test_animation_works_headless(frames):
    anim = viz.animate(frames, np.random.default_rng(2).random((6, 16, 20)), fps=4, title="clip")
    assert isinstance(anim, FuncAnimation)
    html = viz.to_jshtml(anim)
    assert "<script" in html and html.count("data:image/png;base64") == len(frames)
    with pytest.raises(ValueError, match="fps"):
        viz.animate(frames, fps=0)


def test_relative_importance_puts_curves_on_one_scale():
    sixteen = np.full(16, 1 / 16)
    eight = np.full(8, 1 / 8)
    np.testing.assert_allclose(viz.relative_importance(sixteen), viz.relative_importance(eight)[0])
    np.testing.assert_allclose(viz.relative_importance([0.0, 0.0]), [0.0, 0.0])


def test_training_curves_plots_loss_and_accuracy_per_epoch(tmp_path):
    from hartutor.train import EpochRecord

    history = [
        EpochRecord(
            epoch=1, train_loss=2.0, train_top1=0.2, lr=1e-3, val={"top1": 0.3, "loss": 1.9}
        ),
        EpochRecord(
            epoch=2, train_loss=1.5, train_top1=0.4, lr=1e-3, val={"top1": 0.5, "loss": 1.6}
        ),
    ]
    fig = viz.training_curves(history)
    loss_ax, top1_ax = fig.axes
    np.testing.assert_allclose(loss_ax.get_lines()[0].get_ydata(), [2.0, 1.5])
    np.testing.assert_allclose(loss_ax.get_lines()[1].get_ydata(), [1.9, 1.6])
    np.testing.assert_allclose(top1_ax.get_lines()[1].get_ydata(), [0.3, 0.5])
    viz.save_figure(fig, tmp_path / "curves.png")
    with pytest.raises(ValueError, match="history"):
        viz.training_curves([])
