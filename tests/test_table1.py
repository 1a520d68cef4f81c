"""The poster's Table 1 for any clips: the poster's rows, the scorer, full mode on the stand-in
UCF101 with stand-in Kinetics weights (random values: structure, not accuracy), fast mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hartutor import standins
from hartutor.cli import main
from hartutor.errors import DataError
from hartutor.labels import UCF101_CLASSES, kinetics400, kinetics_mapping
from hartutor.table1 import (
    NOT_SCORABLE,
    POSTER_TABLE1,
    kinetics_table1,
    poster_row_for,
    poster_table1_markdown,
    table1_from_scores,
    world_table1,
)
from hartutor.weights import mirror as mirror_module

K400_WEIGHTS = "i3d_rgb_kinetics400_imagenet_piergiaj"  # its labels need no download


def test_poster_rows_are_the_standin_videos_whatever_the_case_of_c() -> None:
    keys = [row.key for row in POSTER_TABLE1]
    assert keys == [f"v_{c}_g{g:02d}_c{k:02d}" for c, g, k in standins.POSTER_TABLE1_VIDEOS]
    crawling = poster_row_for("UCF-101/BabyCrawling/v_BabyCrawling_g18_c06.avi")
    assert crawling is not None and crawling.number == 3
    assert crawling.video == "v_BabyCrawling_g18_C06"  # as the poster prints it
    assert poster_row_for("v_BabyCrawling_g18_c07") is None
    assert str(POSTER_TABLE1[1]) == "Playing squash or racketball, 71.2, No/yes"
    printed = poster_table1_markdown().splitlines()
    assert printed[2] == "| 1. | v_Bowling_g22_c04 | Bowling | 99.9 (Highest) | Yes/yes |"
    assert len(printed) == 2 + len(POSTER_TABLE1)


def test_table_from_constructed_scores_ranks_through_the_mapping() -> None:
    names = kinetics400()
    mapping = kinetics_mapping("kinetics400")
    videos = ["v_Bowling_g22_c04", "v_Typing_g01_c01", "v_YoYo_g01_c01"]
    true = ["Bowling", "Typing", "YoYo"]  # YoYo has no Kinetics equivalent
    assert mapping["Bowling"] and not mapping["YoYo"]
    logits = np.zeros((3, len(names)), dtype=np.float32)
    logits[0, names.index(mapping["Bowling"][0])] = 10.0  # first: top-1
    for rank, decoy in enumerate(["abseiling", "archery", "arm wrestling"]):
        logits[1, names.index(decoy)] = 9.0 - rank
    logits[1, names.index(mapping["Typing"][0])] = 5.0  # fourth: top-5 only
    table = table1_from_scores(
        logits,
        videos,
        true,
        source_labels=names,
        mapping=mapping,
        target_classes=UCF101_CLASSES,
        label_set="kinetics400",
    )
    assert [r.topk for r in table.rows] == ["Yes/Yes", "No/Yes", NOT_SCORABLE]
    assert table.rows[0].predicted == mapping["Bowling"][0]
    assert table.rows[0].probability == pytest.approx(
        100 * np.exp(10) / (np.exp(10) + len(names) - 1), rel=1e-6
    )
    assert table.rows[0].poster is POSTER_TABLE1[0] and table.rows[1].poster is None
    assert table.score.correct == {1: 1, 5: 2} and table.score.num_scorable_clips == 2
    text = table.markdown()
    assert "| 1. | v_Bowling_g22_c04 | Bowling |" in text
    assert "Bowling, 99.9 (Highest), Yes/yes |" in text  # the poster's row beside it
    with pytest.raises(DataError, match="one row of scores per video"):
        table1_from_scores(
            logits[:2],
            videos,
            true,
            source_labels=names,
            mapping=mapping,
            target_classes=UCF101_CLASSES,
            label_set="kinetics400",
        )


@pytest.fixture(scope="module")
def standin_ucf101(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in UCF101: the poster's five classes, one test group of split 1, and the
    poster's five videos (two of which are in no official test split)."""
    root = tmp_path_factory.mktemp("ucf101")
    return standins.make_ucf101(root, groups=(2,), num_frames=10)


