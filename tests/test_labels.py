"""Label sets, label files and the UCF101 -> Kinetics mapping and scoring."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from hartutor import labels
from hartutor.errors import DataError, WeightsError
from hartutor.labels import (
    UCF101_TO_KINETICS400,
    UCF101_TO_KINETICS600,
    load_label_file,
    ucf101_topk_from_kinetics,
)
from hartutor.weights.registry import ASSETS


@pytest.fixture(scope="module")
def k400_file(fixtures_dir: Path) -> list[str]:
    return load_label_file(fixtures_dir / "labels" / "kinetics400.txt")


@pytest.fixture(scope="module")
def k600_file(fixtures_dir: Path) -> list[str]:
    return load_label_file(fixtures_dir / "labels" / "kinetics600.txt")


def test_ucf101_names() -> None:
    names = labels.ucf101()
    assert len(names) == 101 and len(set(names)) == 101
    assert names[0] == "ApplyEyeMakeup" and names[-1] == "YoYo"
    assert names.index("CricketShot") == 23  # classInd.txt line "24 CricketShot"
    assert {"HandstandPushups", "Skijet", "TaiChi", "PlayingDaf"} <= set(names)
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", n) for n in names)


def test_fixture_clip_classes_are_ucf101_classes(fixture_videos: Path) -> None:
    classes = {
        m.group(1)
        for p in fixture_videos.iterdir()
        if (m := re.match(r"v_([A-Za-z]+)_g\d+_c\d+", p.name))
    }
    assert classes == {"ApplyEyeMakeup", "BaseballPitch", "CricketShot"}
    assert classes <= set(labels.ucf101())


def test_kinetics400_is_deepminds_label_map(k400_file: list[str]) -> None:
    assert len(k400_file) == 400
    assert labels.kinetics400() == k400_file  # torchvision's list, same order


def test_label_files_are_declared_in_labels_without_an_import_cycle() -> None:
    """The label files live in hartutor.labels (ASSETS, their old name, still works); labels
    imports no registry and the registry imports labels only inside a function."""
    import ast

    import hartutor.weights
    import hartutor.weights.registry as registry

    assert ASSETS is labels.LABEL_FILES is hartutor.weights.ASSETS
    assert set(ASSETS) == {"kinetics400_label_map", "kinetics600_label_map"}

    def module_imports(path: str) -> set[str]:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
        return {n.module or "" for n in tree.body if isinstance(n, ast.ImportFrom)}

    assert "hartutor.weights.registry" not in module_imports(labels.__file__)
    assert not any(m.startswith("hartutor.labels") for m in module_imports(registry.__file__))


def test_kinetics600_from_hand_placed_file(fixtures_dir: Path, k600_file: list[str]) -> None:
    remote = ASSETS["kinetics600_label_map"]
    with pytest.raises(WeightsError) as info:
        labels.kinetics600(download=False)
    assert str(remote.cache_path()) in str(info.value) and remote.url in str(info.value)
    remote.cache_path().parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(fixtures_dir / "labels" / "kinetics600.txt", remote.cache_path())
    assert labels.kinetics600(download=False) == k600_file
    assert len(k600_file) == 600 and labels.load_label_set("kinetics600") == k600_file


def test_kinetics600_label_asset_hash(fixtures_dir: Path) -> None:
    from hartutor.weights import sha256sum

    for key, name in (
        ("kinetics400_label_map", "kinetics400.txt"),
        ("kinetics600_label_map", "kinetics600.txt"),
    ):
        path = fixtures_dir / "labels" / name
        assert sha256sum(path) == ASSETS[key].sha256
        assert path.stat().st_size == ASSETS[key].size


def test_imagenet_names() -> None:
    descriptions = labels.imagenet()
    synsets = labels.imagenet(kind="synset")
    assert len(descriptions) == len(synsets) == 1000 == len(set(synsets))
    assert synsets[0] == "n01440764" and descriptions[0].startswith("tench")
    assert all(re.fullmatch(r"n\d{8}", s) for s in synsets)


def test_load_label_file_layouts_and_errors(tmp_path: Path) -> None:
    indexed = tmp_path / "classInd.txt"
    indexed.write_text("2 Archery\n1 ApplyEyeMakeup\n3 BabyCrawling\n\n")
    assert load_label_file(indexed) == ["ApplyEyeMakeup", "Archery", "BabyCrawling"]
    plain = tmp_path / "plain.txt"
    plain.write_text("\ufeffabseiling\r\nair drumming\r\n")
    assert load_label_file(plain) == ["abseiling", "air drumming"]
    for text, message in (
        ("a\nb\na\n", "repeats"),
        ("1 a\n3 b\n", "without gaps"),
        ("\n\n", "empty"),
    ):
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(DataError, match=message):
            load_label_file(bad)
    with pytest.raises(DataError, match="does not exist"):
        load_label_file(tmp_path / "nope.txt")


def test_mapping_names_exist_in_label_lists(k400_file: list[str], k600_file: list[str]) -> None:
    assert list(UCF101_TO_KINETICS400) == labels.ucf101() == list(UCF101_TO_KINETICS600)
    for mapping, names in ((UCF101_TO_KINETICS400, k400_file), (UCF101_TO_KINETICS600, k600_file)):
        for ucf, kinetics in mapping.items():
            assert set(kinetics) <= set(names), (ucf, set(kinetics) - set(names))
    assert UCF101_TO_KINETICS400["CricketShot"] == ("playing cricket",)
    assert UCF101_TO_KINETICS600["Kayaking"] == ("canoeing or kayaking",)
    assert UCF101_TO_KINETICS400["YoYo"] == () == UCF101_TO_KINETICS600["PommelHorse"]
    mapped_400 = sum(bool(v) for v in UCF101_TO_KINETICS400.values())
    mapped_600 = sum(bool(v) for v in UCF101_TO_KINETICS600.values())
    assert 0 < mapped_400 < mapped_600 < 101  # K600 covers more; some have no equivalent


def _probs_with_rank(
    k400: list[str], target: str, rank: int, rng: np.random.Generator
) -> np.ndarray:
    """A probability row where class ``target`` sits at 0-based ``rank``."""
    row = rng.random(len(k400)) * 0.5
    others = [i for i in np.argsort(-row) if k400[i] != target]
    order = [*others[:rank], k400.index(target), *others[rank:]]
    sorted_values = np.sort(row)[::-1]
    out = np.empty_like(row)
    out[order] = sorted_values
    return out / out.sum()


def test_topk_scoring_on_synthetic_probabilities(k400_file: list[str]) -> None:
    rng = np.random.default_rng(0)
    clips = [
        ("CricketShot", "playing cricket", 0),  # top-1 hit
        ("Archery", "archery", 3),  # top-5 hit only
        ("Bowling", "bowling", 7),  # miss at both
        ("Biking", "riding mountain bike", 1),  # second mapped class counts too
        ("YoYo", "abseiling", 0),  # no Kinetics equivalent: not scorable
    ]
    probs = np.stack([_probs_with_rank(k400_file, name, r, rng) for _, name, r in clips])
    ucf_names = [ucf for ucf, _, _ in clips]
    score = ucf101_topk_from_kinetics(
        probs, ucf_names, label_set="kinetics400", kinetics_labels=k400_file
    )
    assert score.num_clips == 5 and score.num_scorable_clips == 4
    assert score.num_classes_present == 5 and score.num_classes_scorable == 4
    assert score.correct == {1: 1, 5: 3}
    assert score.accuracy == {1: 0.25, 5: 0.75}
    by_index = ucf101_topk_from_kinetics(
        probs,
        [labels.ucf101().index(n) for n in ucf_names],
        label_set="kinetics400",
        kinetics_labels=k400_file,
        k=(5, 1, 10),
    )
    assert by_index.correct == {1: 1, 5: 3, 10: 4}
    assert "top-1 25.0%" in str(score) and "4/5 clips" in str(score)


def test_topk_scoring_uses_kinetics600_list_and_checks_shapes(k600_file: list[str]) -> None:
    probs = np.zeros((2, 600))
    probs[0, k600_file.index("playing ping pong")] = 1.0  # only in Kinetics-600
    probs[1, k600_file.index("abseiling")] = 1.0
    score = ucf101_topk_from_kinetics(
        probs, ["TableTennisShot", "Archery"], k=(1,), kinetics_labels=k600_file
    )
    assert score.correct == {1: 1} and score.num_scorable_clips == 2
    with pytest.raises(ValueError, match="columns"):
        ucf101_topk_from_kinetics(np.zeros((1, 400)), [0], kinetics_labels=k600_file)
    with pytest.raises(ValueError, match="not UCF101"):
        ucf101_topk_from_kinetics(probs, ["TableTennis", "Archery"], kinetics_labels=k600_file)
    empty = ucf101_topk_from_kinetics(probs[:1], ["YoYo"], kinetics_labels=k600_file)
    assert empty.num_scorable_clips == 0 and np.isnan(empty.accuracy[1])
