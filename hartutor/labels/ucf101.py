"""UCF101 class names and their Kinetics equivalents, for scoring Kinetics models on UCF101.

:data:`UCF101_CLASSES` are the 101 official names in the order of the dataset's
``classInd.txt`` (index = position, 0-based here; the file is 1-based), spelled as in the
dataset (``HandstandPushups`` in the list, although its video files say ``HandStand``).

:data:`UCF101_TO_KINETICS400` / :data:`UCF101_TO_KINETICS600` give, for each UCF101
class, the Kinetics classes that are *the same activity* (e.g. ``CricketShot`` ->
``playing cricket``, ``Kayaking`` -> ``canoeing or kayaking``). Only real equivalents are
mapped: a Kinetics class that is merely related (``PizzaTossing`` vs ``making pizza``,
``HorseRace`` vs ``riding or walking with horse``, ``Mixing`` vs ``making a cake``) is
left out, and classes with no Kinetics counterpart (the gymnastics apparatus, ``Rowing``,
``Rafting``, ``Nunchucks``, ``YoYo``, the Indian instruments, ...) map to nothing. A
Kinetics model can therefore be scored only on the mapped classes;
:func:`ucf101_topk_from_kinetics` says how many clips and classes that was.
A few UCF101 classes are a narrower form of a broader Kinetics class (``BoxingSpeedBag``
-> ``punching bag``, ``WallPushups`` -> ``push up``, ``IceDancing`` -> ``ice skating``,
``SumoWrestling`` -> ``wrestling``); these are mapped because the Kinetics class covers
the activity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "UCF101_CLASSES",
    "UCF101_TO_KINETICS400",
    "UCF101_TO_KINETICS600",
    "KineticsTransferScore",
    "kinetics_mapping",
    "topk_through_mapping",
    "ucf101_topk_from_kinetics",
]

UCF101_CLASSES: tuple[str, ...] = (
    "ApplyEyeMakeup",
    "ApplyLipstick",
    "Archery",
    "BabyCrawling",
    "BalanceBeam",
    "BandMarching",
    "BaseballPitch",
    "Basketball",
    "BasketballDunk",
    "BenchPress",
    "Biking",
    "Billiards",
    "BlowDryHair",
    "BlowingCandles",
    "BodyWeightSquats",
    "Bowling",
    "BoxingPunchingBag",
    "BoxingSpeedBag",
    "BreastStroke",
    "BrushingTeeth",
    "CleanAndJerk",
    "CliffDiving",
    "CricketBowling",
    "CricketShot",
    "CuttingInKitchen",
    "Diving",
    "Drumming",
    "Fencing",
    "FieldHockeyPenalty",
    "FloorGymnastics",
    "FrisbeeCatch",
    "FrontCrawl",
    "GolfSwing",
    "Haircut",
    "Hammering",
    "HammerThrow",
    "HandstandPushups",
    "HandstandWalking",
    "HeadMassage",
    "HighJump",
    "HorseRace",
    "HorseRiding",
    "HulaHoop",
    "IceDancing",
    "JavelinThrow",
    "JugglingBalls",
    "JumpingJack",
    "JumpRope",
    "Kayaking",
    "Knitting",
    "LongJump",
    "Lunges",
    "MilitaryParade",
    "Mixing",
    "MoppingFloor",
    "Nunchucks",
    "ParallelBars",
    "PizzaTossing",
    "PlayingCello",
    "PlayingDaf",
    "PlayingDhol",
    "PlayingFlute",
    "PlayingGuitar",
    "PlayingPiano",
    "PlayingSitar",
    "PlayingTabla",
    "PlayingViolin",
    "PoleVault",
    "PommelHorse",
    "PullUps",
    "Punch",
    "PushUps",
    "Rafting",
    "RockClimbingIndoor",
    "RopeClimbing",
    "Rowing",
    "SalsaSpin",
    "ShavingBeard",
    "Shotput",
    "SkateBoarding",
    "Skiing",
    "Skijet",
    "SkyDiving",
    "SoccerJuggling",
    "SoccerPenalty",
    "StillRings",
    "SumoWrestling",
    "Surfing",
    "Swing",
    "TableTennisShot",
    "TaiChi",
    "TennisSwing",
    "ThrowDiscus",
    "TrampolineJumping",
    "Typing",
    "UnevenBars",
    "VolleyballSpiking",
    "WalkingWithDog",
    "WallPushups",
    "WritingOnBoard",
    "YoYo",
)

# Equivalents present in both Kinetics-400 and Kinetics-600 (names identical in both).
_COMMON: dict[str, tuple[str, ...]] = {
    "Archery": ("archery",),
    "BabyCrawling": ("crawling baby",),
    "BandMarching": ("marching",),
    "BaseballPitch": ("catching or throwing baseball",),
    "Basketball": ("shooting basketball", "playing basketball"),
    "BasketballDunk": ("dunking basketball",),
    "BenchPress": ("bench pressing",),
    "BlowingCandles": ("blowing out candles",),
    "BodyWeightSquats": ("squat",),
    "Bowling": ("bowling",),
    "BoxingPunchingBag": ("punching bag",),
    "BoxingSpeedBag": ("punching bag",),
    "BreastStroke": ("swimming breast stroke",),
    "BrushingTeeth": ("brushing teeth",),
    "CleanAndJerk": ("clean and jerk",),
    "CliffDiving": ("diving cliff",),
    "CricketBowling": ("playing cricket",),
    "CricketShot": ("playing cricket",),
    "Diving": ("springboard diving",),
    "Drumming": ("playing drums",),
    "FloorGymnastics": ("gymnastics tumbling",),
    "FrisbeeCatch": ("catching or throwing frisbee",),
    "GolfSwing": ("golf driving", "golf chipping"),
    "Haircut": ("getting a haircut",),
    "HammerThrow": ("hammer throw",),
    "HeadMassage": ("massaging person's head",),
    "HighJump": ("high jump",),
    "HorseRiding": ("riding or walking with horse",),
    "HulaHoop": ("hula hooping",),
    "IceDancing": ("ice skating",),
    "JavelinThrow": ("javelin throw",),
    "JugglingBalls": ("juggling balls",),
    "JumpRope": ("skipping rope",),
    "Kayaking": ("canoeing or kayaking",),
    "Knitting": ("knitting",),
    "LongJump": ("long jump",),
    "Lunges": ("lunge",),
    "MilitaryParade": ("marching",),
    "MoppingFloor": ("mopping floor",),
    "PlayingCello": ("playing cello",),
    "PlayingFlute": ("playing flute",),
    "PlayingGuitar": ("playing guitar",),
    "PlayingPiano": ("playing piano",),
    "PlayingViolin": ("playing violin",),
    "PoleVault": ("pole vault",),
    "PullUps": ("pull ups",),
    "Punch": ("punching person (boxing)",),
    "PushUps": ("push up",),
    "RockClimbingIndoor": ("rock climbing",),
    "RopeClimbing": ("climbing a rope",),
    "SalsaSpin": ("salsa dancing",),
    "ShavingBeard": ("trimming or shaving beard",),
    "Shotput": ("shot put",),
    "SkateBoarding": ("skateboarding",),
    "Skijet": ("jetskiing",),
    "SkyDiving": ("skydiving",),
    "SoccerJuggling": ("juggling soccer ball",),
    "SoccerPenalty": ("shooting goal (soccer)",),
    "SumoWrestling": ("wrestling",),
    "Surfing": ("surfing water",),
    "Swing": ("swinging on something",),
    "TaiChi": ("tai chi",),
    "TennisSwing": ("playing tennis",),
    "ThrowDiscus": ("throwing discus",),
    "TrampolineJumping": ("bouncing on trampoline",),
    "VolleyballSpiking": ("playing volleyball",),
    "WalkingWithDog": ("walking the dog",),
    "WallPushups": ("push up",),
    "WritingOnBoard": ("writing",),
}

# Kinetics-400 only: classes renamed or dropped in Kinetics-600.
_K400_ONLY: dict[str, tuple[str, ...]] = {
    "Biking": ("riding a bike", "riding mountain bike"),
    "PlayingGuitar": ("playing guitar", "strumming guitar"),
    "Skiing": ("skiing (not slalom or crosscountry)", "skiing slalom", "skiing crosscountry"),
    "Typing": ("using computer",),
}

# Kinetics-600 only: classes added in Kinetics-600 (or renamed from Kinetics-400).
_K600_ONLY: dict[str, tuple[str, ...]] = {
    "ApplyEyeMakeup": ("putting on eyeliner", "putting on mascara"),
    "ApplyLipstick": ("putting on lipstick",),
    "Biking": ("riding a bike",),
    "BlowDryHair": ("blowdrying hair",),
    "CuttingInKitchen": ("chopping vegetables",),
    "Fencing": ("fencing (sport)",),
    "FieldHockeyPenalty": ("playing field hockey",),
    "FrontCrawl": ("swimming front crawl",),
    "JumpingJack": ("jumping jacks",),
    "Skiing": ("skiing slalom", "skiing crosscountry", "skiing mono"),
    "TableTennisShot": ("playing ping pong",),
}


def _complete(mapping: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    return {name: tuple(mapping.get(name, ())) for name in UCF101_CLASSES}


UCF101_TO_KINETICS400: dict[str, tuple[str, ...]] = _complete({**_COMMON, **_K400_ONLY})
UCF101_TO_KINETICS600: dict[str, tuple[str, ...]] = _complete({**_COMMON, **_K600_ONLY})


def kinetics_mapping(label_set: str) -> dict[str, tuple[str, ...]]:
    """The UCF101 -> Kinetics mapping for ``"kinetics400"`` or ``"kinetics600"``."""
    if label_set == "kinetics400":
        return dict(UCF101_TO_KINETICS400)
    if label_set == "kinetics600":
        return dict(UCF101_TO_KINETICS600)
    raise ValueError(f"label_set must be 'kinetics400' or 'kinetics600', got {label_set!r}")


@dataclass(frozen=True)
class KineticsTransferScore:
    """Top-k accuracy of a Kinetics model on UCF101 clips, over the scorable clips only."""

    accuracy: dict[int, float]  # k -> fraction of scorable clips correct at k (nan if none)
    correct: dict[int, int]  # k -> number of scorable clips correct at k
    num_clips: int
    num_scorable_clips: int  # clips whose UCF101 class has a Kinetics equivalent
    num_classes_present: int  # distinct UCF101 classes among the clips
    num_classes_scorable: int  # of those, how many have a Kinetics equivalent
    label_set: str
    target_set: str = "UCF101"
    #: per clip: the best rank (0-based) of a mapped source class, -1 when not scorable
    best_rank: tuple[int, ...] = ()

    def __str__(self) -> str:
        accs = ", ".join(f"top-{k} {acc:.1%}" for k, acc in self.accuracy.items())
        return (
            f"{accs} on {self.num_scorable_clips}/{self.num_clips} clips "
            f"({self.num_classes_scorable}/{self.num_classes_present} {self.target_set} classes "
            f"have a {self.label_set} equivalent)"
        )


def ucf101_topk_from_kinetics(
    kinetics_probs: np.ndarray | Sequence[Sequence[float]],
    ucf_labels: np.ndarray | Sequence[int] | Sequence[str],
    *,
    label_set: str = "kinetics600",
    k: Sequence[int] = (1, 5),
    kinetics_labels: Sequence[str] | None = None,
) -> KineticsTransferScore:
    """Score a Kinetics classifier's predictions on UCF101 clips, with no fine-tuning.

    ``kinetics_probs``: ``(N, K)`` scores (probabilities or logits: only the ranking is
    used) in the order of the Kinetics label list. ``ucf_labels``: ``(N,)`` UCF101 class
    indices (0-based, :data:`UCF101_CLASSES` order) or names. A clip is correct at ``k``
    when any Kinetics class mapped to its UCF101 class is among the ``k`` highest scores.
    Clips of unmapped classes are not scored; the result says how many were.
    ``kinetics_labels`` defaults to :func:`hartutor.labels.kinetics400` / ``kinetics600``.
    """
    probs = np.asarray(kinetics_probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"kinetics_probs must be (N, K), got shape {probs.shape}")
    if kinetics_labels is None:
        from hartutor import labels as _labels

        kinetics_labels = _labels.load_label_set(label_set)
    if probs.shape[1] != len(kinetics_labels):
        raise ValueError(
            f"kinetics_probs has {probs.shape[1]} columns but {label_set} has "
            f"{len(kinetics_labels)} classes"
        )
    return topk_through_mapping(
        probs,
        ucf_labels,
        mapping=kinetics_mapping(label_set),
        target_classes=UCF101_CLASSES,
        source_labels=kinetics_labels,
        k=k,
        label_set=label_set,
        target_set="UCF101",
    )


def topk_through_mapping(
    source_probs: np.ndarray | Sequence[Sequence[float]],
    target_labels: np.ndarray | Sequence[int] | Sequence[str],
    *,
    mapping: Mapping[str, Sequence[str]],
    target_classes: Sequence[str],
    source_labels: Sequence[str],
    k: Sequence[int] = (1, 5),
    label_set: str = "source",
    target_set: str = "target",
) -> KineticsTransferScore:
    """Top-k of a source-label classifier on target clips, through a target -> source mapping.

    The scorer behind :func:`ucf101_topk_from_kinetics`, for any pair of label sets (the
    synthetic world's video source and target use it too). ``target_labels``: indices into
    ``target_classes`` or names. A clip is correct at ``k`` when a source class mapped to its
    class is among the ``k`` highest of ``source_probs`` (N, len(source_labels)); clips of
    unmapped classes are not scored.
    """
    probs = np.asarray(source_probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(source_labels):
        raise ValueError(
            f"source scores must be (N, {len(source_labels)}) for {label_set}, got {probs.shape}"
        )
    labels_arr = np.asarray(target_labels)
    if labels_arr.shape != (probs.shape[0],):
        raise ValueError(
            f"target labels must have shape ({probs.shape[0]},), got {labels_arr.shape}"
        )
    if labels_arr.dtype.kind in "US":
        index_of = {name: i for i, name in enumerate(target_classes)}
        unknown = sorted({str(x) for x in labels_arr if str(x) not in index_of})
        if unknown:
            raise ValueError(f"not {target_set} class names: {unknown[:5]}")
        labels_arr = np.array([index_of[str(x)] for x in labels_arr], dtype=np.int64)
    labels_arr = labels_arr.astype(np.int64)
    if labels_arr.size and (labels_arr.min() < 0 or labels_arr.max() >= len(target_classes)):
        raise ValueError(f"target labels must be in [0, {len(target_classes)})")
    ks = sorted({int(x) for x in k})
    if not ks or ks[0] < 1:
        raise ValueError(f"k must be positive integers, got {k}")

    column = {name: i for i, name in enumerate(source_labels)}
    targets: list[list[int]] = []
    for name in target_classes:
        missing = [m for m in mapping[name] if m not in column]
        if missing:
            raise ValueError(f"{label_set} label list lacks {missing} (mapped from {name})")
        targets.append([column[m] for m in mapping[name]])

    # Rank of each class per clip: position in a stable descending sort (ties -> lower index).
    order = np.argsort(-probs, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(probs.shape[1])[None, :], axis=1)
    scorable = np.array([bool(targets[c]) for c in labels_arr], dtype=bool)
    best_rank = np.full(labels_arr.shape, np.iinfo(np.int64).max, dtype=np.int64)
    for i in np.flatnonzero(scorable):
        best_rank[i] = ranks[i, targets[labels_arr[i]]].min()
    n_scorable = int(scorable.sum())
    correct = {kk: int((best_rank[scorable] < kk).sum()) for kk in ks}
    accuracy = {kk: (correct[kk] / n_scorable if n_scorable else float("nan")) for kk in ks}
    present = set(labels_arr.tolist())
    return KineticsTransferScore(
        accuracy=accuracy,
        correct=correct,
        num_clips=int(labels_arr.size),
        num_scorable_clips=n_scorable,
        num_classes_present=len(present),
        num_classes_scorable=sum(1 for c in present if targets[c]),
        label_set=label_set,
        target_set=target_set,
        best_rank=tuple(int(r) if s else -1 for r, s in zip(best_rank, scorable, strict=True)),
    )
