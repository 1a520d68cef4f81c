"""``hartutor demo``: runs offline on the embedded default, prints per-stream and fused top-3."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hartutor import demo
from hartutor.models import build_model
from hartutor.synth import CLASS_NAMES
from hartutor.train import save_checkpoint


@pytest.fixture()
def fusion_checkpoint(tmp_path: Path, monkeypatch) -> Path:
    """A tiny fusion with random weights standing in for the shipped one (fast, offline)."""
    torch.manual_seed(0)
    kwargs = {"preset": "tiny", "num_classes": len(CLASS_NAMES)}
    model = build_model("i3d_xception_fusion", **kwargs)
    path = save_checkpoint(
        tmp_path / "fusion.pt",
        {
            "state_dict": model.state_dict(),
            "model": {"name": "i3d_xception_fusion", "kwargs": kwargs},
            "class_names": list(CLASS_NAMES),
        },
    )
    monkeypatch.setattr(demo, "shipped_checkpoint", lambda name: path)
    return path


def test_demo_on_synthetic_clips_reports_every_stream_and_the_fusion(fusion_checkpoint, tmp_path):
    result = demo.run_demo(num_clips=4, seed=3, out=tmp_path / "demo.png")
    assert result.mode == "tiny" and len(result.clips) == 4
    assert [c.true_label for c in result.clips] == list(demo.DEMO_CLASSES[:4])
    # the reversal pair shares its seed: the same frames, reversed
    assert np.array_equal(result.clips[1].frames, result.clips[0].frames[::-1])
    for clip in result.clips:
        assert [p.scorer for p in clip.predictions] == ["i3d", "xception", "fused"]
        for prediction in clip.predictions:
            assert len(prediction.labels) == 3 and set(prediction.labels) <= set(CLASS_NAMES)
            assert prediction.probabilities == sorted(prediction.probabilities, reverse=True)
    text = demo.format_result(result)
    assert "(true: sit_down)" in text and "fused top-1 on these clips" in text
    assert result.figure is not None and result.figure.read_bytes()[:4] == b"\x89PNG"


def test_fused_probabilities_are_the_mean_of_the_streams(fusion_checkpoint):
    result = demo.run_demo(num_clips=1, out=None, top=len(CLASS_NAMES))
    by_scorer = {
        p.scorer: dict(zip(p.labels, p.probabilities, strict=True))
        for p in result.clips[0].predictions
    }
    for name in CLASS_NAMES:
        expected = (by_scorer["i3d"][name] + by_scorer["xception"][name]) / 2
        assert by_scorer["fused"][name] == pytest.approx(expected, abs=1e-6)


def test_real_video_without_cached_weights_falls_back_and_says_how(
    fusion_checkpoint, fixture_videos: Path, tmp_path: Path
):
    result = demo.run_demo(video=fixture_videos / "v_BaseballPitch_g01_c01.avi", out=None)
    assert result.mode == "tiny" and result.clips[0].true_label is None
    assert any("hartutor weights download" in note for note in result.notes)


def test_missing_shipped_checkpoint_is_a_clear_error(monkeypatch, tmp_path):
    from hartutor.errors import WeightsError

    monkeypatch.setattr(demo, "FUSION_CHECKPOINT", "no_such_checkpoint.pt")
    with pytest.raises(WeightsError, match=r"no_such_checkpoint\.pt"):
        demo.run_demo(out=None)
