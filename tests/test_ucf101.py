"""UCF101 over its official layout, tested on a miniature built from the real fixture clips."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from hartutor.errors import DataError
from hartutor.labels import ucf101 as ucf101_names
from hartutor.ucf101 import (
    UCF101,
    check_layout,
    clip_starts,
    labeled_video_paths,
    read_class_index,
    read_split,
    video_level_scores,
)

CLASSES = ("ApplyEyeMakeup", "BaseballPitch")


@pytest.fixture()
def mini_ucf(fixture_videos: Path, tmp_path: Path) -> Path:
    """Two real classes; group 1 (test in split 1) is the real clip, groups 8-9 copies (train)."""
    root = tmp_path / "UCF101"
    names = ucf101_names()
    lines = {"train": [], "test": []}
    for cls in CLASSES:
        folder = root / "UCF-101" / cls
        folder.mkdir(parents=True)
        source = fixture_videos / f"v_{cls}_g01_c01.avi"
        for group in (1, 8, 9):
            name = f"v_{cls}_g{group:02d}_c01.avi"
            shutil.copy(source, folder / name)
            label = names.index(cls) + 1
            if group == 1:
                lines["test"].append(f"{cls}/{name}")
            else:
                lines["train"].append(f"{cls}/{name} {label}")
    splits = root / "ucfTrainTestlist"
    splits.mkdir()
    (splits / "classInd.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(names, 1)))
    (splits / "trainlist01.txt").write_text("\n".join(lines["train"]) + "\n")
    (splits / "testlist01.txt").write_text("\n".join(lines["test"]) + "\n")
    return root


def test_splits_and_labels_follow_the_official_files(mini_ucf: Path):
    names = read_class_index(mini_ucf / "ucfTrainTestlist" / "classInd.txt")
    assert len(names) == 101 and names[0] == "ApplyEyeMakeup" and names[-1] == "YoYo"
    train = read_split(mini_ucf, 1, "train")
    test = read_split(mini_ucf, 1, "test")
    assert len(train) == 4 and len(test) == 2
    assert {names[e.label] for e in test} == set(CLASSES)
    assert {e.group for e in train} == {8, 9} and {e.group for e in test} == {1}
    report = check_layout(mini_ucf, expect_full=False)
    assert report.ok and report.split_sizes == {1: (4, 2)}
    full = check_layout(mini_ucf)
    assert not full.ok and any(
        "13320" in p or "13,320" in p or "expected" in p for p in full.problems
    )


def test_random_training_clips_and_uniform_test_clips(mini_ucf: Path):
    train = UCF101(mini_ucf, subset="train", num_frames=8, frame_stride=2, size=(64, 80))
    sample = train[0]
    assert sample["video"].shape == (3, 8, 64, 80) and sample["video"].dtype == torch.float32
    assert float(sample["video"].min()) >= 0.0 and float(sample["video"].max()) <= 1.0
    assert train.class_names[sample["label"]] == "ApplyEyeMakeup"
    test = UCF101(mini_ucf, subset="test", num_frames=8, size=64, clips_per_video=3)
    assert test.clip_sampling == "uniform" and len(test) == 6
    clips = [test[i] for i in range(3)]
    assert [c["clip_index"] for c in clips] == [0, 1, 2]
    assert all(c["video_index"] == 0 for c in clips)
    assert not torch.equal(clips[0]["video"], clips[2]["video"])  # different windows


def test_flow_is_estimated_on_request(mini_ucf: Path):
    data = UCF101(
        mini_ucf,
        subset="test",
        num_frames=4,
        size=32,
        crop_size=32,
        with_flow=True,
        flow_method="dis",
    )
    sample = data[0]
    assert sample["video"].shape == (3, 4, 32, 32)  # short side 32, centre crop 32x32
    assert sample["flow"].shape == (2, 3, 32, 32)


def test_pytorchvideo_reads_the_same_split(mini_ucf: Path):
    from pytorchvideo.data import LabeledVideoDataset, make_clip_sampler

    paths = labeled_video_paths(mini_ucf, 1, "test")
    dataset = LabeledVideoDataset(
        paths, make_clip_sampler("uniform", 1.0), decode_audio=False, decoder="pyav"
    )
    first = next(iter(dataset))
    assert first["video"].shape[0] == 3 and first["label"] in {0, 6}


def test_clip_starts_and_video_level_scores():
    assert clip_starts(100, 16, 3, mode="uniform") == [0, 42, 84]
    assert clip_starts(10, 16, 2, mode="uniform") == [0, 0]
    starts = clip_starts(100, 16, 50, mode="random", generator=torch.Generator().manual_seed(0))
    assert min(starts) >= 0 and max(starts) <= 84 and len(set(starts)) > 10
    scores = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.2, 0.8]])
    per_video, labels = video_level_scores(scores, torch.tensor([5, 5, 9]), torch.tensor([0, 0, 1]))
    torch.testing.assert_close(per_video, torch.tensor([[0.5, 0.5], [0.2, 0.8]]))
    assert labels.tolist() == [0, 1]
    from hartutor import metrics

    assert metrics.video_level_scores is video_level_scores  # moved to metrics; old name kept


def test_layout_errors_say_what_is_wrong(tmp_path: Path, mini_ucf: Path):
    with pytest.raises(DataError, match="does not exist"):
        UCF101(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="UCF101-style"):
        UCF101(tmp_path / "empty")
    bad = mini_ucf / "ucfTrainTestlist" / "trainlist01.txt"
    bad.write_text("NotAClass/v_NotAClass_g08_c01.avi 1\n")
    with pytest.raises(DataError, match=r"trainlist01\.txt:1"):
        read_split(mini_ucf, 1, "train")
    with pytest.raises(ValueError, match="splits 1, 2 and 3"):
        read_split(mini_ucf, 4, "train")


def test_the_synthetic_set_on_disk_reads_as_ucf101(tmp_path: Path):
    from hartutor.synth import CLASS_NAMES, generate_dataset

    root = generate_dataset(tmp_path / "synthetic", num_clips=39, seed=1, progress=False)
    train = UCF101(root, subset="train", num_frames=8, size=32)
    val = UCF101(root, subset="val", num_frames=8, size=32)
    assert len(train) + len(val) + len(UCF101(root, subset="test", size=32)) == 39
    assert [n.lower() for n in train.class_names] == [n.replace("_", "") for n in CLASS_NAMES]
    assert train[0]["video"].shape == (3, 8, 32, 32)


# --- obtaining: archives to layout -----------------------------------------------------------


def _archives(mini_ucf: Path, root: Path) -> None:
    """Official-style archives built from the miniature: a RAR stand-in (tar, which bsdtar
    detects by content) holding UCF-101/, and the splits zip holding ucfTrainTestlist/."""
    import tarfile
    import zipfile

    archives = root / "archives"
    archives.mkdir(parents=True)
    with tarfile.open(archives / "UCF101.rar", "w") as tar:
        tar.add(mini_ucf / "UCF-101", arcname="UCF-101")
    with zipfile.ZipFile(archives / "UCF101TrainTestSplits-RecognitionTask.zip", "w") as zf:
        for path in (mini_ucf / "ucfTrainTestlist").iterdir():
            zf.write(path, f"ucfTrainTestlist/{path.name}")


def test_prepare_unpacks_the_archives_and_checks_them(mini_ucf: Path, tmp_path: Path):
    import shutil

    from hartutor.ucf101 import prepare

    if shutil.which("bsdtar") is None:
        pytest.skip("bsdtar (libarchive-tools) is not installed; .ci/run installs it")
    root = tmp_path / "fresh"
    _archives(mini_ucf, root)
    report = prepare(root, download_archives=False)
    assert report.split_sizes == {1: (4, 2)} and not report.missing
    assert not report.ok  # a miniature is not the full dataset, and says so
    assert len(UCF101(root, subset="test", size=32)) == 2


def test_missing_extractor_and_archives_are_clear_errors(mini_ucf, tmp_path, monkeypatch):
    import shutil

    from hartutor import ucf101 as mod

    root = tmp_path / "fresh"
    with pytest.raises(DataError, match="not found"):
        mod.prepare(root, download_archives=False)
    _archives(mini_ucf, root)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DataError, match=r"no RAR extractor.*libarchive-tools"):
        mod.extract(root)


def test_zip_members_cannot_escape(tmp_path: Path):
    import zipfile

    from hartutor.ucf101 import _safe_extract_zip

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside.txt", "x")
    with pytest.raises(DataError, match="outside"):
        _safe_extract_zip(evil, tmp_path / "target")
    assert not (tmp_path / "outside.txt").exists()


def test_offline_download_names_url_and_destination(tmp_path: Path, monkeypatch):
    import socket

    from hartutor import ucf101 as mod
    from hartutor.errors import WeightsError

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/UCF101.rar"
    monkeypatch.setitem(mod.URLS, "videos", url)
    with pytest.raises(WeightsError) as err:
        mod.download(tmp_path / "root", progress=False)
    assert url in str(err.value) and str(tmp_path / "root" / "archives") in str(err.value)


def test_check_reports_empty_and_unreadable_listed_videos(mini_ucf: Path):
    assert check_layout(mini_ucf, expect_full=False).ok
    empty = mini_ucf / "UCF-101" / CLASSES[0] / f"v_{CLASSES[0]}_g08_c01.avi"
    empty.write_bytes(b"")
    report = check_layout(mini_ucf, expect_full=False)
    assert not report.ok
    assert any("do not open" in p and "0 bytes" in p for p in report.problems), report.problems
    garbage = mini_ucf / "UCF-101" / CLASSES[1] / f"v_{CLASSES[1]}_g09_c01.avi"
    garbage.write_bytes(b"RIFF" + bytes(4000))
    report = check_layout(mini_ucf, expect_full=False)
    assert any("2 listed videos do not open" in p for p in report.problems), report.problems
    quick = check_layout(mini_ucf, expect_full=False, open_videos=False)
    assert any("1 listed videos do not open" in p for p in quick.problems), quick.problems


def test_check_without_split_files_is_not_ok(mini_ucf: Path, capsys):
    from hartutor.cli import main

    for name in ("trainlist01.txt", "testlist01.txt"):
        (mini_ucf / "ucfTrainTestlist" / name).unlink()
    report = check_layout(mini_ucf, expect_full=False)
    assert not report.ok and "no split files" in report.problems[0]
    assert main(["ucf101", "check", str(mini_ucf), "--subset"]) == 1
    assert "NOT OK" in capsys.readouterr().out
    (mini_ucf / "ucfTrainTestlist" / "trainlist01.txt").write_text("")
    report = check_layout(mini_ucf, expect_full=False)
    assert any("testlist01.txt is missing" in p for p in report.problems), report.problems


def test_splits_archive_with_a_symlink_member_is_refused(tmp_path: Path):
    import stat
    import zipfile

    from hartutor.ucf101 import _safe_extract_zip

    archive = tmp_path / "splits.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        link = zipfile.ZipInfo("ucfTrainTestlist")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc")
        bundle.writestr("ucfTrainTestlist/classInd.txt", "1 A\n")
    target = tmp_path / "root"
    target.mkdir()
    with pytest.raises(DataError, match="symbolic link"):
        _safe_extract_zip(archive, target)
    assert not list(target.iterdir())
