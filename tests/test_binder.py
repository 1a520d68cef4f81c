"""Binder: the files mybinder.org reads build an environment that runs the course.

mybinder.org itself cannot be reached from a test, so this builds what it builds, here: a fresh
virtual environment from ``binder/requirements.txt``, then ``binder/postBuild``, then runs every
notebook of the course through ``binder/start`` with that environment's Jupyter.
Where PyTorch's CPU index is unreachable (as on CI machines without internet) pip falls back to
the configured registries, which hold the same CPU wheel.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def _pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s#;]+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_binder_files_pin_the_cpu_torch_of_the_constraints() -> None:
    requirements = (BINDER / "requirements.txt").read_text()
    assert "download.pytorch.org/whl/cpu" in requirements  # no CUDA libraries in the image
    binder, constraints = _pins(requirements), _pins((ROOT / "constraints.txt").read_text())
    for package in ("torch", "torchvision"):
        assert binder[package].split("+")[0] == constraints[package].split("+")[0], package
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime == f"python-{sys.version_info.major}.{sys.version_info.minor}"
    for script in ("postBuild", "start"):
        assert os.access(BINDER / script, os.X_OK), f"binder/{script} must be executable"
    assert "hartutor samples fetch" in (BINDER / "postBuild").read_text()
    assert "hartutor weights download" in (BINDER / "postBuild").read_text()


@pytest.mark.binder
def test_a_fresh_environment_from_the_binder_files_runs_the_course(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(env_dir),
        "HOME": str(tmp_path / "home"),  # postBuild writes the synthetic data under $HOME
        "PIP_RETRIES": "0",  # an unreachable index fails fast instead of retrying
        "PIP_TIMEOUT": "10",
        "MPLBACKEND": "Agg",
    }
    env.pop("HARTUTOR_DATA", None)
    env.pop("PYTHONPATH", None)
    fixtures = ROOT.parent / "shared" / "fixtures"
    if fixtures.is_dir():  # no network here: postBuild copies the samples from the fixtures
        env["HARTUTOR_SAMPLES_FROM"] = str(fixtures)

    def run(*command: str | Path, timeout: int = 900) -> str:
        done = subprocess.run(
            [str(c) for c in command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, (
            f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        return done.stdout

    run(bin_dir / "pip", "install", "-q", "-r", BINDER / "requirements.txt")
    # no network here: postBuild downloads the pretrained weights from stand-ins served locally
    from hartutor import standins
    from hartutor.pretrained_explain import PRETRAINED_STREAMS

    mirror = standins.write_mirror(tmp_path / "mirror", weights=PRETRAINED_STREAMS.values())
    with standins.serve(mirror) as server:
        env["HARTUTOR_MIRROR"] = server.url
        run("bash", BINDER / "postBuild")
    env.pop("HARTUTOR_MIRROR")
    info = run(BINDER / "start", bin_dir / "hartutor", "info")
    assert "2.13.0" in info
    samples = run(BINDER / "start", bin_dir / "hartutor", "samples", "list")
    assert "| no |" not in samples  # postBuild fetched every sample
    data = tmp_path / "home" / "data" / "synthetic"
    assert (data / "manifest.csv").is_file() or any(data.iterdir())
    # Every notebook of the course, with the versions Binder resolves (postBuild installs
    # hartutor without constraints.txt, as mybinder.org does), each in its own kernel.
    out = tmp_path / "executed"
    notebooks = sorted((ROOT / "tutorials").glob("*.ipynb"))
    assert len(notebooks) >= 11
    run(
        BINDER / "start",
        bin_dir / "jupyter",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--ExecutePreprocessor.kernel_name=python3",
        "--ExecutePreprocessor.timeout=600",
        "--output-dir",
        out,
        *notebooks,
        timeout=1800,
    )
    for notebook in notebooks:
        assert (out / notebook.name).is_file(), notebook.name
