"""The stand-ins of UCF101 and the weights, and README's full-mode commands run against them."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hartutor import standins, ucf101
from hartutor.errors import DataError, WeightsError
from hartutor.labels import ucf101 as ucf101_classes
from hartutor.weights import get_weights, load_pretrained
from hartutor.weights import mirror as mirror_module
from hartutor.weights.download import download_url, is_standin, sha256sum

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_mirror_state(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(mirror_module.MIRROR_VARIABLE, raising=False)
    mirror_module.clear_cache()
    yield
    mirror_module.clear_cache()


def _manifest(folder: Path, files: dict[str, bytes], *, standin: bool) -> None:
    lines = [mirror_module.STANDIN_HEADER] if standin else ["# a teaching-room mirror"]
    for key, data in files.items():
        target = folder / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        lines.append(f"{sha256sum(target)}  {len(data)}  {key}")
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def test_mirror_serves_files_under_host_and_path_with_its_checksums(tmp_path, monkeypatch):
    url = "https://example.org/models/w.bin"
    mirror = tmp_path / "mirror"
    _manifest(mirror, {"example.org/models/w.bin": b"weights"}, standin=False)
    monkeypatch.setenv("HARTUTOR_MIRROR", mirror.as_uri())
    path = download_url(url, tmp_path / "cache" / "w.bin", progress=False)
    assert path.read_bytes() == b"weights" and not is_standin(path)
    # a different file than the one whose real digest the registry knows is refused
    mirror_module.clear_cache()
    with pytest.raises(WeightsError, match="holds a different file"):
        download_url(url, tmp_path / "other" / "w.bin", sha256="0" * 64, progress=False)
    with pytest.raises(WeightsError, match=r"does not list example\.org/missing"):
        download_url("https://example.org/missing", tmp_path / "x", progress=False)


def test_standin_mirror_is_allowed_to_differ_and_says_so(tmp_path, monkeypatch, capsys):
    mirror = tmp_path / "mirror"
    _manifest(mirror, {"example.org/w.bin": b"random values"}, standin=True)
    monkeypatch.setenv("HARTUTOR_MIRROR", mirror.as_uri())
    path = download_url("https://example.org/w.bin", tmp_path / "w.bin", sha256="0" * 64)
    assert is_standin(path)
    assert "stand-ins" in capsys.readouterr().err
    # tampering after download is still caught: the stand-in note keeps its digest
    path.write_bytes(b"random valueZ")
    from hartutor.weights.download import RemoteFile, fetch

    remote = RemoteFile("https://example.org/w.bin", "w.bin", sha256="0" * 64)
    with pytest.raises(WeightsError, match="SHA-256"):
        fetch(remote, root=tmp_path)


@pytest.mark.parametrize(
    "line", ["abc  12  host/x", f"{'0' * 64}  twelve  host/x", f"{'0' * 64}  12"]
)
def test_bad_manifest_lines_are_named(line: str):
    with pytest.raises(WeightsError, match="line 2"):
        mirror_module.parse_manifest(f"# x\n{line}\n", "http://m")


def test_mirror_must_be_a_url(monkeypatch):
    monkeypatch.setenv("HARTUTOR_MIRROR", "/srv/mirror")
    with pytest.raises(WeightsError, match="not an http"):
        mirror_module.mirror_base()


def test_mini_ucf101_has_the_official_layout_and_formats(tmp_path: Path):
    from hartutor.video import probe_video

    actions = {"Bowling": "bend_down", "BrushingTeeth": "wave"}
    root = standins.make_ucf101(tmp_path, actions=actions, groups=(3, 22), num_frames=12)
    names = ucf101.read_class_index(root / "ucfTrainTestlist" / "classInd.txt")
    assert names == ucf101_classes()  # all 101, at their real indices
    raw = (root / "ucfTrainTestlist" / "trainlist01.txt").read_bytes()
    assert raw.endswith(b"\r\n")  # the official files' line ends
    for split in (1, 2, 3):
        train = ucf101.read_split(root, split, "train")
        test = ucf101.read_split(root, split, "test")
        assert not {e.group for e in train} & {e.group for e in test}
        assert all(names[e.label] in actions for e in train)
    assert {e.group for e in ucf101.read_split(root, 1, "test")} == {3}
    # the poster's Table 1 videos of these classes are there under their real names
    for cls, group, clip in standins.POSTER_TABLE1_VIDEOS:
        path = root / "UCF-101" / cls / f"v_{cls}_g{group:02d}_c{clip:02d}.avi"
        assert path.is_file() == (cls in actions)
    info = probe_video(root / "UCF-101" / "Bowling" / "v_Bowling_g22_c04.avi")
    assert (info.width, info.height, info.fps, info.codec) == (320, 240, 25.0, "mpeg4")
    import av

    with av.open(str(info.path)) as container:
        assert container.streams.video[0].codec_context.codec_tag == "XVID"
    report = ucf101.check_layout(root, expect_full=False)
    assert report.ok, report.problems
    with pytest.raises(DataError, match="overwrite"):
        standins.make_ucf101(tmp_path, actions=actions, groups=(3,), num_frames=12)


def test_weight_standins_load_exactly_through_the_real_loaders(tmp_path: Path):
    for name in ("i3d_rgb_kinetics400_imagenet_piergiaj", "i3d_rgb_kinetics600_scratch"):
        entry = get_weights(name)
        files = standins.write_entry(entry, tmp_path / name, seed=4)
        assert [f.name for f in files] == [f.filename for f in entry.files]
        loaded = load_pretrained(entry, path=files[0], check_hash=False)
        source = standins.source_model(entry, seed=4)
        for key, value in source.state_dict().items():
            if not key.endswith("num_batches_tracked"):
                assert torch.equal(loaded.state_dict()[key], value), (name, key)
    piergiaj = tmp_path / "i3d_rgb_kinetics400_imagenet_piergiaj" / "rgb_imagenet.pt"
    assert not __import__("zipfile").is_zipfile(piergiaj)  # legacy serialisation, as the original


def _readme_full_mode_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Going to full mode", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README's 'Going to full mode' has no bash block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


@pytest.mark.slow
def test_readme_full_mode_commands_run_against_the_standins(tmp_path: Path, fixtures_dir: Path):
    """A new user's first steps, in README's order, with the stand-ins served locally."""
    if shutil.which("bsdtar") is None and shutil.which("7z") is None:
        pytest.skip("no RAR-capable extractor (apt install libarchive-tools)")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "HARTUTOR_CACHE": str(tmp_path / "cache"),
        "HARTUTOR_FIXTURES": str(fixtures_dir),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("HARTUTOR_DATA", None)
    hartutor = [sys.executable, "-m", "hartutor"]
    mirror = tmp_path / "mirror"
    built = subprocess.run(
        [*hartutor, "standins", "build", str(mirror), "--frames", "24"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    commands = _readme_full_mode_commands()
    assert [c.split()[:3] for c in commands[:2]] == [
        ["hartutor", "weights", "download"],
        ["hartutor", "ucf101", "prepare"],
    ]
    with standins.serve(mirror, break_first=200_000) as server:
        env["HARTUTOR_MIRROR"] = server.url
        for command in commands[:2]:
            words = [
                os.path.expanduser(w).replace(str(Path.home()), str(home))
                for w in shlex.split(command)
            ]
            words = [w.replace("~", str(home)) for w in words]
            done = subprocess.run(
                [*hartutor, *words[1:]], env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, (command, done.stdout, done.stderr)
            assert "stand-ins" in done.stderr
            assert "Traceback" not in done.stderr
        resumed = [r for r in server.requests if r[1] is not None]
    assert resumed, "no transfer was resumed with a Range request"
    assert "OK" in done.stdout.splitlines()[-1]
    root = home / "data" / "ucf101"
    assert (root / "UCF-101" / "Bowling" / "v_Bowling_g22_c04.avi").is_file()
    # the third command opens JupyterLab in full mode on that data
    assert "HARTUTOR_DATA=~/data HARTUTOR_MODE=full" in commands[2]
    # the downloaded stand-ins load offline, with no mirror, and are reported as stand-ins
    offline = {k: v for k, v in env.items() if k != "HARTUTOR_MIRROR"}
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "from hartutor.weights import load_pretrained, weights_files;"
            "from hartutor.weights.download import is_standin;"
            "m = load_pretrained('xception_imagenet1k_tf', download=False);"
            "print(all(is_standin(p) for p in weights_files('xception_imagenet1k_tf',"
            " download=False)), sum(p.numel() for p in m.parameters()))",
        ],
        env=offline,
        capture_output=True,
        text=True,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split()[0] == "True"
    # README's frozen-feature route on that data, on two classes, offline
    frozen = subprocess.run(
        [
            *hartutor,
            "frozen",
            str(root),
            "--cache",
            str(tmp_path / "features"),
            "--classes",
            "Bowling,BrushingTeeth",
            "--test-clips",
            "1",
            "--epochs",
            "3",
            "--no-download",
            "--quiet",
        ],
        env=offline,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert frozen.returncode == 0, frozen.stderr[-2000:]
    assert "| fusion (softmax_mean) |" in frozen.stdout
    assert "hartutor frozen ROOT --cache DIR" in (ROOT / "README.md").read_text()


def test_mini_hmdb51_round_trips_through_its_archives_and_the_dataset(tmp_path, monkeypatch):
    from hartutor import hmdb51

    if shutil.which("bsdtar") is None and shutil.which("7z") is None:
        pytest.skip("no RAR-capable extractor (apt install libarchive-tools)")
    made = standins.make_hmdb51(tmp_path / "made", videos_per_class=5, num_frames=10)
    lines = (made / hmdb51.SPLIT_DIR / "sit_test_split1.txt").read_text().splitlines()
    assert len(lines) == 5 and all(re.fullmatch(r"\S+\.avi [012] ", line) for line in lines)
    archives = standins.pack_hmdb51(made, tmp_path / "packed")
    assert sorted(p.name for p in archives.values()) == sorted(hmdb51.ARCHIVES.values())
    mirror = tmp_path / "mirror"
    standins.write_mirror(mirror, extra={hmdb51.URLS[k]: path for k, path in archives.items()})
    monkeypatch.setenv("HARTUTOR_MIRROR", mirror.as_uri())
    report = hmdb51.prepare(tmp_path / "user", progress=False)  # download, unpack, check
    assert report.ok and report.standin, report.problems
    monkeypatch.delenv("HARTUTOR_MIRROR")
    full = hmdb51.check_layout(tmp_path / "user")  # the official counts, which a miniature lacks
    assert "expected (3570, 1530)" in full.problems[0]
    assert report.num_classes == 3 and report.num_videos == 15
    for split in (1, 2, 3):
        train = hmdb51.read_split(tmp_path / "user", split, "train")
        test = hmdb51.read_split(tmp_path / "user", split, "test")
        assert len(test) == 6 and len(train) == 6  # 2 test, 2 train, 1 unused per class
        assert not {e.relpath for e in train} & {e.relpath for e in test}
    tests = [{e.relpath for e in hmdb51.read_split(tmp_path / "user", k, "test")} for k in (1, 2)]
    assert tests[0] != tests[1]  # each split holds out its own videos
    data = hmdb51.HMDB51(tmp_path / "user", split=1, subset="test", num_frames=4, size=32)
    sample = data[0]
    assert sample["video"].shape == (3, 4, 32, 43) and sample["label"] == hmdb51.CLASSES.index(
        Path(sample["video_name"]).parent.name
    )
    assert data.class_names == list(hmdb51.CLASSES)
    with pytest.raises(DataError, match="train and test, not 'val'"):
        hmdb51.read_split(tmp_path / "user", 1, "val")


def test_three_crop_protocol_on_the_mini_ucf101(tmp_path: Path):
    """Clips x three crops per video, averaged per video, one model per split, and the mean."""
    from hartutor.models import build_model
    from hartutor.protocol import evaluate_protocol, evaluate_split
    from hartutor.ucf101 import UCF101

    actions = {"Bowling": "bend_down", "BrushingTeeth": "wave"}
    root = standins.make_ucf101(tmp_path, actions=actions, groups=(3, 10, 22), num_frames=12)
    data = UCF101(
        root,
        split=1,
        subset="test",
        num_frames=4,
        size=(24, 32),
        crop_size=24,
        clips_per_video=2,
        crops_per_clip=3,
    )
    videos = len(data.entries)
    assert len(data) == videos * 6
    left, centre, right = (data[k]["video"] for k in range(3))
    assert [data[k]["crop_index"] for k in range(4)] == [0, 1, 2, 0]
    full = UCF101(root, split=1, subset="test", num_frames=4, size=(24, 32), clips_per_video=2)
    full = full[0]["video"]  # the first clip of the first video, uncropped
    assert torch.equal(left, full[..., :24]) and torch.equal(right, full[..., 8:])
    assert torch.equal(centre, full[..., 4:28])
    torch.manual_seed(0)
    model = build_model("i3d", preset="tiny", num_classes=101).eval()
    options = {"num_frames": 4, "size": (24, 32), "crop_size": 24, "clips_per_video": 2}
    one = evaluate_split(model, root, 1, device="cpu", **options)
    assert one.videos == videos and one.items == videos * 6
    result = evaluate_protocol({1: model, 2: model, 3: model}, root, device="cpu", **options)
    assert [s.split for s in result.splits] == [1, 2, 3]
    assert result.splits[0] == one
    assert abs(result.mean_top1 - sum(s.top1 for s in result.splits) / 3) < 1e-12
    assert "| mean |" in result.table()
    with pytest.raises(DataError, match="crops_per_clip=3 needs a crop_size"):
        UCF101(root, split=1, subset="test", crops_per_clip=3)
