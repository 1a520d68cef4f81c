"""``table1.kinetics_on_samples``: the Kinetics-400 I3D on the course's real clips, exercised
on stand-in weights (the real format, random values). Random weights say nothing about
accuracy: these tests check the path, the shapes, the scoring and the stand-in flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from hartutor.errors import WeightsError
from hartutor.labels import kinetics_mapping
from hartutor.pretrained_explain import PRETRAINED_STREAMS
from hartutor.table1 import (
    SAMPLE_CLIPS,
    kinetics_on_samples,
    kinetics_samples_missing,
)


def test_without_the_weights_it_says_how_to_get_them():
    line = kinetics_samples_missing()
    assert line is not None and f"hartutor weights download {PRETRAINED_STREAMS['i3d']}" in line
    with pytest.raises(WeightsError, match="hartutor weights download"):
        kinetics_on_samples()


@pytest.fixture
def cached(kinetics_i3d_standin_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARTUTOR_CACHE", str(kinetics_i3d_standin_cache))
    return kinetics_i3d_standin_cache


def test_top5_per_clip_and_table1_rows_on_standin_weights(cached: Path, fixture_videos: Path):
    from hartutor.weights import get_weights

    assert kinetics_samples_missing() is None
    entry = get_weights(PRETRAINED_STREAMS["i3d"])
    result = kinetics_on_samples()
    assert result.standin and "STAND-IN WEIGHTS" in result.summary()
    assert "random" in result.summary()
    assert result.weights == entry.name and result.label_set == "kinetics400"
    assert result.missing == ()
    assert [c.video for c in result.clips] == [f for f, _, _ in SAMPLE_CLIPS]
    assert result.side == entry.preprocessing.size[0]
    assert result.num_frames < entry.preprocessing.num_frames  # fast mode's short window
    labels = entry.categories()
    mapping = kinetics_mapping("kinetics400")
    for clip, (_, true_set, true) in zip(result.clips, SAMPLE_CLIPS, strict=True):
        assert len(clip.top) == 5 and all(label in labels for label, _ in clip.top)
        probs = [p for _, p in clip.top]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9
        expected = mapping[true] if true_set == "UCF101" else (true,)
        assert clip.equivalents == tuple(expected)
        shown = {label for label, _ in clip.top}
        if not clip.equivalents:
            assert clip.rank == -1 and clip.hits() == "n/a"
        else:  # the rank agrees with the top-5 shown
            assert (clip.rank < 5) == bool(shown & set(clip.equivalents))
            assert (clip.rank == 0) == (clip.top[0][0] in clip.equivalents)
    # the Table 1 rows: the UCF101 clips, each predicted label the clip's top-1
    table = result.table1
    assert table is not None
    ucf = [c for c in result.clips if c.true_set == "UCF101"]
    assert [r.true for r in table.rows] == [c.true for c in ucf]
    assert [r.video for r in table.rows] == [Path(c.video).stem.removesuffix("_rgb") for c in ucf]
    for row, clip in zip(table.rows, ucf, strict=True):
        assert row.predicted == clip.top[0][0]
        assert row.probability == pytest.approx(100 * clip.top[0][1], abs=1e-3)
        assert row.topk == clip.hits()
    scorable = [c for c in ucf if c.equivalents]
    assert table.score.num_scorable_clips == len(scorable)
    assert table.score.correct[1] == sum(c.rank == 0 for c in scorable)
    assert table.score.correct[5] == sum(0 <= c.rank < 5 for c in scorable)
    text = result.markdown()
    assert text.count("| 1 |") == len(SAMPLE_CLIPS)


def test_frames_are_a_window_centred_on_the_clip(
    cached: Path, fixture_videos: Path, monkeypatch: pytest.MonkeyPatch
):
    import hartutor.video as video_module
    from hartutor import table1

    calls: list[dict] = []
    read = video_module.read_video

    def recording(path, *args, **kwargs):
        calls.append({"path": Path(path).name, **kwargs})
        return read(path, *args, **kwargs)

    monkeypatch.setattr(video_module, "read_video", recording)
    clips = [c for c in SAMPLE_CLIPS if c[0].endswith(".gif")]
    result = table1.kinetics_on_samples(clips=clips, num_frames=16, top=3)
    assert len(result.clips) == 1 and len(result.clips[0].top) == 3
    (call,) = calls
    info = video_module.probe_video(fixture_videos / clips[0][0])
    indices = call["indices"]
    assert len(indices) == 16 and indices == sorted(indices)
    middle = (indices[0] + indices[-1]) / 2
    assert abs(middle - (info.num_frames - 1) / 2) <= 1  # centred on the clip


def test_clips_missing_from_the_cache_are_named(cached: Path, monkeypatch: pytest.MonkeyPatch):
    from hartutor import course
    from hartutor.errors import DataError

    monkeypatch.setattr(course, "sample_clip", lambda name, start=None: None)
    with pytest.raises(DataError, match="hartutor samples fetch"):
        kinetics_on_samples()
