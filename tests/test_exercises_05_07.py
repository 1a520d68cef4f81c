"""The checkers of notebooks 05-07 (and 07b) accept the right answer and explain a wrong one.

Each test gives a checker the right answer computed here, then wrong ones (typical mistakes)
and reads the hint it prints: a checker that accepts anything fails these tests.
"""

from __future__ import annotations

import numpy as np
import torch
from exercise_checks import refused

import hartutor  # noqa: F401  (first: torchvision and timm import cleanly after it)
from hartutor.course import check, exercises
from hartutor.synth.world import TARGET_CLASSES
from hartutor.transfer import FusionReport


def _report() -> FusionReport:
    labels = torch.arange(len(TARGET_CLASSES)).repeat(2)
    temporal = torch.nn.functional.one_hot(labels, len(TARGET_CLASSES)).float()
    frame = temporal.clone()
    temporal[TARGET_CLASSES.index("drink")] = 0.0
    temporal[TARGET_CLASSES.index("drink"), 0] = 1.0  # one appearance clip wrong of six
    return FusionReport(TARGET_CLASSES, labels, {"temporal": temporal, "frame": frame})


def test_every_exercise_of_these_notebooks_is_registered():
    ids = set(exercises())
    for notebook in ("05-", "06-", "07-", "07b-"):
        assert any(i.startswith(notebook) for i in ids), notebook
    assert "07-appearance-gap" not in ids  # moved to notebook 07b with the transfer world


def test_07b_appearance_gap_accepts_points_and_refuses_fractions_and_signs(capsys):
    report = _report()
    truth = 100 * (
        report.accuracy("frame", "appearance") - report.accuracy("temporal", "appearance")
    )
    assert abs(truth - 100 / 6) < 1e-4
    assert check("07b-appearance-gap", truth, quiet=True, report=report)
    assert "percentage points" in refused(capsys, "07b-appearance-gap", truth / 100, report=report)
    assert "sign" in refused(capsys, "07b-appearance-gap", -truth, report=report)
    assert "report.accuracy" in refused(capsys, "07b-appearance-gap", 3.0, report=report)
    assert "number" in refused(capsys, "07b-appearance-gap", "a lot", report=report)
    assert not check("07b-appearance-gap", ..., report=report)  # not answered: no error


GRID = np.round(np.linspace(0, 1, 21), 2)


