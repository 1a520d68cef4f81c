"""Shared pytest fixtures: the real clips in ../shared/fixtures and small helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

import hartutor  # noqa: F401  (applies the torchvision compatibility shim first)
from hartutor.course import fixtures_dir as find_fixtures

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = find_fixtures(REPO_ROOT) or REPO_ROOT.parent / "shared" / "fixtures"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(
            f"real-data fixture {path} is absent (clone with ../shared beside the checkout, "
            "or set HARTUTOR_FIXTURES)"
        )
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``../shared/fixtures``; tests using it skip with a reason where it is absent."""
    return _require(SHARED_FIXTURES)


@pytest.fixture(scope="session")
def fixture_videos(fixtures_dir: Path) -> Path:
    return _require(fixtures_dir / "videos")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Never let a test read or write the user's real cache."""
    cache = tmp_path_factory.mktemp("hartutor-cache")
    monkeypatch.setenv("HARTUTOR_CACHE", str(cache))
    monkeypatch.delenv("HARTUTOR_DATA", raising=False)
    yield


@pytest.fixture(scope="session")
def kinetics_i3d_standin_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hartutor cache holding the Kinetics-400 I3D that Binder's postBuild downloads, as a
    stand-in (the real file format, random values) fetched from a local mirror by the real
    download code. Point ``HARTUTOR_CACHE`` at it to take the notebooks' cached-weights path."""
    from hartutor import standins
    from hartutor.pretrained_explain import PRETRAINED_STREAMS
    from hartutor.weights import mirror as mirror_module
    from hartutor.weights import weights_files

    base = tmp_path_factory.mktemp("kinetics-i3d-standin")
    cache = base / "cache"
    mirror = standins.write_mirror(base / "mirror", weights=[PRETRAINED_STREAMS["i3d"]])
    with standins.serve(mirror) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARTUTOR_CACHE", str(cache))
        patch.setenv(mirror_module.MIRROR_VARIABLE, server.url)
        mirror_module.clear_cache()
        weights_files(PRETRAINED_STREAMS["i3d"], download=True, progress=False)
    mirror_module.clear_cache()
    return cache
