"""The samples registry: sizes and digests match the real files, the cache fills from a local
folder without a network, and a missing file offline gives one clear error."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hartutor.cli import main
from hartutor.errors import DataError, WeightsError
from hartutor.samples import SAMPLES, fetch_samples, sample_file, samples_dir

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"the real sample files are not in {FIXTURES}"
)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARTUTOR_SAMPLES", str(tmp_path / "samples"))


def test_every_sample_has_a_public_source_size_and_digest():
    for name, sample in SAMPLES.items():
        assert sample.url.startswith("https://") and sample.size > 0 and len(sample.sha256) == 64
        assert sample.remote.cache_path(samples_dir()).relative_to(samples_dir()) == Path(name)


@needs_fixtures
def test_registry_matches_the_real_files_and_their_published_sums():
    published = dict(
        reversed(line.split(maxsplit=1))
        for line in (FIXTURES / "SHA256SUMS").read_text().splitlines()
        if line.strip()
    )
    for name, sample in SAMPLES.items():
        data = (FIXTURES / name).read_bytes()
        assert len(data) == sample.size, name
        assert hashlib.sha256(data).hexdigest() == sample.sha256 == published[name], name


@needs_fixtures
def test_fetch_from_a_local_folder_fills_the_cache_offline():
    paths = fetch_samples(source=FIXTURES, download=False, progress=False)
    assert len(paths) == len(SAMPLES) and all(p.is_file() for p in paths)
    assert sample_file("v_BaseballPitch_g01_c01.avi") == paths[1]
    from hartutor.course import fixtures_dir

    # without shared/fixtures in sight, the course finds the fetched samples
    assert fixtures_dir(Path("/")) in (samples_dir(), FIXTURES)


def test_a_wrong_file_in_the_source_folder_is_refused(tmp_path):
    folder = tmp_path / "fake"
    (folder / "labels").mkdir(parents=True)
    (folder / "labels" / "kinetics400.txt").write_text("not the labels\n")
    with pytest.raises(WeightsError):
        fetch_samples(["kinetics400.txt"], source=folder, download=False)
    assert not (samples_dir() / "labels" / "kinetics400.txt").exists()


def test_missing_offline_says_how_to_get_it():
    with pytest.raises(WeightsError, match="not in the cache"):
        sample_file("kinetics400.txt")
    with pytest.raises(DataError, match="hartutor samples list"):
        sample_file("no_such_clip.avi")


def test_cli_lists_and_fetches(capsys, tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["samples", "list"]) == 0
    out = capsys.readouterr().out
    assert "kinetics_arm_wrestling.mp4" in out and "raw.githubusercontent.com" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    # nothing local and no network: one line, exit code 2, no traceback
    code = main(["samples", "fetch", "kinetics400.txt", "--from", str(empty), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("hartutor samples: error:") and "Traceback" not in err


@needs_fixtures
def test_cli_fetch_from_fixtures(capsys):
    assert main(["samples", "fetch", "--from", str(FIXTURES), "--quiet"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(SAMPLES)
