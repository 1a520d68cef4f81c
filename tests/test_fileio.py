"""Atomic writes leave either the old file or the complete new one, never a part."""

from __future__ import annotations

from pathlib import Path

import pytest

from hartutor._fileio import atomic_path, atomic_write_bytes, atomic_write_text


def test_atomic_write_creates_parents_and_replaces(tmp_path: Path):
    target = tmp_path / "a" / "b" / "file.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path):
    target = tmp_path / "ckpt.pt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_temporary_keeps_the_suffix_for_encoders(tmp_path: Path):
    with atomic_path(tmp_path / "clip.mp4") as tmp:
        assert tmp.suffix == ".mp4" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    with atomic_path(tmp_path / "data.csv", suffix=".part") as tmp:
        assert tmp.suffix == ".part"
        tmp.write_bytes(b"y")
    assert (tmp_path / "data.csv").read_bytes() == b"y"


def test_written_files_get_the_usual_permissions(tmp_path: Path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "shared.txt", "x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
