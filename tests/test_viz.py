"""Flow colour coding, contact sheets, atomic figure saving and ``show``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import hartutor  # noqa: F401  (compatibility shim first)
from hartutor.errors import VideoDecodeError
from hartutor.synth import CLASS_NAMES, render_clip
from hartutor.viz import COLORWHEEL, contact_sheet, flow_to_color, save_figure, show

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _unit_flow(u: float, v: float) -> np.ndarray:
    return np.array([u, v], dtype=np.float32).reshape(2, 1, 1)


def test_colorwheel_is_the_middlebury_wheel():
    assert COLORWHEEL.shape == (55, 3) and COLORWHEEL.dtype == np.uint8
    # Six hue ramps: red, yellow, green, cyan, blue, magenta at the ramp starts (15, 6, 4, 11,
    # 13, 6 steps).
    starts = np.cumsum([0, 15, 6, 4, 11, 13])
    expected = [(255, 0, 0), (255, 255, 0), (0, 255, 0), (0, 255, 255), (0, 0, 255), (255, 0, 255)]
    assert [tuple(COLORWHEEL[i]) for i in starts] == expected
    # A closed, continuous circle: no jump between neighbours larger than one ramp step.
    steps = np.abs(np.diff(np.vstack([COLORWHEEL, COLORWHEEL[:1]]).astype(int), axis=0))
    assert steps.max() <= 64


def test_flow_to_color_directions_and_speeds():
    # Middlebury convention (y down): right is red, left cyan-blue, down yellow, up blue-violet.
    right = flow_to_color(_unit_flow(1, 0), max_flow=1.0)[0, 0]
    left = flow_to_color(_unit_flow(-1, 0), max_flow=1.0)[0, 0]
    down = flow_to_color(_unit_flow(0, 1), max_flow=1.0)[0, 0]
    up = flow_to_color(_unit_flow(0, -1), max_flow=1.0)[0, 0]
    assert right[0] > 250 and right[1] < 10 and right[2] < 10
    assert left[0] < 10 and left[1] > 150 and left[2] > 250
    assert down[0] > 250 and down[1] > 180 and down[2] < 10
    assert up[2] > 250 and up[0] < 120 and up[1] < 10
    # Still is white; half speed is halfway to white; beyond max_flow is darkened.
    assert (flow_to_color(_unit_flow(0, 0), max_flow=1.0) == 255).all()
    half = flow_to_color(_unit_flow(0.5, 0), max_flow=1.0)[0, 0].astype(int)
    assert abs(half[0] - 255) <= 1 and abs(half[1] - 127) <= 2
    fast = flow_to_color(_unit_flow(2, 0), max_flow=1.0)[0, 0].astype(int)
    assert abs(fast[0] - 191) <= 1 and fast[1] == 0
    # Default scale: the largest vector in the input is full colour.
    field = np.zeros((2, 4, 4), np.float32)
    field[0, 0, 0] = 7.0
    assert tuple(flow_to_color(field)[0, 0]) == tuple(right)


def test_flow_to_color_shapes_and_errors():
    clip = render_clip("wave", 0, num_frames=5, size=24, with_flow=True)
    colors = flow_to_color(clip.flow)
    assert colors.shape == (4, 24, 24, 3) and colors.dtype == np.uint8
    assert flow_to_color(clip.flow[:, 0]).shape == (24, 24, 3)
    nan_flow = np.full((2, 2, 2), np.nan, np.float32)
    assert (flow_to_color(nan_flow) == 0).all()
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        flow_to_color(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="max_flow"):
        flow_to_color(np.zeros((2, 4, 4)), max_flow=0.0)


def test_flow_to_color_draws_torchvisions_wheel_on_its_default_scale():
    """Without max_flow the picture is torchvision's flow_to_image (same Middlebury wheel, same
    normalisation by the largest speed), up to one level of float32 rounding."""
    import torch
    from torchvision.utils import flow_to_image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[-16:16, -24:24].astype(np.float32)
    clip = render_clip("wave", 0, num_frames=5, size=24, with_flow=True)
    flows = [
        rng.normal(size=(2, 32, 48)).astype(np.float32) * 3,
        np.stack([-y, x]),
        clip.flow[:, 1],
    ]
    for flow in flows:
        ours = flow_to_color(flow).astype(int)
        theirs = flow_to_image(torch.from_numpy(np.asarray(flow, np.float32))).permute(1, 2, 0)
        difference = np.abs(ours - theirs.numpy().astype(int))
        assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
    video = np.asarray(clip.flow, np.float32)  # (2, T, H, W): one scale for every frame
    theirs = flow_to_image(torch.from_numpy(video).transpose(0, 1)).permute(0, 2, 3, 1).numpy()
    assert np.abs(flow_to_color(video).astype(int) - theirs.astype(int)).max() <= 1


def test_contact_sheet_layout_with_and_without_flow(tmp_path: Path):
    from matplotlib.figure import Figure

    clip = render_clip("jumping_jacks", 2, num_frames=16, size=32, with_flow=True)
    plain = contact_sheet(clip.frames, num_columns=8, title="jj")
    assert isinstance(plain, Figure)
    assert len([ax for ax in plain.axes if ax.images]) == 16
    with_flow = contact_sheet(clip.frames, flow=clip.flow, num_columns=8)
    # 16 frames + 15 flow cells (the last frame has no forward flow) + the colour-wheel key.
    assert len([ax for ax in with_flow.axes if ax.images]) == 16 + 15 + 1
    sampled = contact_sheet(torch.from_numpy(clip.frames), max_frames=5)
    titles = [ax.get_title() for ax in sampled.axes if ax.images]
    assert titles == ["t=0", "t=4", "t=8", "t=11", "t=15"]
    named = contact_sheet(clip.frames[:3], titles=["a", "b", "c"])
    assert [ax.get_title() for ax in named.axes] == ["a", "b", "c"]
    path = save_figure(with_flow, tmp_path / "sheet.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sheet.png"]  # no temporary left


def test_contact_sheet_rejects_bad_inputs():
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        contact_sheet(frames.astype(np.float32))
    with pytest.raises(ValueError, match="T-1"):
        contact_sheet(frames, flow=np.zeros((2, 4, 8, 8), np.float32))
    with pytest.raises(ValueError, match="titles"):
        contact_sheet(frames, titles=["only one"])
    with pytest.raises(ValueError, match="shaped"):
        contact_sheet(np.zeros((8, 8), np.uint8))


def test_save_figure_needs_a_suffix_and_keeps_old_file_on_failure(tmp_path: Path):
    fig = contact_sheet(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="suffix"):
        save_figure(fig, tmp_path / "sheet")
    target = tmp_path / "sheet.png"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        save_figure(fig, target, format_that_does_not_exist=True)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sheet.png"]


def test_show_renders_a_synthetic_class(tmp_path: Path):
    out = show(CLASS_NAMES[2], tmp_path / "class.png", seed=1, num_frames=6)
    assert out.read_bytes()[:8] == PNG_MAGIC
    out = show("StandUp", tmp_path / "camel.png", num_frames=4)
    assert out.is_file()


def test_show_errors_name_the_file(tmp_path: Path):
    bogus = tmp_path / "not_a_video.mp4"
    bogus.write_bytes(b"definitely not a video")
    with pytest.raises(VideoDecodeError, match=r"not_a_video\.mp4"):
        show(str(bogus), tmp_path / "x.png")
    with pytest.raises(VideoDecodeError, match="not a synthetic class name"):
        show(str(tmp_path / "missing.avi"), tmp_path / "y.png")
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


def test_show_reads_a_written_video(tmp_path: Path):
    from hartutor.video import write_video

    clip = render_clip("punch", 0, num_frames=10, size=32)
    video = write_video(tmp_path / "punch.mp4", clip.frames, 12.0)
    out = show(str(video), tmp_path / "punch.png", num_frames=6)
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_show_on_a_real_clip(fixture_videos: Path, tmp_path: Path):
    out = show(str(fixture_videos / "v_BaseballPitch_g01_c01.avi"), tmp_path / "real.png")
    assert out.stat().st_size > 1000
