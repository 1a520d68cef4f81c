"""The checkers of notebooks 05-07 accept the right answer and explain a wrong one."""

from __future__ import annotations

import torch

from hartutor.course import check
from hartutor.synth.world import TARGET_CLASSES
from hartutor.transfer import FusionReport


def _report() -> FusionReport:
    labels = torch.arange(len(TARGET_CLASSES)).repeat(2)
    temporal = torch.nn.functional.one_hot(labels, len(TARGET_CLASSES)).float()
    frame = temporal.clone()
    temporal[TARGET_CLASSES.index("drink")] = 0.0
    temporal[TARGET_CLASSES.index("drink"), 0] = 1.0  # one appearance clip wrong of six
    return FusionReport(TARGET_CLASSES, labels, {"temporal": temporal, "frame": frame})


def test_07_appearance_gap_accepts_points_and_refuses_fractions_and_signs(capsys):
    report = _report()
    truth = 100 * (
        report.accuracy("frame", "appearance") - report.accuracy("temporal", "appearance")
    )
    assert abs(truth - 100 / 6) < 1e-4
    assert check("07-appearance-gap", truth, quiet=True, report=report)
    assert not check("07-appearance-gap", truth / 100, report=report)
    assert "percentage points" in capsys.readouterr().out
    assert not check("07-appearance-gap", -truth, report=report)
    assert "sign" in capsys.readouterr().out
    assert not check("07-appearance-gap", 3.0, report=report)
    assert "report.accuracy" in capsys.readouterr().out
    assert not check("07-appearance-gap", ..., report=report)  # not answered: no error


def test_06_images_named_counts_and_explains(capsys):
    labels = torch.tensor([0, 1, 2, 3])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 0, 0]), 4).float()
    assert check("06-images-named", 2, quiet=True, logits=logits, labels=labels)
    assert not check("06-images-named", 0.5, logits=logits, labels=labels)
    assert "fraction" in capsys.readouterr().out
    assert not check("06-images-named", 3, logits=logits, labels=labels)
    assert "compare" in capsys.readouterr().out


def test_05_within_pair_keeps_only_clips_landing_in_the_pair(capsys):
    names = ["walk", "raise_to_face", "lower_from_face"]
    labels = torch.tensor([1, 1, 2, 2])
    predicted = torch.tensor(
        [1, 0, 1, 2]
    )  # one right, one outside the pair, one swapped, one right
    truth = 2 / 3
    assert check(
        "05-within-pair", truth, quiet=True, predicted=predicted, labels=labels, names=names
    )
    assert not check("05-within-pair", 0.5, predicted=predicted, labels=labels, names=names)
    assert "keep only" in capsys.readouterr().out
    assert not check("05-within-pair", 100 * truth, predicted=predicted, labels=labels, names=names)
    assert "fraction" in capsys.readouterr().out
