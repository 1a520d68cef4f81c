"""The trained tiny checkpoints shipped in ``hartutor/assets/checkpoints``.

They are what students load for inference, attributions and ``hartutor demo`` without training
(``scripts/train_tiny_checkpoints.sh`` reproduces them; measured results in
``docs/results.md``). These tests check that every file loads, stays small, carries the
synthetic class names, and still does what the course says it does on a small fresh sample of
the synthetic **test** split (never used in training nor in the documented evaluation). The
accuracy floors sit far below the measured accuracies, so only a broken or wrong checkpoint
fails them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hartutor
from hartutor.data import model_transform
from hartutor.diagnostics import reverse_batch
from hartutor.synth import CLASS_NAMES, REVERSAL_PAIRS, SyntheticActions
from hartutor.train import load_checkpoint, model_inputs, read_checkpoint, scores_of

CHECKPOINTS = Path(hartutor.__file__).parent / "assets" / "checkpoints"
MAX_BYTES = 5 * 1024 * 1024
CHANCE = 1 / len(CLASS_NAMES)

#: file -> (registry name, top-1 floor on 52 fresh clips). Floors are set far below the
#: validation accuracy measured on 520 clips (docs/results.md), so that sampling noise on 52
#: clips (about +-7 points) cannot fail them; single-frame models are capped near 70% by
#: construction (reversal and tempo pairs), temporal ones are not.
SHIPPED: dict[str, tuple[str, float]] = {
    "single_frame_tiny.pt": ("single_frame", 0.35),
    "lrcn_tiny.pt": ("lrcn", 0.35),
    "two_stream_tiny.pt": ("two_stream", 0.6),
    "c3d_tiny.pt": ("c3d", 0.6),
    "i3d_tiny.pt": ("i3d", 0.6),
    "xception_tiny.pt": ("xception", 0.35),
    "i3d_xception_fusion_tiny.pt": ("i3d_xception_fusion", 0.6),
    "karpathy_single_frame_tiny.pt": ("karpathy", 0.35),
    "karpathy_early_tiny.pt": ("karpathy", 0.45),
    "karpathy_late_tiny.pt": ("karpathy", 0.55),
    "karpathy_slow_tiny.pt": ("karpathy", 0.6),
    "conv_fusion_tiny.pt": ("conv_fusion", 0.6),
}

PAIR_CLASSES = [name for pair in REVERSAL_PAIRS for name in pair]


def _path(name: str) -> Path:
    path = CHECKPOINTS / name
    if not path.is_file():
        pytest.fail(f"{path} is missing; run scripts/train_tiny_checkpoints.sh")
    return path


@pytest.fixture(scope="module")
def fresh_clips() -> list[dict]:
    """52 clips (4 per class) of the synthetic test split, with flow, unnormalised."""
    data = SyntheticActions(52, seed=0, split="test", with_flow=True)
    return [data[i] for i in range(len(data))]


@pytest.fixture(scope="module")
def pair_clips() -> list[dict]:
    """36 clips (6 per class) of the six reversal-pair classes, labelled as in CLASS_NAMES."""
    data = SyntheticActions(36, seed=1, split="test", classes=PAIR_CLASSES)
    clips = [data[i] for i in range(len(data))]
    return [{**clip, "label": CLASS_NAMES.index(clip["action"])} for clip in clips]


def _predict(model: torch.nn.Module, clips: list[dict], *, reverse: bool = False) -> torch.Tensor:
    transform = model_transform(model)
    samples = [transform(clip) for clip in clips]
    batch = {
        key: torch.stack([s[key] for s in samples])
        for key in ("video", "flow")
        if key in samples[0]
    }
    if reverse:
        batch = reverse_batch(batch)
    with torch.inference_mode():
        return scores_of(model(model_inputs(model, batch, torch.device("cpu")))).argmax(1)


def _labels(clips: list[dict]) -> torch.Tensor:
    return torch.tensor([clip["label"] for clip in clips])


def test_every_shipped_file_is_listed() -> None:
    from hartutor.transfer import (
        INFLATION_SOURCE_CHECKPOINT,
        SOURCE_CHECKPOINTS,
        TARGET_CHECKPOINTS,
    )

    # The transfer world's streams are checked in tests/test_transfer.py.
    world = [*SOURCE_CHECKPOINTS.values(), *TARGET_CHECKPOINTS.values()]
    world.append(INFLATION_SOURCE_CHECKPOINT)
    shipped = sorted(p.name for p in CHECKPOINTS.glob("*.pt"))
    assert shipped == sorted([*SHIPPED, *world])


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_checkpoint_is_small_and_describes_itself(name: str) -> None:
    path = _path(name)
    assert path.stat().st_size <= MAX_BYTES
    payload = read_checkpoint(path)
    assert "optimizer" not in payload  # a release copy: weights and metadata only
    assert payload["class_names"] == list(CLASS_NAMES)
    model, meta = load_checkpoint(path)
    assert meta["name"] == SHIPPED[name][0]
    assert meta["kwargs"]["preset"] == "tiny"
    assert model.num_classes == len(CLASS_NAMES)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_checkpoint_accuracy_floor(name: str, fresh_clips: list[dict]) -> None:
    model, _ = load_checkpoint(_path(name))
    accuracy = (_predict(model, fresh_clips) == _labels(fresh_clips)).float().mean().item()
    floor = SHIPPED[name][1]
    assert accuracy >= max(floor, 2 * CHANCE), f"{name}: top-1 {accuracy:.1%} < floor {floor:.0%}"


def test_i3d_needs_the_order_of_frames(pair_clips: list[dict]) -> None:
    """Reversal-pair clips played backwards are the partner class: I3D's accuracy collapses."""
    model, _ = load_checkpoint(_path("i3d_tiny.pt"))
    labels = _labels(pair_clips)
    original = (_predict(model, pair_clips) == labels).float().mean().item()
    reversed_ = (_predict(model, pair_clips, reverse=True) == labels).float().mean().item()
    assert original >= 0.7
    assert reversed_ <= 0.35
    assert original - reversed_ >= 0.4


