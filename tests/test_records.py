"""Result records (``hartutor evaluate --json``) and model arguments (``hartutor train --arg``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from hartutor.cli import main
from hartutor.errors import DataError
from hartutor.models.registry import builder_arguments, parse_builder_arguments
from hartutor.records import RESULTS_DIR, read_record, read_records
from hartutor.train import load_checkpoint
from hartutor.weights.download import sha256sum

CHECKPOINTS = Path(__file__).resolve().parent.parent / "hartutor" / "assets" / "checkpoints"


def test_evaluate_json_writes_what_it_prints(tmp_path, capsys):
    out = tmp_path / "c3d.json"
    checkpoint = CHECKPOINTS / "c3d_tiny.pt"
    code = main(
        ["--threads", "1", "evaluate", str(checkpoint), "--clips", "26", "--diagnostics",
         "--json", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    record = read_record(out)
    assert record.model == "c3d" and record.kwargs["preset"] == "tiny"
    assert record.clips == 26 and record.seed == 0 and record.data == "synthetic"
    assert record.checkpoint_sha256 == sha256sum(checkpoint)
    assert f"top1={record.top1:.1%}" in printed and f"top5={record.top5:.1%}" in printed
    assert set(record.diagnostics) == {"reversed", "shuffled"}
    # The per-class recalls average to top-1 here: 2 clips of every class.
    assert math.isclose(sum(record.per_class.values()) / 13, record.top1)
    assert "--json" in record.command and record.measured.count("-") == 2


def test_evaluate_json_refuses_unwritable_target_before_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["evaluate", str(CHECKPOINTS / "c3d_tiny.pt"), "--json", str(blocker / "r.json")])
    assert code != 0
    assert "result record" in capsys.readouterr().err


@pytest.mark.parametrize(
    "change, message",
    [
        ({"top1": 1.5}, "top1 should be a fraction"),
        ({"clips": -1}, "clips should be a non-negative integer"),
        ({"surprise": 1}, "unknown fields ['surprise']"),
        ({"per_class": {"a": "x"}}, "per_class should be"),
    ],
)
def test_bad_records_are_refused_with_the_file_named(tmp_path, change, message):
    good = {
        "model": "c3d", "kwargs": {"preset": "tiny"}, "checkpoint": "c.pt",
        "checkpoint_sha256": "0" * 64, "data": "synthetic", "clips": 4, "seed": 0,
        "top1": 0.5, "top5": 1.0, "per_class": {"a": 0.5},
    }  # fmt: skip
    path = tmp_path / "r.json"
    path.write_text(json.dumps(good))
    assert read_record(path).top1 == 0.5
    path.write_text(json.dumps({**good, **change}))
    with pytest.raises(DataError, match=r"r\.json") as err:
        read_record(path)
    assert message in str(err.value)


def test_shipped_records_read_back():
    """Every record hartutor ships is well formed (the folder may still be empty)."""
    for name, record in read_records(RESULTS_DIR).items():
        assert record.model and 0 <= record.top1 <= 1, name


def test_shipped_records_match_the_shipped_checkpoints_they_name():
    """A record that names a shipped checkpoint measured those very bytes: retraining a
    checkpoint without re-measuring its record fails here."""
    root = CHECKPOINTS.parents[2]
    shipped = {
        name: record
        for name, record in read_records(RESULTS_DIR).items()
        if record.checkpoint.startswith("hartutor/assets/checkpoints/")
    }
    assert len(shipped) >= 11  # every record of a checkpoint that ships
    for name, record in shipped.items():
        assert sha256sum(root / record.checkpoint) == record.checkpoint_sha256, name
        assert record.checkpoint.removeprefix("hartutor/assets/checkpoints/") == f"{name}.pt"


def test_builder_arguments_follow_the_annotations():
    args = builder_arguments("i3d")
    assert "preset" not in args and "num_classes" not in args
    assert args["dropout"] is float and args["bn_scale_trainable"] is bool
    # A sequence-typed argument cannot be given on a command line: it is not offered.
    assert "weights" not in builder_arguments("i3d_xception_fusion")
    assert parse_builder_arguments(
        "i3d", ["dropout=0.25", "temporal_padding=replicate", "bn_scale_trainable=false"]
    ) == {"dropout": 0.25, "temporal_padding": "replicate", "bn_scale_trainable": False}


@pytest.mark.parametrize(
    "items, message",
    [
        (["colour=red"], "has no argument 'colour'; it takes: dropout (float), temporal_padding"),
        (["in_channels=2"], "in_channels follows the data"),
        (["temporal_padding=mirror"], "choose one of zeros | replicate"),
        (["dropout=lots"], "not a valid float"),
        (["dropout=nan"], "not a number"),
        (["preset=paper"], "set preset with --preset"),
        (["dropout"], "wants KEY=VALUE"),
        (["dropout=0.1", "dropout=0.2"], "given twice"),
    ],
)
def test_bad_builder_arguments_are_refused(items, message):
    with pytest.raises(ValueError) as err:
        parse_builder_arguments("i3d", items)
    assert message in str(err.value)


def test_train_arg_reaches_the_model_and_its_checkpoint(tmp_path, capsys):
    out = tmp_path / "c3d.pt"
    code = main(
        ["--threads", "1", "train", "c3d", "--arg", "dropout=0.3", "--epochs", "1",
         "--clips", "16", "--val-clips", "13", "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    model, meta = load_checkpoint(out)
    assert meta["kwargs"] == {"preset": "tiny", "num_classes": 13, "dropout": 0.3}
    dropouts = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(p == 0.3 for p in dropouts)


def test_train_arg_errors_are_one_line_before_training(tmp_path, capsys):
    out = tmp_path / "c3d.pt"
    assert main(["train", "c3d", "--arg", "depth=3", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no argument 'depth'" in err
    assert not out.exists()
    # A value the builder takes but that would build an enormous model is refused on meta.
    assert main(["train", "lrcn", "--arg", "hidden_size=900000", "--out", str(out)]) == 2
    assert "parameters" in capsys.readouterr().err and not out.exists()
