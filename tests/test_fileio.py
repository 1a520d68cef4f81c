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


def test_a_file_of_python_objects_is_refused_in_one_line_without_unsafe_advice(
    tmp_path: Path,
) -> None:
    """torch's own message suggests weights_only=False (it would run the file's code); the
    user reads one line that names the cause instead, from both loaders."""
    import datetime

    import torch

    from hartutor.errors import WeightsError
    from hartutor.train import read_checkpoint
    from hartutor.weights.loaders import load_torch_state_dict

    path = tmp_path / "objects.pt"
    torch.save({"made": datetime.date(2026, 12, 2)}, path)
    for load in (read_checkpoint, load_torch_state_dict):
        with pytest.raises(WeightsError) as caught:
            load(path)
        message = str(caught.value)
        assert "holds Python objects other than tensors" in message, message
        assert "weights_only=False" not in message and "\n" not in message, message
    truncated = tmp_path / "truncated.pt"
    torch.save({"w": torch.ones(3)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:40])
    with pytest.raises(WeightsError, match=r"could not be read safely \(\w+: "):
        read_checkpoint(truncated)


def test_bytes_that_are_no_pickle_at_all_are_not_called_python_objects(tmp_path: Path) -> None:
    from hartutor.errors import WeightsError
    from hartutor.train import read_checkpoint

    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint at all\n")
    with pytest.raises(WeightsError) as caught:
        read_checkpoint(path)
    message = str(caught.value)
    assert "its bytes are not a pickle of tensors" in message, message
    assert "Python objects" not in message and "weights_only=False" not in message, message


def test_read_small_json_refuses_large_or_broken_files_in_one_line(tmp_path: Path):
    from hartutor._fileio import read_small_json
    from hartutor.errors import DataError

    good = tmp_path / "good.json"
    good.write_text('{"a": 1}', encoding="utf-8")
    assert read_small_json(good, what="record") == {"a": 1}
    big = tmp_path / "big.json"
    big.write_text("[" + "0," * 600 + "0]", encoding="utf-8")
    with pytest.raises(DataError, match=r"record '.*big\.json' is over 1,000 bytes"):
        read_small_json(big, what="record", max_bytes=1000)
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"\xff{")
    for path in (broken, tmp_path / "missing.json"):
        with pytest.raises(DataError, match="cannot read record") as err:
            read_small_json(path, what="record")
        assert "\n" not in str(err.value)