def test_single_frame_ignores_the_order_of_frames(pair_clips: list[dict]) -> None:
    """The single-frame model averages per-frame scores: reversal changes nothing."""
    model, _ = load_checkpoint(_path("single_frame_tiny.pt"))
    original = _predict(model, pair_clips)
    assert torch.equal(original, _predict(model, pair_clips, reverse=True))
    # and within each pair it cannot beat chance by much: the two classes share every frame
    labels = _labels(pair_clips)
    assert (original == labels).float().mean().item() <= 0.8


@pytest.mark.parametrize("fusion", ["early", "late", "slow"])
def test_karpathy_fusions_read_the_order_of_frames(fusion: str, pair_clips: list[dict]) -> None:
    """Karpathy et al.'s temporal fusions (notebook 01, section 6): reversed pair clips are
    taken for the partner class, unlike the single-frame network below."""
    model, meta = load_checkpoint(_path(f"karpathy_{fusion}_tiny.pt"))
    assert meta["kwargs"]["fusion"] == fusion
    labels = _labels(pair_clips)
    original = (_predict(model, pair_clips) == labels).float().mean().item()
    reversed_ = (_predict(model, pair_clips, reverse=True) == labels).float().mean().item()
    assert original - reversed_ >= 0.4


def test_karpathy_single_frame_ignores_the_order_of_frames(pair_clips: list[dict]) -> None:
    model, meta = load_checkpoint(_path("karpathy_single_frame_tiny.pt"))
    assert meta["kwargs"]["fusion"] == "single_frame"
    assert torch.equal(_predict(model, pair_clips), _predict(model, pair_clips, reverse=True))