def _streams(
    seed: int = 19, n: int = 40, k: int = 5
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Made-up logits of a confident, often wrong I3D and a weak Xception on ``n`` clips."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=generator)
    onehot = torch.nn.functional.one_hot(labels, k).float()
    i3d = 4 * torch.randn(n, k, generator=generator) + 3 * onehot
    xception = torch.randn(n, k, generator=generator) + onehot
    return {"i3d": i3d, "xception": xception}, labels


def test_07_weight_temperature_tells_the_rules_apart(capsys):
    streams, _ = _streams()
    z = streams["xception"]
    # the truth, computed here without the checker's helper
    from hartutor.models.fusion import fuse_scores

    def same(mode: str) -> bool:
        weighted = fuse_scores(streams, weights={"i3d": 1.0, "xception": 2.0}, mode=mode)
        doubled = fuse_scores({"i3d": streams["i3d"], "xception": 2 * z}, mode=mode)
        return torch.allclose(weighted.probabilities, doubled.probabilities, atol=1e-6)

    right = {"logit_sum": same("logit_sum"), "softmax_mean": same("softmax_mean")}
    assert right == {"logit_sum": True, "softmax_mean": False}
    assert check("07-weight-temperature", right, quiet=True, streams=streams)
    assert check("07-weight-temperature", {k: np.bool_(v) for k, v in right.items()},
                 quiet=True, streams=streams)  # fmt: skip
    both = {"logit_sum": True, "softmax_mean": True}
    assert "after its softmax" in refused(capsys, "07-weight-temperature", both, streams=streams)
    swapped = {"logit_sum": False, "softmax_mean": True}
    assert "logit sum" in refused(capsys, "07-weight-temperature", swapped, streams=streams)
    assert "keys" in refused(capsys, "07-weight-temperature", {"logit_sum": True}, streams=streams)
    not_flags = {"logit_sum": "yes", "softmax_mean": "no"}
    assert "True or False" in refused(capsys, "07-weight-temperature", not_flags, streams=streams)


def test_07_honest_weight_refuses_the_flattering_choices(capsys):
    streams, labels = _streams()
    context = {"streams": streams, "labels": labels, "grid": GRID}
    even, odd = slice(0, None, 2), slice(1, None, 2)

    def top1(w: float, clips: slice = slice(None)) -> float:
        from hartutor.models.fusion import fuse_scores

        fused = fuse_scores(
            {n: s[clips] for n, s in streams.items()}, weights={"i3d": w, "xception": 1 - w}
        )
        return (fused.probabilities.argmax(1) == labels[clips]).float().mean().item()

    def first_best(clips: slice) -> float:
        scores = [top1(float(w), clips) for w in GRID]
        return float(GRID[scores.index(max(scores))])

    w_even, w_all, w_odd = first_best(even), first_best(slice(None)), first_best(odd)
    # the case separates every mistake below (made-up logits, seed chosen for it)
    assert len({w_even, w_all, w_odd}) == 3
    assert len({top1(w_even, even), top1(w_even, odd), top1(w_even)}) == 3
    assert check("07-honest-weight", (w_even, top1(w_even, odd)), quiet=True, **context)
    assert "all the clips" in refused(
        capsys, "07-honest-weight", (w_all, top1(w_all, odd)), **context
    )
    assert "odd clips" in refused(capsys, "07-honest-weight", (w_odd, top1(w_odd, odd)), **context)
    assert "flattering" in refused(
        capsys, "07-honest-weight", (w_even, top1(w_even, even)), **context
    )
    assert "all the clips" in refused(capsys, "07-honest-weight", (w_even, top1(w_even)), **context)
    percent = (w_even, 100 * top1(w_even, odd))
    assert "fraction" in refused(capsys, "07-honest-weight", percent, **context)
    assert "GRID" in refused(capsys, "07-honest-weight", (0.33, 0.5), **context)
    assert "pair" in refused(capsys, "07-honest-weight", 0.5, **context)


def test_07_cricket_rank_scores_rank_six_and_the_kinetics600_only_classes(capsys):
    from hartutor.labels import UCF101_CLASSES, kinetics400, kinetics_mapping

    names = kinetics400()
    context = {"label_set": "kinetics400", "kinetics_labels": names}
    k600, k400 = kinetics_mapping("kinetics600"), kinetics_mapping("kinetics400")
    only_600 = [c for c in UCF101_CLASSES if k600[c] and not k400[c]]
    only_400 = [c for c in UCF101_CLASSES if k400[c] and not k600[c]]
    assert only_600 and only_400
    right = {1: 0, 5: 0, 10: 1}  # ranked 6th: counted from top-6 on
    assert check("07-cricket-rank", (right, only_600), quiet=True, **context)
    flags = {1: False, 5: False, 10: True}
    assert check("07-cricket-rank", (flags, list(reversed(only_600))), quiet=True, **context)
    top5 = {1: 0, 5: 1, 10: 1}
    assert "6th is not" in refused(capsys, "07-cricket-rank", (top5, only_600), **context)
    none = {1: 0, 5: 0, 10: 0}
    assert "6th is" in refused(capsys, "07-cricket-rank", (none, only_600), **context)
    assert "reverse" in refused(capsys, "07-cricket-rank", (right, only_400), **context)
    both = only_600 + only_400
    assert "do not belong" in refused(capsys, "07-cricket-rank", (right, both), **context)
    mapped = [c for c in UCF101_CLASSES if k600[c]]
    assert "do not belong" in refused(capsys, "07-cricket-rank", (right, mapped), **context)
    assert "You have" in refused(capsys, "07-cricket-rank", (right, only_600[:-1]), **context)
    assert "pair" in refused(capsys, "07-cricket-rank", right, **context)
    assert "first item" in refused(capsys, "07-cricket-rank", ({1: 0, 5: 0}, only_600), **context)


def test_07_k600_params_counts_both_classifiers_with_their_biases(capsys):
    from hartutor.models import build_model
    from hartutor.params import count_parameters

    def count(name: str, classes: int) -> int:
        with torch.device("meta"):
            return count_parameters(build_model(name, num_classes=classes))

    truth = count("i3d", 600) + count("xception", 600)  # the fusion adds no parameters
    assert truth == count("i3d_xception_fusion", 600)
    assert check("07-k600-params", truth, quiet=True)
    assert check("07-k600-params", float(truth), quiet=True)
    assert "101" in refused(capsys, "07-k600-params", count("i3d_xception_fusion", 101))
    assert "bias" in refused(capsys, "07-k600-params", truth - 2 * 600)
    one_stream = count("i3d", 600) + count("xception", 101)
    assert "Both streams" in refused(capsys, "07-k600-params", one_stream)
    assert "backbone" in refused(capsys, "07-k600-params", 31_000_000)
    assert "number" in refused(capsys, "07-k600-params", "many")


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