@pytest.fixture()
def standin_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    mirror = tmp_path / "mirror"
    standins.write_mirror(mirror, weights=[K400_WEIGHTS], seed=3)
    monkeypatch.setenv(mirror_module.MIRROR_VARIABLE, mirror.as_uri())
    mirror_module.clear_cache()
    yield K400_WEIGHTS
    mirror_module.clear_cache()


def test_full_mode_scores_the_posters_five_videos_and_the_test_split(
    standin_ucf101: Path, standin_weights: str
) -> None:
    poster = kinetics_table1(
        standin_ucf101, weights=standin_weights, num_frames=8, download=True, batch_size=5
    )
    assert [r.video for r in poster.rows] == [row.key for row in POSTER_TABLE1]
    assert [r.true for r in poster.rows] == [c for c, _, _ in standins.POSTER_TABLE1_VIDEOS]
    assert [r.poster for r in poster.rows] == list(POSTER_TABLE1)
    names = set(kinetics400())
    for row in poster.rows:  # every video scored (the values are random: not their accuracy)
        assert row.predicted in names and 0 < row.probability <= 100
        assert row.topk != NOT_SCORABLE  # all five classes map to Kinetics-400
    assert poster.score.num_clips == 5 and poster.source == standin_weights
    assert "| 3. | v_BabyCrawling_g18_c06 | BabyCrawling |" in poster.markdown()

    from hartutor.ucf101 import read_split

    test_videos = read_split(standin_ucf101, 1, "test")
    split = kinetics_table1(
        standin_ucf101, weights=standin_weights, videos="test", num_frames=8, batch_size=5
    )
    assert sorted(r.video for r in split.rows) == sorted(Path(e.relpath).stem for e in test_videos)
    assert split.score.num_clips == len(test_videos)
    assert len(split.compared()) == 1  # CricketBowling g02 c01 is in split 1's test list
    named = kinetics_table1(
        standin_ucf101,
        weights=standin_weights,
        videos=["v_HammerThrow_g23_C05"],
        num_frames=8,
    )
    assert [r.video for r in named.rows] == ["v_HammerThrow_g23_c05"]
    assert named.rows[0].probability == pytest.approx(poster.rows[3].probability, rel=1e-4)
    with pytest.raises(DataError, match="not in split 1"):
        kinetics_table1(standin_ucf101, weights=standin_weights, videos=["v_YoYo_g01_c01"])


def test_full_mode_refuses_what_is_not_table1(tmp_path: Path, standin_ucf101: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        kinetics_table1(tmp_path / "nowhere")
    with pytest.raises(DataError, match="not Kinetics"):
        kinetics_table1(standin_ucf101, weights="xception_imagenet1k_tf")


def test_fast_mode_scores_the_world_with_the_shipped_source_stream() -> None:
    from hartutor.synth.world import TARGET_CLASSES, VIDEO_SOURCE_CLASSES

    table = world_table1(clips_per_class=1)
    assert [r.true for r in table.rows] == list(TARGET_CLASSES)
    assert all(r.predicted in VIDEO_SOURCE_CLASSES for r in table.rows)
    assert [r.true for r in table.rows if r.topk == NOT_SCORABLE] == ["phone_call"]
    assert table.compared() == []  # the poster scored no synthetic clip
    assert table.score.num_clips == 13 and table.score.num_scorable_clips == 12


def test_cli_table1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--threads", "1", "table1", "--world"]) == 0
    out = capsys.readouterr().out
    assert "| 1. | v_Walk_c01 | walk |" in out and "top-1" in out
    assert main(["table1", str(tmp_path / "nowhere"), "--no-download"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    assert main(["table1"]) != 0
    assert "ROOT" in capsys.readouterr().err
