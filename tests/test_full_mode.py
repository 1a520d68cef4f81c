"""Full mode rehearsed: every notebook's full-mode branch runs at smoke scale on the stand-ins.

``HARTUTOR_MODE=full HARTUTOR_SCALE=smoke`` takes each notebook down the path a researcher
takes with the real UCF101 and the real pretrained weights (downloaded as README says), with
hartutor's stand-ins in their place: a miniature UCF101 in the official layout, prepared from
its archives, and weights files in their real formats with random values, fetched from a local
mirror. Smoke scale keeps every step and shrinks what only costs time (a few clips, one epoch,
the tiny preset where a model is trained from scratch; :class:`hartutor.course.FullRun`).
Accuracy means nothing here (random weights, a few clips): the test checks that the path runs,
that its figures reach the page as pictures, and that stand-ins are reported as such.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hartutor import standins
from hartutor.course import FULL_RUNS, full_run
from hartutor.errors import HartutorError

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
#: The pretrained weights the notebooks' full mode loads (05, 06, 07, 08).
FULL_MODE_WEIGHTS = (
    "i3d_rgb_kinetics400_imagenet",
    "i3d_rgb_kinetics600_scratch",
    "xception_imagenet1k_tf",
)


def test_scale_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("HARTUTOR_SCALE", raising=False)
    assert full_run() is FULL_RUNS["paper"]
    monkeypatch.setenv("HARTUTOR_SCALE", " Smoke ")
    assert full_run().scale == "smoke"
    monkeypatch.setenv("HARTUTOR_SCALE", "huge")
    with pytest.raises(HartutorError, match="HARTUTOR_SCALE='huge'"):
        full_run()


def test_smoke_scale_shrinks_only_what_costs_time():
    paper, smoke = FULL_RUNS["paper"], FULL_RUNS["smoke"]
    # paper scale: the notebook's own values win
    config = paper.config(lr=1e-4, batch_size=8)
    assert (config.epochs, config.batch_size, config.lr, config.num_workers) == (3, 8, 1e-4, 8)
    # smoke scale: epochs, batch and workers stay small whatever the notebook asks
    config = smoke.config(lr=1e-4, batch_size=8, epochs=3, num_workers=8)
    assert (config.epochs, config.batch_size, config.lr, config.num_workers) == (1, 2, 1e-4, 0)
    data = list(range(100))
    assert paper.clips(data) is data
    kept = smoke.clips(data)
    assert len(kept) == smoke.max_clips and kept[0] == 0 and kept[-1] > 80  # spread, not a prefix


@pytest.fixture(scope="session")
def full_mode_env(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> dict[str, str]:
    """A new user's machine after README's "Going to full mode" steps, with the stand-ins
    served by a local mirror: the weights downloaded into the cache, UCF101 prepared from its
    archives. Returns the environment the notebooks run in."""
    if shutil.which("bsdtar") is None and shutil.which("7z") is None:
        pytest.fail("no RAR-capable extractor: apt install libarchive-tools (.ci/run does)")
    base = tmp_path_factory.mktemp("full-mode")
    env = {
        **os.environ,
        "HOME": str(base / "home"),
        "HARTUTOR_CACHE": str(base / "cache"),
        "HARTUTOR_DATA": str(base / "data"),
        "HARTUTOR_FIXTURES": str(fixtures_dir),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    (base / "home").mkdir()
    hartutor = [sys.executable, "-m", "hartutor"]

    def run(*words: str) -> None:
        done = subprocess.run(
            [*hartutor, *words], env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, (words, done.stdout[-2000:], done.stderr[-2000:])

    mirror = base / "mirror"
    run("standins", "build", str(mirror), "--frames", "40", "--weights", *FULL_MODE_WEIGHTS)
    with standins.serve(mirror) as server:
        env["HARTUTOR_MIRROR"] = server.url
        run("weights", "download", *FULL_MODE_WEIGHTS, "--quiet")
        run("ucf101", "prepare", str(base / "data" / "ucf101"), "--quiet")
    del env["HARTUTOR_MIRROR"]  # from here on, offline as on a GPU node
    # Notebooks 08 and 09 explain and time "the UCF101 fusion" a researcher made in 07. At smoke
    # scale that is the tiny preset of the same fusion trained on the stand-in UCF101 (101
    # classes): attributing the paper-size fusion takes hours on a CPU. Notebook 07's own run
    # below fine-tunes the paper-size pretrained streams and writes its fusion elsewhere.
    fusion = base / "fusion_tiny_ucf101.pt"
    ucf101 = str(base / "data" / "ucf101")
    run("--threads", "2", "train", "i3d_xception_fusion", "--preset", "tiny", "--data", ucf101,
        "--epochs", "1", "--out", str(fusion), "--quiet")  # fmt: skip
    env["HARTUTOR_FUSION_CHECKPOINT"] = str(fusion)
    env.update({"HARTUTOR_MODE": "full", "HARTUTOR_SCALE": "smoke", "MPLBACKEND": "Agg"})
    return env


def test_full_mode_environment_holds_the_standins(full_mode_env: dict[str, str]):
    data = Path(full_mode_env["HARTUTOR_DATA"]) / "ucf101"
    assert (data / "UCF-101" / "BrushingTeeth" / "v_BrushingTeeth_g17_c02.avi").is_file()
    listing = subprocess.run(
        [sys.executable, "-m", "hartutor", "weights", "list"],
        env=full_mode_env,
        capture_output=True,
        text=True,
    )
    assert listing.returncode == 0, listing.stderr
    for name in FULL_MODE_WEIGHTS:
        line = next(row for row in listing.stdout.splitlines() if name in row)
        assert "stand-in" in line, line
    # the Kinetics-600 entry's class names came with it (Table 1 in 07 reads them offline)
    cache = Path(full_mode_env["HARTUTOR_CACHE"])
    assert len(list(cache.rglob("label_map_600.txt"))) == 1


#: Every notebook's full-mode branch runs at smoke scale.
FULL_MODE_NOTEBOOKS = sorted(TUTORIALS.glob("0*.ipynb"))


@pytest.mark.notebook
@pytest.mark.parametrize("path", FULL_MODE_NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_full_mode_at_smoke_scale(
    path: Path, full_mode_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    from test_notebooks import run_and_check_notebook

    for key, value in full_mode_env.items():
        monkeypatch.setenv(key, value)
    written = None
    if path.name.startswith("07_"):  # 07 fine-tunes the pretrained streams and writes the fusion
        written = tmp_path / "fusion_07.pt"
        monkeypatch.setenv("HARTUTOR_FUSION_CHECKPOINT", str(written))
    outputs = run_and_check_notebook(path)
    printed = "".join(o.get("text", "") for o in outputs)
    assert "mode: full" in printed, "the notebook did not run in full mode"
    if written is not None:
        from hartutor.train import load_checkpoint

        _, meta = load_checkpoint(written)
        assert meta["name"] == "i3d_xception_fusion" and len(meta["class_names"]) == 101
