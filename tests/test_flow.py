"""Optical flow: estimators recover known motion, the papers' encoding, and the disk cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hartutor import flow as flowmod
from hartutor.flow import (
    available_methods,
    decode_flow,
    encode_flow,
    end_point_error,
    estimate_flow,
    flow_for_video,
)


def _translating_texture(shift: tuple[int, int], frames: int = 4, size: int = 64) -> np.ndarray:
    """A smooth random texture moving by ``shift`` (dx, dy) pixels per frame (periodic)."""
    import cv2

    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (size, size), dtype=np.uint8)
    big = cv2.GaussianBlur(big, (0, 0), 2.0)
    big = cv2.normalize(big, None, 0, 255, cv2.NORM_MINMAX)
    clip = [np.roll(big, (t * shift[1], t * shift[0]), axis=(0, 1)) for t in range(frames)]
    return np.repeat(np.stack(clip)[..., None], 3, axis=-1)


@pytest.mark.parametrize("method", ["tvl1", "farneback", "dis"])
def test_estimators_recover_a_translation(method: str):
    if method not in available_methods():
        pytest.skip(f"{method} is not available in this OpenCV build")
    frames = _translating_texture((2, -1))
    flow = estimate_flow(frames, method)
    assert flow.shape == (2, 3, 64, 64) and flow.dtype == np.float32
    truth = np.empty_like(flow)
    truth[0], truth[1] = 2.0, -1.0
    inner = np.zeros((64, 64), dtype=bool)
    inner[8:-8, 8:-8] = True  # borders wrap around: judge the interior
    assert end_point_error(flow, truth, inner) < 0.3


def test_tvl1_is_available_here():
    assert "tvl1" in available_methods(), "opencv-contrib-python-headless provides cv2.optflow"


def test_encoding_clips_and_scales_like_the_papers():
    flow = np.array([[-40.0, -20.0, -10.0, 0.0, 10.0, 20.0, 40.0]], dtype=np.float32)
    encoded = encode_flow(flow)
    assert encoded.tolist() == [[-1.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0]]
    assert np.allclose(decode_flow(encoded)[0, 2:5], flow[0, 2:5])


def test_end_point_error_by_hand():
    a = np.zeros((2, 1, 2, 2), dtype=np.float32)
    b = a.copy()
    b[0, 0, 0, 0], b[1, 0, 0, 0] = 3.0, 4.0
    assert end_point_error(a, b) == pytest.approx(5.0 / 4)
    with pytest.raises(ValueError, match="shapes differ"):
        end_point_error(a, b[:, :, :1])


def test_bad_frames_are_rejected():
    with pytest.raises(ValueError, match="uint8"):
        estimate_flow(np.zeros((3, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="at least 2"):
        estimate_flow(np.zeros((1, 8, 8, 3), dtype=np.uint8))


def test_flow_of_a_video_is_cached_and_invalidated(tmp_path: Path, monkeypatch):
    from hartutor.video import write_video

    video = write_video(tmp_path / "clip.mp4", _translating_texture((1, 0), frames=6), fps=25)
    calls = {"n": 0}
    real = flowmod.estimate_flow

    def counting(frames, method="tvl1"):
        calls["n"] += 1
        return real(frames, method)

    monkeypatch.setattr(flowmod, "estimate_flow", counting)
    first = flow_for_video(video, method="dis", cache_root=tmp_path / "cache")
    second = flow_for_video(video, method="dis", cache_root=tmp_path / "cache")
    assert calls["n"] == 1
    np.testing.assert_allclose(first, second, atol=0.02)  # float16 storage
    flow_for_video(video, method="farneback", cache_root=tmp_path / "cache")
    assert calls["n"] == 2  # other parameters, other entry
    write_video(video, _translating_texture((0, 1), frames=6), fps=25)
    flow_for_video(video, method="dis", cache_root=tmp_path / "cache")
    assert calls["n"] == 3  # the file changed
    entries = list((tmp_path / "cache").iterdir())
    assert len(entries) == 3 and all(p.suffix == ".npy" for p in entries)


def test_estimators_are_scored_against_the_exact_flow():
    from hartutor.flow import compare_to_truth, scores_markdown

    scores = compare_to_truth(["dis", "farneback"], num_clips=2, num_frames=5)
    assert [s.method for s in scores] == ["dis", "farneback"]
    for s in scores:
        assert s.pairs == 8 and s.frames_per_second > 0
        assert 0 < s.epe < 5 and s.epe_figure > 0  # estimated, so never exact
    assert "| dis |" in scores_markdown(scores)


def test_zero_flow_is_the_baseline_row():
    from hartutor.flow import compare_to_truth, estimate_flow, scores_markdown

    frames = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    assert not estimate_flow(frames, "zero").any()
    scores = compare_to_truth(["zero"], num_clips=1, num_frames=4)
    # zero flow's error is the mean speed of the true flow: positive on moving clips
    assert scores[0].epe > 0 and "baseline" in scores_markdown(scores)


def test_estimated_flow_transform_replaces_the_exact_flow():
    import torch

    from hartutor.flow import estimated_flow_transform
    from hartutor.synth import SyntheticActions

    data = SyntheticActions(2, seed=0, split="val", with_flow=True, num_frames=6, size=32)
    batch = {key: [data[i][key] for i in range(2)] for key in ("action", "seed")}
    batch["flow"] = torch.stack([data[i]["flow"] for i in range(2)])
    zero = estimated_flow_transform(data, "zero")(batch)
    assert zero["flow"].shape == batch["flow"].shape and not zero["flow"].any()
    dis = estimated_flow_transform(data, "dis")(batch)["flow"]
    assert not torch.equal(dis, batch["flow"]) and dis.abs().sum() > 0
