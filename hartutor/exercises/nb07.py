"""Checkers of notebook 07 (the late fusion's rules and weights, Table 1's scoring, Table 2's
parameter counts)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache

import numpy as np
import torch

from hartutor.course import exercise
from hartutor.exercises._common import as_flag, as_mapping, as_number, as_pair, close

RULES = ("logit_sum", "softmax_mean")


def weighted_like_sharpened(
    streams: Mapping[str, torch.Tensor], *, doubled: str = "xception"
) -> dict[str, bool]:
    """For each rule: does weighting stream ``doubled`` 2 (the others 1) fuse exactly like
    doubling its logits (equal weights)?"""
    from hartutor.models.fusion import fuse_scores

    weights = {name: 2.0 if name == doubled else 1.0 for name in streams}
    sharpened = {name: 2 * z if name == doubled else z for name, z in streams.items()}
    same = {}
    for rule in RULES:
        a = fuse_scores(streams, weights=weights, mode=rule).probabilities
        b = fuse_scores(sharpened, mode=rule).probabilities
        same[rule] = bool(torch.allclose(a, b, atol=1e-6))
    return same


@exercise(
    "07-weight-temperature",
    "Say for each rule whether weighting Xception 2 (I3D 1) fuses exactly like doubling "
    "Xception's logits: {'logit_sum': True or False, 'softmax_mean': True or False}.",
)
def _weight_temperature(
    answer: object, *, streams: Mapping[str, torch.Tensor], doubled: str = "xception"
) -> str | None:
    if not isinstance(answer, Mapping) or set(answer) != set(RULES):
        return f"Give a dict with the keys {list(RULES)}, each True or False."
    flags = {rule: as_flag(answer[rule], f"answer[{rule!r}]") for rule in RULES}
    problems = [f for f in flags.values() if isinstance(f, str)]
    if problems:
        return problems[0]  # type: ignore[return-value]
    truth = weighted_like_sharpened(streams, doubled=doubled)
    if flags == truth:
        return None
    if flags["logit_sum"] != truth["logit_sum"]:
        return (
            "Not for the logit sum: write its fused logits as w_i3d * z_i3d + w_x * z_x and "
            "compare w_x = 2 with w_x = 1 and 2 * z_x; or compare the two fuse_scores(..., "
            "mode='logit_sum').probabilities with torch.allclose."
        )
    return (
        "Not for the softmax mean: there a weight multiplies a stream's probabilities after "
        "its softmax, while doubling its logits changes the softmax itself. Compare the two "
        "fuse_scores(..., mode='softmax_mean').probabilities with torch.allclose."
    )


def fused_top1(
    streams: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    w_i3d: float,
    clips: slice = slice(None),
    *,
    mode: str = "softmax_mean",
) -> float:
    """Top-1 of the fusion with I3D weighted ``w_i3d`` (Xception ``1 - w_i3d``) on ``clips``."""
    from hartutor.models.fusion import fuse_scores

    fused = fuse_scores(
        {name: z[clips] for name, z in streams.items()},
        weights={"i3d": w_i3d, "xception": 1 - w_i3d},
        mode=mode,  # type: ignore[arg-type]
    )
    return (fused.probabilities.argmax(1) == labels[clips]).float().mean().item()


def best_weights(
    streams: Mapping[str, torch.Tensor], labels: torch.Tensor, grid: Iterable[float], clips: slice
) -> list[float]:
    """The weights of ``grid`` whose fusion scores highest on ``clips`` (ties all kept)."""
    scores = {float(w): fused_top1(streams, labels, float(w), clips) for w in grid}
    top = max(scores.values())
    return [w for w, s in scores.items() if s == top]


EVEN, ODD, ALL = slice(0, None, 2), slice(1, None, 2), slice(None)


@exercise(
    "07-honest-weight",
    "Give (w_i3d, top-1): the I3D weight of GRID that is best on the even-numbered clips "
    "(softmax mean), and the fusion's top-1 with it on the odd-numbered clips, as a fraction.",
)
def _honest_weight(
    answer: object,
    *,
    streams: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    grid: Sequence[float],
) -> str | None:
    values = as_pair(answer, "w_i3d, top-1 on the odd clips")
    if isinstance(values, str):
        return values
    w, top1 = values
    on_grid = [float(g) for g in grid if close(w, float(g), rel=0, abs_=1e-9)]
    if not on_grid:
        return "Choose w_i3d among the values of GRID, as section 4's sweep does."
    w = on_grid[0]
    chosen = best_weights(streams, labels, grid, EVEN)
    if w not in chosen:
        if w in best_weights(streams, labels, grid, ALL):
            return (
                "That weight is the best on all the clips, the ones you report on too: choose "
                "it on the even-numbered clips only (slice(0, None, 2))."
            )
        if w in best_weights(streams, labels, grid, ODD):
            return (
                "That weight is the best on the odd clips, the ones you report on: choose it "
                "on the even-numbered clips, then report on the odd ones."
            )
        return "That weight is not the best of GRID on the even-numbered clips (softmax mean)."
    truth = fused_top1(streams, labels, w, ODD)
    if close(top1, truth, rel=0, abs_=1e-6):
        return None
    if close(top1, 100 * truth, rel=0, abs_=1e-4):
        return "Give the top-1 as a fraction, not a percentage."
    if close(top1, fused_top1(streams, labels, w, EVEN), rel=0, abs_=1e-6):
        return (
            "That is the top-1 on the even clips, where the weight was chosen, the flattering "
            "figure: report it on the odd-numbered clips."
        )
    if close(top1, fused_top1(streams, labels, w, ALL), rel=0, abs_=1e-6):
        return "That is the top-1 on all the clips: report it on the odd-numbered ones only."
    return (
        "The weight is right; score the softmax-mean fusion with it on the odd-numbered clips "
        "(slice(1, None, 2)) against their labels."
    )


def cricket_at_rank(rank: int, label_set: str, kinetics_labels: Sequence[str]) -> dict[int, int]:
    """Clips correct at k = 1, 5, 10 for one CricketShot clip whose Kinetics scores put
    ``playing cricket`` at ``rank``, under classes unrelated to any UCF101 class."""
    from hartutor.labels import kinetics_mapping, ucf101_topk_from_kinetics

    mapped = {k for targets in kinetics_mapping(label_set).values() for k in targets}
    decoys = [name for name in kinetics_labels if name not in mapped]
    scores = np.zeros((1, len(kinetics_labels)))
    for position, name in enumerate(decoys[: rank - 1]):
        scores[0, list(kinetics_labels).index(name)] = 1.0 - 0.1 * position
    scores[0, list(kinetics_labels).index("playing cricket")] = 1.0 - 0.1 * (rank - 1)
    score = ucf101_topk_from_kinetics(
        scores, ["CricketShot"], label_set=label_set, k=(1, 5, 10), kinetics_labels=kinetics_labels
    )
    return dict(score.correct)


def scorable_only_with(label_set: str, other: str) -> set[str]:
    """UCF101 classes with a ``label_set`` equivalent and none in ``other``."""
    from hartutor.labels import UCF101_CLASSES, kinetics_mapping

    ours, theirs = kinetics_mapping(label_set), kinetics_mapping(other)
    return {c for c in UCF101_CLASSES if ours[c] and not theirs[c]}


@exercise(
    "07-cricket-rank",
    "Give ({1: correct, 5: correct, 10: correct}, [UCF101 classes scorable with Kinetics-600 "
    "but not with Kinetics-400]) for a CricketShot clip whose scores put playing cricket 6th.",
)
def _cricket_rank(answer: object, *, label_set: str, kinetics_labels: Sequence[str]) -> str | None:
    if not isinstance(answer, tuple | list) or len(answer) != 2:
        return "Give a pair: ({1: ..., 5: ..., 10: ...}, [class names])."
    correct, classes = answer
    if not isinstance(correct, Mapping) or {str(k) for k in correct} != {"1", "5", "10"}:
        return "The first item should be a dict {1: ..., 5: ..., 10: ...} (1 correct, 0 not)."
    flags = {str(k): int(v) if isinstance(v, bool) else v for k, v in correct.items()}
    counts = as_mapping(flags, ["1", "5", "10"], "Each count")
    if isinstance(counts, str):
        return counts
    truth = cricket_at_rank(6, label_set, kinetics_labels)
    if any(int(counts[str(k)]) != truth[k] for k in truth):
        if counts["5"] and not truth[5]:
            return "Top-5 counts a clip when its class is among the 5 highest scores: 6th is not."
        if not counts["10"] and truth[10]:
            return "Top-10 counts a clip whose class is among the 10 highest scores: 6th is."
        return "Ranked 6th: top-k counts the clip when 6 <= k (1 correct, 0 not)."
    if isinstance(classes, str) or not isinstance(classes, Iterable):
        return "The second item should be a list of UCF101 class names."
    given = {str(c) for c in classes}
    only_600 = scorable_only_with("kinetics600", "kinetics400")
    if given == only_600:
        return None
    if given == scorable_only_with("kinetics400", "kinetics600"):
        return "Those are scorable with Kinetics-400 only; the question asks the reverse."
    if given >= only_600:
        return (
            f"{len(given - only_600)} of your classes do not belong: keep the classes with a "
            "Kinetics-600 equivalent AND none in Kinetics-400 (kinetics_mapping(...)[c] empty)."
        )
    return (
        f"You have {len(given & only_600)} of the {len(only_600)} classes and "
        f"{len(given - only_600)} that do not belong: compare kinetics_mapping('kinetics600')[c] "
        "and kinetics_mapping('kinetics400')[c] for every c in UCF101_CLASSES."
    )


@cache
def _count(name: str, num_classes: int) -> int:
    """Parameters of the paper-size model ``name`` at ``num_classes`` (counted on the ``meta``
    device: shapes only)."""
    from hartutor.models import build_model
    from hartutor.params import count_parameters

    with torch.device("meta"):
        return count_parameters(build_model(name, num_classes=num_classes))


def fusion_params(num_classes: int) -> int:
    """Parameters of the paper-size I3D + Xception fusion at ``num_classes``."""
    return _count("i3d_xception_fusion", num_classes)


@exercise(
    "07-k600-params",
    "Give the number of parameters of the I3D + Xception fusion (paper size) for the 600 "
    "Kinetics classes.",
)
def _k600_params(answer: object, *, num_classes: int = 600) -> str | None:
    value = as_number(answer, "The count")
    if isinstance(value, str):
        return value
    truth = fusion_params(num_classes)
    if value == truth:
        return None
    if value == fusion_params(101):
        return "That is the fusion at UCF101's 101 classes: each stream's classifier changes."
    if value == truth - 2 * num_classes:
        return "Each class also has a bias in each stream's classifier: count it."
    per_class = {name: _count(name, 2) - _count(name, 1) for name in ("i3d", "xception")}
    if abs(value - truth) in {(num_classes - 101) * n for n in per_class.values()}:
        return "Both streams' classifiers grow with the classes, not only one of them."
    if value in (fusion_params(400), fusion_params(1000)):
        return f"Count the fusion at {num_classes} classes for both streams."
    return (
        "Each stream is a backbone (all its parameters minus its classifier's) plus a "
        "classifier with (features + 1) parameters per class: compute it from section 6's "
        f"counts (ucf) at {num_classes} classes."
    )
