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
