"""The ``hartutor`` command line, run as a user would (a subprocess of the console script)."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hartutor.cli import main


def _hartutor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hartutor", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_info_reports_versions_shim_and_directories(monkeypatch, tmp_path):
    monkeypatch.setenv("HARTUTOR_CACHE", str(tmp_path / "cache"))
    result = _hartutor("info")
    assert result.returncode == 0, result.stderr
    lines = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in result.stdout.splitlines())
    assert lines["torch"].startswith("2.")
    assert "torchvision compiled ops loaded" in result.stdout
    assert lines["cache dir"] == str(tmp_path / "cache")
    assert lines["weights dir"] == str(tmp_path / "cache" / "weights")
    assert int(lines["torch threads"]) >= 1


def test_threads_option_is_applied(capsys):
    assert main(["--threads", "1", "info"]) == 0
    assert "torch threads" in capsys.readouterr().out
    import torch

    assert torch.get_num_threads() == 1


def test_unknown_command_exits_nonzero():
    result = _hartutor("no-such-command")
    assert result.returncode != 0
    assert "invalid choice" in result.stderr


def test_synth_writes_a_ucf101_style_dataset(tmp_path: Path):
    out = tmp_path / "synthetic"
    result = _hartutor("synth", "--out", str(out), "--clips", "24", "--seed", "3", "--quiet")
    assert result.returncode == 0, result.stderr
    with open(out / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24
    for row in rows:
        assert (out / row["path"]).is_file(), row
    assert (out / "splits" / "classInd.txt").is_file()
    assert (out / "splits" / "trainlist01.txt").is_file()


def test_show_writes_a_contact_sheet_for_a_class(tmp_path: Path):
    from hartutor.synth import CLASS_NAMES

    sheet = tmp_path / "sheet.png"
    result = _hartutor("show", CLASS_NAMES[0], "--out", str(sheet), "--frames", "8")
    assert result.returncode == 0, result.stderr
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_show_on_a_bad_video_is_a_clear_error(tmp_path: Path):
    bogus = tmp_path / "not_a_video.mp4"
    bogus.write_bytes(b"definitely not a video")
    result = _hartutor("show", str(bogus), "--out", str(tmp_path / "x.png"))
    assert result.returncode == 2
    assert "not_a_video.mp4" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("fixture_name", ["v_BaseballPitch_g01_c01.avi"])
def test_show_on_a_real_clip(fixture_videos: Path, tmp_path: Path, fixture_name: str):
    sheet = tmp_path / "real.png"
    result = _hartutor("show", str(fixture_videos / fixture_name), "--out", str(sheet))
    assert result.returncode == 0, result.stderr
    assert sheet.stat().st_size > 1000


def test_params_prints_the_table_with_measured_and_claimed_counts():
    result = _hartutor("params", "--classes", "101", "--format", "text")
    assert result.returncode == 0, result.stderr
    assert "C3D                    16x112x112 RGB                    78.4M" in result.stdout
    assert "~31M" in result.stdout and "I3D + Xception fusion" in result.stdout
    table2 = _hartutor("params")  # the poster's Table 2, completed
    assert table2.returncode == 0, table2.stderr
    assert "| 4 | C3D | c3d | 73 Million | 82.3% |" in table2.stdout
    assert "| 8 | Ours | i3d_xception_fusion | 31 Million | 87.5% |" in table2.stdout
    assert "A general overview of SpatioTemporal Fusion Techniques" in table2.stdout


def test_train_then_evaluate_from_the_command_line(tmp_path: Path, capsys):
    out, release = tmp_path / "run.pt", tmp_path / "release.pt"
    args = ["--threads", "1", "train", "i3d", "--preset", "tiny", "--data", "synthetic"]
    args += ["--clips", "26", "--val-clips", "13", "--epochs", "1", "--batch-size", "13"]
    assert main([*args, "--quiet", "--out", str(out), "--export", str(release)]) == 0
    assert out.is_file() and release.is_file() and release.stat().st_size < out.stat().st_size
    assert "epoch   1" in capsys.readouterr().out
    code = main(["evaluate", str(release), "--clips", "13", "--diagnostics", "--quiet"])
    text = capsys.readouterr().out
    assert code == 0
    assert "| reversed |" in text and "| shuffled |" in text
    assert "time-reversal pairs, reversed clips" in text


def test_train_keeps_rendered_clips_within_the_cache_budget_it_is_given(monkeypatch, capsys):
    import hartutor.data
    from hartutor.synth import TRAINING_CACHE_MB

    class Built(Exception):
        pass

    real_build = hartutor.data.build_datasets
    bundles = []

    def build_then_stop(*args, **kwargs):
        bundles.append(real_build(*args, **kwargs))
        raise Built

    monkeypatch.setattr(hartutor.data, "build_datasets", build_then_stop)
    monkeypatch.setenv("HARTUTOR_DEBUG", "1")  # let the test's own exception through main
    args = ["--threads", "1", "train", "c3d", "--clips", "13", "--val-clips", "13"]
    for extra, budget in (([], TRAINING_CACHE_MB), (["--cache-mb", "0"], 0.0)):
        with pytest.raises(Built):
            main([*args, *extra])
        bundle = bundles.pop()
        assert bundle.train.cache_mb == bundle.val.cache_mb == budget
    for bad in ("-1", "nan", "lots"):
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--cache-mb", bad])
        assert exit_info.value.code == 2
        assert "argument --cache-mb: expected MiB >= 0" in capsys.readouterr().err
    assert not bundles  # refused before anything was built


def test_train_with_the_same_seed_starts_and_ends_with_the_same_weights(tmp_path: Path):
    """--seed sets the initial weights too (torch seeds its own generator anew per process)."""
    from hartutor.train import read_checkpoint

    args = ["--threads", "1", "train", "c3d", "--clips", "13", "--val-clips", "1"]
    args += ["--epochs", "1", "--batch-size", "13", "--quiet"]
    weights = {}
    for run, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        torch.manual_seed(int(run, 16))  # whatever the generator held before must not matter
        assert main([*args, "--seed", seed, "--out", str(tmp_path / f"{run}.pt")]) == 0
        weights[run] = read_checkpoint(tmp_path / f"{run}.pt")["state_dict"]
    for name, tensor in weights["a"].items():
        assert torch.equal(tensor, weights["b"][name]), name
    assert any(not torch.equal(t, weights["c"][k]) for k, t in weights["a"].items())


def test_evaluating_a_fusion_scores_each_stream(capsys):
    from hartutor.course import shipped_checkpoint

    path = shipped_checkpoint("i3d_xception_fusion_tiny.pt")
    assert main(["--threads", "1", "evaluate", str(path), "--clips", "13", "--quiet"]) == 0
    text = capsys.readouterr().out
    for scorer in ("fused", "i3d", "xception"):
        assert f"| {scorer} |" in text


def test_demo_shows_the_transfer_world_by_default_and_the_motion_fusion_on_request(
    tmp_path: Path, capsys
):
    out = tmp_path / "demo.png"
    assert main(["--threads", "1", "demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("mode: world") and text.count("(true: ") == 3
    for family in ("motion", "appearance", "both"):
        assert f"({family}, test clip " in text
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert main(["--threads", "1", "demo", "--motion", "--clips", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("mode: tiny") and text.count("(true: ") == 2


@pytest.mark.parametrize(
    "args", [["demo", "--clips", "2"], ["demo", "--motion", "--video", "x.mp4"]]
)
def test_demo_options_that_do_not_go_together_are_one_line_errors(args, tmp_path, capsys):
    assert main([*args, "--out", str(tmp_path / "d.png")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error:" in err
