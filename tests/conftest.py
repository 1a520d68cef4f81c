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
