"""Issue #20: hostile files and careless arguments end in one clear line, in bounded time and
memory, and never cost the user work they made. Each case is listed in ``docs/hardening.md``."""

from __future__ import annotations

import collections
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from hartutor.cli import main
from hartutor.errors import ArgumentError, OutputError, WeightsError
from hartutor.train import TrainConfig, load_checkpoint, read_checkpoint, save_checkpoint
from hartutor.weights import tf_checkpoint as tfc

HAS_CUDA = torch.cuda.is_available()


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``hartutor ARGV`` in this process: (exit code, stderr). A traceback fails the test."""
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse's usage errors
        code = exit_info.code if isinstance(exit_info.code, int) else 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def error_line(err: str) -> str:
    """The one error line (argparse adds its usage lines above it)."""
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------ arguments (parser)

USAGE_ERRORS = [
    (["train", "c3d", "--epochs", "0"], "--epochs"),
    (["train", "c3d", "--batch-size", "-1"], "--batch-size"),
    (["train", "c3d", "--lr", "nan"], "--lr"),
    (["train", "c3d", "--lr", "-1"], "--lr"),
    (["train", "c3d", "--seed", "-1"], "--seed"),
    (["train", "c3d", "--workers", "-1"], "--workers"),
    (["train", "c3d", "--classes", "0"], "--classes"),
    (["train", "c3d", "--warmup", "-3"], "--warmup"),
    (["train", "c3d", "--weight-decay", "inf"], "--weight-decay"),
    (["train", "nosuch_model"], "model"),
    (["train", "c3d", "--device", "tpu"], "--device"),
    (["--threads", "0", "info"], "--threads"),
    (["synth", "--out", "x", "--clips", "0"], "--clips"),
    (["synth", "--out", "x", "--size", "7"], "--size"),
    (["synth", "--out", "x", "--frames", "0"], "--frames"),
    (["demo", "--clips", "0"], "--clips"),
    (["evaluate", "x.pt", "--batch-size", "0"], "--batch-size"),
    (["show", "sit_down", "--out", "a.xyz"], "--out"),
    (["fuse", "i3d", "--stream", "i3d=a.pt", "--out", "f.pt"], "model"),
    (["fuse", "nosuch", "--stream", "a=b.pt", "--out", "f.pt"], "model"),
    (["params", "--classes", "-1"], "--classes"),
    (["frozen", "root", "--cache", "c", "--test-clips", "0"], "--test-clips"),
    (["train", "c3d", "--resume", "--overwrite"], "--overwrite"),
]


@pytest.mark.parametrize(("argv", "argument"), USAGE_ERRORS, ids=lambda v: " ".join(v))
def test_bad_arguments_are_usage_errors(argv, argument, capsys):
    code, err = run(argv, capsys)
    assert code == 2
    assert f"argument {argument}" in error_line(err)


@pytest.mark.skipif(HAS_CUDA, reason="the machine has CUDA")
def test_cuda_without_cuda_is_a_usage_error(capsys):
    code, err = run(["train", "c3d", "--device", "cuda"], capsys)
    assert code == 2
    assert "no CUDA device" in error_line(err)


def test_library_refuses_the_values_the_parser_refuses():
    from hartutor import validation as rules
    from hartutor.cli import build_parser

    for kwargs, words in (
        ({"epochs": 0}, "epochs must be in [1,"),
        ({"batch_size": -1}, "batch_size must be in [1,"),
        ({"lr": float("nan")}, "learning rate must be a finite number"),
        ({"seed": -1}, "seed must be in [0,"),
        ({"num_workers": -1}, "num_workers must be in [0,"),
        ({"warmup_epochs": -3}, "warmup_epochs must be >= 0"),
    ):
        with pytest.raises(ArgumentError, match=re_escape(words)):
            TrainConfig(**kwargs)
    # the parser reports the same rule in the same words
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "c3d", "--epochs", "0"])
    with pytest.raises(ValueError):  # ArgumentError is a ValueError, as before
        rules.EPOCHS(0)
    from hartutor.params import parameter_table

    with pytest.raises(ArgumentError, match="num_classes"):
        parameter_table(num_classes=-1)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_classes_fewer_than_the_data_is_refused_before_training(capsys, tmp_path):
    code, err = run(["train", "c3d", "--classes", "5", "--out", str(tmp_path / "a.pt")], capsys)
    assert code == 2
    assert "fewer than the 13 classes" in error_line(err)
    assert not (tmp_path / "a.pt").exists()


def test_unknown_weights_name_is_one_line(capsys):
    code, err = run(["weights", "path", "nosuch"], capsys)
    assert code == 2
    assert "unknown weights 'nosuch'" in error_line(err)


# ------------------------------------------------------------------ outputs and lost work


def _tiny_checkpoint(path: Path, name: str = "single_frame", **meta_changes) -> Path:
    from hartutor.models import build_model

    kwargs = {"preset": "tiny", "num_classes": 13}
    model = build_model(name, **kwargs)
    meta = {"name": name, "kwargs": kwargs, "data": "synthetic", **meta_changes}
    return save_checkpoint(
        path,
        {
            "epoch": 1,
            "state_dict": model.state_dict(),
            "model": meta,
            "class_names": [f"c{i}" for i in range(13)],
        },
    )


def test_train_refuses_to_replace_an_existing_checkpoint(capsys, tmp_path):
    old = _tiny_checkpoint(tmp_path / "old.pt")
    before = old.read_bytes()
    code, err = run(["train", "single_frame", "--out", str(old), "--epochs", "1"], capsys)
    assert code == 2
    assert "--resume" in error_line(err) and "--overwrite" in error_line(err)
    assert old.read_bytes() == before


def test_resume_onto_another_model_or_class_count_is_refused(capsys, tmp_path):
    old = _tiny_checkpoint(tmp_path / "old.pt")
    code, err = run(["train", "c3d", "--out", str(old), "--resume"], capsys)
    assert code == 2
    assert "cannot resume" in error_line(err) and "single_frame" in error_line(err)
    code, err = run(
        ["train", "single_frame", "--classes", "20", "--out", str(old), "--resume"], capsys
    )
    assert code == 2
    assert "'num_classes': 13" in error_line(err)


@pytest.mark.parametrize(
    "target", ["folder", "under_a_file"], ids=["out is a folder", "parent is a file"]
)
def test_unwritable_outputs_are_refused_before_work(capsys, tmp_path, target):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = tmp_path if target == "folder" else blocker / "model.pt"
    code, err = run(["train", "single_frame", "--out", str(out)], capsys)
    assert code == 2
    assert str(out) in error_line(err)
    code, err = run(["show", "sit_down", "--out", str(blocker / "sheet.png")], capsys)
    assert code == 2 and "is a file, not a folder" in error_line(err)


def test_full_disk_names_the_file_and_the_cause(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    def short_write(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at inline_container.cc:603] . unexpected pos 607808 vs 607700"
        )

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(torch, "save", short_write)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 0))
    with pytest.raises(OutputError, match=r"model\.pt.*the disk is full"):
        save_checkpoint(tmp_path / "model.pt", {"state_dict": {}})
    assert not list(tmp_path.iterdir())  # no temporary left behind


def test_oserror_in_a_command_is_one_line(capsys, monkeypatch, tmp_path):
    import errno

    import hartutor.viz

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "s.png"))

    monkeypatch.setattr(hartutor.viz, "show", full)
    code, err = run(["show", "sit_down", "--out", str(tmp_path / "s.png")], capsys)
    assert code == 1
    assert "the disk is full" in error_line(err) and "s.png" in error_line(err)


def test_broken_pipe_is_quiet():
    command = (
        f"{sys.executable} -m hartutor weights list | head -1; "
        f"{sys.executable} -m hartutor params --preset tiny | head -1"
    )
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=300, check=False
    )
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr == "", result.stderr


def test_fuse_needs_every_stream_or_an_explicit_scratch(capsys, tmp_path):
    from hartutor.models import build_model

    kwargs = {"preset": "tiny", "num_classes": 13}
    fusion = build_model("two_stream", **kwargs)
    spatial = tmp_path / "spatial.pt"
    save_checkpoint(
        spatial,
        {
            "state_dict": fusion.streams["spatial"].state_dict(),
            "model": {"name": "two_stream_spatial", "kwargs": kwargs},
            "class_names": [f"c{i}" for i in range(13)],
        },
    )
    out = tmp_path / "fused.pt"
    argv = ["fuse", "two_stream", "--stream", f"spatial={spatial}", "--out", str(out)]
    code, err = run(argv, capsys)
    assert code == 2
    assert "['temporal']" in error_line(err) and "--scratch" in error_line(err)
    assert not out.exists()
    code, _ = run([*argv, "--scratch", "temporal"], capsys)
    assert code == 0
    assert read_checkpoint(out)["scratch"] == ["temporal"]


# ------------------------------------------------------------------ atomic writes


def test_stale_temporaries_of_a_killed_write_are_removed(tmp_path):
    from hartutor._fileio import atomic_write_bytes

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    target = tmp_path / "model.pt"
    stale = tmp_path / f".model.tmp-{pid}-abcd.pt"
    stale.write_bytes(b"half a checkpoint")
    live = tmp_path / f".model.tmp-{os.getppid()}-efgh.pt"  # a writer that still runs
    live.write_bytes(b"in progress")
    other = tmp_path / f".other.tmp-{pid}-ijkl.pt"  # another target's: not ours to remove
    other.write_bytes(b"x")
    atomic_write_bytes(target, b"complete")
    assert target.read_bytes() == b"complete"
    assert not stale.exists()
    assert live.exists() and other.exists()


def test_atomic_write_fsyncs_file_and_folder(tmp_path, monkeypatch):
    from hartutor import _fileio

    synced: list[str] = []
    real_fsync = os.fsync

    def record(fd):
        synced.append(
            os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else "?"
        )
        return real_fsync(fd)

    monkeypatch.setattr(_fileio.os, "fsync", record)
    target = tmp_path / "ckpt.pt"
    save_checkpoint(target, {"state_dict": {}})
    assert any(".ckpt.tmp-" in path for path in synced)  # the file, before the rename
    assert str(tmp_path) in synced  # the folder, after it


# ------------------------------------------------------------------ hostile checkpoints


def _deflated_bomb(path: Path, megabytes: int) -> Path:
    """A torch.save file whose tensor data is recompressed: a run of zeros, deflated."""
    plain = path.with_suffix(".plain")
    torch.save(
        {"format": "hartutor-checkpoint-v1", "state_dict": {"w": torch.zeros(megabytes * 2**18)}},
        plain,
    )
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    plain.unlink()
    return path


def test_a_deflated_bomb_is_refused_before_loading(tmp_path):
    bomb = _deflated_bomb(tmp_path / "bomb.pt", 64)
    assert bomb.stat().st_size < 2**20  # 64 MB of tensors in under 1 MB
    # torch itself would load it (the bomb is real) ...
    assert torch.load(bomb, weights_only=True)["state_dict"]["w"].numel() == 64 * 2**18
    # ... hartutor refuses it from the archive's entries
    with pytest.raises(WeightsError, match="would expand to"):
        read_checkpoint(bomb)
    from hartutor.weights.loaders import load_torch_state_dict

    with pytest.raises(WeightsError, match="would expand to"):
        load_torch_state_dict(bomb)


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        ({"kwargs": {}}, "does not say which model"),
        ({"name": "nosuch", "kwargs": {}}, "is not a hartutor model"),
        ({"name": "single_frame", "kwargs": {"preset": "tiny", "bogus": 1}}, "does not accept"),
        ({"name": "single_frame", "kwargs": {"num_classes": 10**9}}, "num_classes must be in"),
        ({"name": "single_frame", "kwargs": {"preset": "huge"}}, "preset must be one of"),
        ({"name": "single_frame", "kwargs": [1, 2]}, "not a mapping"),
    ],
    ids=["no name", "unknown model", "bogus argument", "huge class count", "bad preset", "list"],
)
def test_checkpoint_metadata_is_checked_before_building(tmp_path, capsys, meta, words):
    path = tmp_path / "bad.pt"
    save_checkpoint(path, {"state_dict": {}, "model": meta})
    with pytest.raises(WeightsError, match=re_escape(words)):
        load_checkpoint(path)
    code, err = run(["evaluate", str(path)], capsys)
    assert code == 2 and words in error_line(err)
    from hartutor.widgets import _message, load_model

    with pytest.raises(WeightsError) as info:  # the app shows this message, not "KeyError"
        load_model(path)
    assert words in _message(info.value)


def test_wrong_class_count_load_error_is_a_short_summary(tmp_path):
    path = _tiny_checkpoint(tmp_path / "m.pt")
    payload = read_checkpoint(path)
    payload["model"]["kwargs"]["num_classes"] = 7
    save_checkpoint(path, {k: v for k, v in payload.items() if k != "format"})
    with pytest.raises(WeightsError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "shape mismatch" in message and "made for single_frame" in message
    assert len(message) < 1500
    assert "weights_only=False" not in message


def test_no_loader_repeats_torchs_unsafe_advice(tmp_path):
    import argparse

    from hartutor._fileio import unsafe_load_reason

    path = tmp_path / "pickled.pt"
    torch.save({"x": argparse.Namespace(a=1)}, path)  # an object a safe load refuses
    try:
        torch.load(path, weights_only=True)
    except Exception as err:  # torch's own message carries the advice
        assert "weights_only" in str(err)
        assert "weights_only=False" not in unsafe_load_reason(err)
    err = RuntimeError(
        "Weights only load failed. Re-running `torch.load` with `weights_only` set to `False`"
    )
    assert "False" not in unsafe_load_reason(err)


# ------------------------------------------------------------------ hostile TF indexes


def _table(blocks: list[tuple[bytes, int]], index_entries: list[tuple[bytes, int]]) -> bytes:
    """An SSTable from raw blocks and an index naming them by position (handles may repeat)."""
    out = bytearray()
    handles = []

    def write(contents: bytes, kind: int) -> bytes:
        handle = tfc._encode_varint(len(out)) + tfc._encode_varint(len(contents))
        crc = tfc.mask_crc32c(tfc.crc32c(contents + bytes([kind])))
        out.extend(contents + bytes([kind]) + struct.pack("<I", crc))
        return handle

    for contents, kind in blocks:
        handles.append(write(contents, kind))
    meta = write(tfc._BlockBuilder(16).finish(), tfc.NO_COMPRESSION)
    index = tfc._BlockBuilder(1)
    for key, which in index_entries:
        index.add(key, handles[which])
    index_handle = write(index.finish(), tfc.NO_COMPRESSION)
    return bytes(out) + (meta + index_handle).ljust(40, b"\0") + struct.pack("<Q", tfc.TABLE_MAGIC)


def test_repeated_block_handles_are_refused(tmp_path):
    block = tfc._BlockBuilder(16)
    block.add(b"", tfc._encode_header(1))
    data = block.finish()
    entries = [(f"k{i:06d}".encode(), 0) for i in range(20_000)]
    table = _table([(data, tfc.NO_COMPRESSION)], entries)
    assert len(table) < 400_000
    index = tmp_path / "m.index"
    index.write_bytes(table)
    with pytest.raises(WeightsError, match="same data block more than once"):
        tfc.read_tf_checkpoint_index(index)


def test_overlapping_blocks_are_refused(tmp_path):
    block = tfc._BlockBuilder(16)
    block.add(b"", tfc._encode_header(1))
    data = block.finish()
    table = bytearray(_table([(data, tfc.NO_COMPRESSION)], [(b"a", 0)]))
    # a second index entry pointing one byte into the first block
    out = bytearray(table[: -tfc.FOOTER_BYTES])
    index = tfc._BlockBuilder(1)
    index.add(b"a", tfc._encode_varint(0) + tfc._encode_varint(len(data)))
    index.add(b"b", tfc._encode_varint(1) + tfc._encode_varint(len(data) - 1))
    contents = index.finish()
    handle = tfc._encode_varint(len(out)) + tfc._encode_varint(len(contents))
    crc = tfc.mask_crc32c(tfc.crc32c(contents + b"\0"))
    out += contents + b"\0" + struct.pack("<I", crc)
    footer = (handle + handle).ljust(40, b"\0") + struct.pack("<Q", tfc.TABLE_MAGIC)
    path = tmp_path / "o.index"
    path.write_bytes(bytes(out) + footer)
    with pytest.raises(WeightsError, match="overlap"):
        tfc.read_tf_checkpoint_index(path, verify=False)


def _reference_snappy(data: bytes) -> bytes:
    """The old byte-at-a-time decoder, kept as the reference for the bulk one."""
    _, pos = tfc._read_varint(data, 0)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        if tag & 3 == 0:
            length = (tag >> 2) + 1
            out += data[pos : pos + length]
            pos += length
            continue
        length = (tag >> 2) + 1
        offset = int.from_bytes(data[pos : pos + 2], "little")
        pos += 2
        start = len(out) - offset
        for i in range(length):
            out.append(out[start + i])
    return bytes(out)


def test_bulk_snappy_copies_match_the_byte_at_a_time_reference():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    ops = st.lists(
        st.one_of(
            st.binary(min_size=1, max_size=60).map(lambda b: ("lit", b)),
            st.tuples(st.integers(1, 64), st.integers(1, 70)).map(lambda t: ("copy", t)),
        ),
        min_size=1,
        max_size=30,
    )

    @settings(max_examples=200, deadline=None)
    @given(ops)
    def check(items):
        body, size = bytearray(), 0
        for kind, value in items:
            if kind == "lit":
                body += bytes([(len(value) - 1) << 2]) + value
                size += len(value)
            else:
                length, offset = value
                if offset > size:
                    continue
                body += bytes([((length - 1) << 2) | 2]) + struct.pack("<H", offset)
                size += length
        stream = tfc._encode_varint(size) + bytes(body)
        assert tfc.snappy_decompress(stream) == _reference_snappy(stream)

    check()


def test_shape_overflowing_int64_is_a_clear_error(tmp_path):
    value = tfc._encode_entry(1, (2**32, 2**32), 0, 0, 4, 0)
    table = tfc._build_table([(b"", tfc._encode_header(1)), (b"w", value)])
    path = tmp_path / "big.index"
    path.write_bytes(table)
    with pytest.raises(WeightsError, match="more than int64"):
        tfc.read_tf_checkpoint_index(path)


def test_show_decodes_at_the_size_it_draws(tmp_path, monkeypatch):
    import hartutor.video
    from hartutor.video import write_video
    from hartutor.viz import SHEET_FRAME_PIXELS, show

    frames = torch.randint(0, 255, (4, 480, 720, 3), dtype=torch.uint8)
    clip = write_video(tmp_path / "big.mp4", frames, fps=8)
    decoded = []
    real = hartutor.video.read_video

    def spy(*args, **kwargs):
        video = real(*args, **kwargs)
        decoded.append(tuple(video.frames.shape))
        return video

    monkeypatch.setattr(hartutor.video, "read_video", spy)
    show(str(clip), tmp_path / "sheet.png", num_frames=4)
    assert decoded == [(4, SHEET_FRAME_PIXELS, 384, 3)]  # short side 480 -> 256, aspect kept


def _truncated_faststart_mp4(tmp_path: Path) -> Path:
    """An H.264 MP4 with its index first (faststart), cut to 40%: the index promises 64 frames."""
    import av

    whole = tmp_path / "whole.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(whole), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        stream.options = {"g": "8"}
        for _ in range(64):
            image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.4)])
    return cut


def test_truncated_mp4_has_one_true_frame_count(tmp_path):
    from hartutor.errors import VideoDecodeError
    from hartutor.video import read_video

    cut = _truncated_faststart_mp4(tmp_path)
    every = read_video(cut)  # the frames that decode
    true_count = every.info.num_frames
    assert 1 < true_count < 64 and len(every.frames) == true_count
    few = read_video(cut, num_frames=16)  # resampled from the frames that decode
    assert few.info.num_frames == true_count
    assert few.info.indices[0] == 0 and few.info.indices[-1] == true_count - 1
    assert torch.equal(few.frames[-1], every.frames[-1])
    with pytest.raises(VideoDecodeError, match=f"it has {true_count} frames; 64 were requested"):
        read_video(cut, num_frames=64)
    with pytest.raises(VideoDecodeError, match=f"past the end: it has {true_count} frames"):
        read_video(cut, indices=[0, true_count])


# ------------------------------------------------------------------ property: no tracebacks


class _WorkStarted(BaseException):
    """Raised by the stubs below: the arguments were accepted and the real work would start."""


def _start(*args, **kwargs):
    raise _WorkStarted


#: Where each subcommand's work starts; the property test stops it there (no training here).
WORK = [
    ("hartutor.synth", "generate_dataset"),
    ("hartutor.viz", "show"),
    ("hartutor.params", "parameter_table"),
    ("hartutor.params", "poster_table2"),
    ("hartutor.params", "flow_rate"),
    ("hartutor.table1", "kinetics_table1"),
    ("hartutor.table1", "world_table1"),
    ("hartutor.models", "build_model"),
    ("hartutor.train", "fuse_checkpoints"),
    ("hartutor.demo", "run_demo"),
    ("hartutor.weights", "weights_files"),
    ("hartutor.ucf101", "prepare"),
    ("hartutor.features", "pretrained_stream"),
    ("hartutor.standins", "make_ucf101"),
    ("hartutor.standins", "serve"),
    ("hartutor.samples", "fetch_samples"),
]

_NUMBERS = [
    "0",
    "1",
    "-1",
    "2",
    "7",
    "13",
    "nan",
    "inf",
    "-inf",
    "1e400",
    "0.5",
    "1e-9",
    "99999999999",
]
_WORDS = ["", " ", "x", "a.xyz", "out.png", "cuda", "cpu", "auto", "tiny", "paper", "-", "--", "ü"]

OPTIONS: dict[str, tuple[list[str], dict[str, list[str]]]] = {
    "info": ([], {}),
    "synth": (
        [],
        {"--out": ["ds", "a.xyz"], "--clips": [], "--seed": [], "--frames": [], "--size": []},
    ),
    "show": (
        ["sit_down", "nosuch.mp4"],
        {"--out": ["s.png", "s.xyz", "dir/"], "--seed": [], "--frames": []},
    ),
    "params": (
        [],
        {
            "--preset": ["paper", "tiny", "big"],
            "--classes": [],
            "--format": ["text", "csv"],
            "--flow-rate": None,
        },
    ),
    "table1": (
        ["nowhere", "."],
        {
            "--world": None,
            "--weights": ["i3d_rgb_kinetics600_scratch", "xception_imagenet1k_tf", "nosuch"],
            "--videos": ["poster", "test", "all"],
            "--split": [],
            "--limit": [],
            "--frames": [],
            "--clips-per-class": [],
            "--seed": [],
            "--no-download": None,
        },
    ),
    "train": (
        ["c3d", "i3d", "nosuch", "two_stream"],
        {
            "--epochs": [],
            "--batch-size": [],
            "--lr": [],
            "--weight-decay": [],
            "--warmup": [],
            "--classes": [],
            "--clips": [],
            "--val-clips": [],
            "--seed": [],
            "--workers": [],
            "--device": ["cpu", "cuda", "cuda:7", "tpu"],
            "--cache-mb": [],
            "--optimizer": ["sgd", "adam"],
            "--preset": ["tiny", "paper"],
            "--out": ["m.pt", "."],
        },
    ),
    "fuse": (
        ["i3d_xception_fusion", "two_stream", "i3d", "nosuch"],
        {
            "--stream": ["i3d=a.pt", "x", "=", "spatial=s.pt"],
            "--scratch": ["xception", "temporal"],
            "--out": ["f.pt"],
            "--mode": ["logit_sum", "max"],
        },
    ),
    "evaluate": (
        ["nosuch.pt", "."],
        {"--clips": [], "--seed": [], "--batch-size": [], "--data": ["synthetic", "nowhere"]},
    ),
    "demo": (
        [],
        {
            "--clips": [],
            "--seed": [],
            "--out": ["d.png", "d.xyz"],
            "--video": ["nosuch.mp4"],
            "--motion": None,
        },
    ),
    "weights": (["list", "path", "download", "nope"], {"--quiet": None}),
    "ucf101": (["check", "prepare", "nope"], {"--subset": None, "--quick": None}),
    "samples": (["list", "fetch", "nope"], {"--from": ["nowhere", "."], "--quiet": None}),
    "standins": (
        ["build", "serve", "nope"],
        {
            "--frames": [],
            "--port": [],
            "--weights": ["xception_imagenet1k_tf", "nosuch"],
            "--overwrite": None,
        },
    ),
    "frozen": (
        ["nowhere"],
        {
            "--cache": ["c"],
            "--split": [],
            "--test-clips": [],
            "--xception-stride": [],
            "--epochs": [],
            "--lr": [],
            "--seed": [],
            "--batch-size": [],
            "--workers": [],
            "--device": ["cpu", "cuda"],
        },
    ),
}


OUTCOMES: collections.Counter[tuple[str, str]] = collections.Counter()


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_random_arguments_give_exit_0_or_one_line(command, tmp_path, monkeypatch):
    import contextlib
    import importlib
    import io

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    for module, name in WORK:
        monkeypatch.setattr(importlib.import_module(module), name, _start)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARTUTOR_CACHE", str(tmp_path / "cache"))
    positionals, options = OPTIONS[command]
    value = st.one_of(
        st.sampled_from(_NUMBERS + _WORDS),
        st.integers(-(10**12), 10**12).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.text(max_size=6),
    )

    def option(flag: str) -> st.SearchStrategy[list[str]]:
        if options[flag] is None:
            return st.just([flag])
        choices = options[flag]
        values = st.one_of(st.sampled_from(choices), value) if choices else value
        return values.map(lambda v: [flag, v])

    argv = st.tuples(
        st.lists(st.sampled_from(positionals), max_size=2) if positionals else st.just([]),
        st.lists(st.sampled_from(sorted(options)).flatmap(option), max_size=4)
        if options
        else st.just([]),
        st.sampled_from([[], ["--threads", "1"], ["--threads", "0"], ["--threads", "x"]]),
    ).map(lambda t: [*t[2], command, *t[0], *(item for pair in t[1] for item in pair)])

    @settings(
        max_examples=int(os.environ.get("HARTUTOR_PROPERTY_EXAMPLES", "25")),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(argv)
    def check(args: list[str]) -> None:
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = main(args)
            except SystemExit as exit_info:
                code = exit_info.code
            except _WorkStarted:
                OUTCOMES[command, "started"] += 1
                return  # accepted: the work would start here
        text = err.getvalue()
        OUTCOMES[command, f"exit {code}"] += 1
        assert "Traceback" not in text, (args, text)
        assert code in (0, 1, 2), (args, code, text)
        if code:
            errors = [line for line in text.splitlines() if ": error: " in line]
            assert len(errors) == 1, (args, text)
            assert "unexpected" not in errors[0], (args, text)  # a bug: an unplanned failure

    check()


def test_parser_rules_agree_with_the_renderer_and_the_dataset():
    from hartutor import validation as rules
    from hartutor.synth import dataset, render_clip

    assert rules.MAX_SEED == dataset.MAX_SEED
    for size in (7, 8, 1024, 1025):
        accepted = rules.FRAME_SIZE.check(size) is None
        try:
            render_clip("sit_down", 0, num_frames=1, size=size)
            rendered = True
        except ValueError:
            rendered = False
        assert accepted == rendered, size
    for frames in (0, 1, 1024, 1025):
        accepted = rules.NUM_FRAMES.check(frames) is None
        try:
            render_clip("sit_down", 0, num_frames=frames, size=8)
            rendered = True
        except ValueError:
            rendered = False
        assert accepted == rendered, frames


def test_a_read_only_folder_is_named_before_work(tmp_path, monkeypatch):
    import errno
    import tempfile

    from hartutor._fileio import check_writable

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OutputError, match=r"ckpt\.pt.*read-only"):
        check_writable(tmp_path / "ckpt.pt", what="checkpoint")


def test_timm_loader_does_not_repeat_the_unsafe_advice(tmp_path):
    import datetime

    from hartutor.models import build_model
    from hartutor.weights.loaders import _load_timm
    from hartutor.weights.registry import get_weights

    entry = get_weights("xception_imagenet1k_tf")
    foreign = tmp_path / "foreign.pth"
    torch.save({"x": datetime.date(2020, 1, 1)}, foreign)  # refused by a safe load
    with pytest.raises(WeightsError) as info:
        _load_timm(build_model("xception", num_classes=1000), foreign, entry)
    assert "weights_only=False" in str(info.value.__cause__)  # timm's own text has the advice
    assert "weights_only=False" not in str(info.value)
    assert "foreign.pth" in str(info.value)


def test_save_figure_refuses_an_unknown_format_as_the_cli_does(tmp_path):
    from matplotlib.figure import Figure

    from hartutor.viz import save_figure

    with pytest.raises(ArgumentError, match=r"figure file must end in a figure format"):
        save_figure(Figure(), tmp_path / "a.xyz")
    assert not list(tmp_path.iterdir())


def test_an_unplanned_failure_is_one_line_unless_debugging(capsys, monkeypatch, tmp_path):
    import hartutor.viz

    def bug(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(hartutor.viz, "show", bug)
    argv = ["show", "sit_down", "--out", str(tmp_path / "s.png")]
    code, err = run(argv, capsys)
    assert code == 1
    assert "unexpected ZeroDivisionError: division by zero" in error_line(err)
    assert "HARTUTOR_DEBUG=1" in error_line(err)
    monkeypatch.setenv("HARTUTOR_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(argv)
