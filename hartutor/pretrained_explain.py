"""The poster's real pretrained streams on a real clip: top-5 labels and attributions.

With the full-size weights in the cache (``hartutor weights download``, which Binder's
postBuild runs), :func:`explain_pretrained` runs I3D (piergiaj's Kinetics-400 RGB port) and
Xception (ImageNet, timm) on a sample clip, prints each one's top-5 in its own label set and
attributes its top class with :func:`hartutor.explain.explain`. Both networks are fully
convolutional, so a shorter, smaller clip than the papers' (64x224x224 for I3D, 299x299 for
Xception) runs within a Binder kernel's 1 GB; the labels are then those of a smaller view.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hartutor.errors import WeightsError
from hartutor.explain import Attribution, explain

#: The pretrained streams the course explains, by stream name (sizes: about 51 and 92 MB).
PRETRAINED_STREAMS: dict[str, str] = {
    "i3d": "i3d_rgb_kinetics400_imagenet_piergiaj",
    "xception": "xception_imagenet1k_tf",
}
#: (frames, side) each stream is run on in fast mode: small enough for 1 GB with gradients.
FAST_INPUTS: dict[str, tuple[int, int]] = {"i3d": (16, 112), "xception": (2, 160)}
#: The papers' inputs (full mode).
FULL_INPUTS: dict[str, tuple[int, int]] = {"i3d": (64, 224), "xception": (8, 299)}


def missing_weights(streams: Mapping[str, str] = PRETRAINED_STREAMS) -> list[str]:
    """The weights names of ``streams`` that are not in the cache (empty: all present)."""
    from hartutor.weights import weights_files

    missing = []
    for name in streams.values():
        try:
            weights_files(name, download=False, progress=False)
        except WeightsError:
            missing.append(name)
    return missing


def how_to_get(streams: Mapping[str, str] = PRETRAINED_STREAMS) -> str:
    """The one command that puts the weights in the cache."""
    return f"hartutor weights download {' '.join(streams.values())}"


@dataclass
class PretrainedExplanation:
    """Each pretrained stream's top-k on one clip and the attribution of its top class."""

    video: str
    weights: dict[str, str]  # stream -> weights name
    inputs: dict[str, tuple[int, int]]  # stream -> (frames, side) it was run on
    top: dict[str, list[tuple[str, float]]]  # stream -> [(label, probability)]
    attributions: dict[str, Attribution] = field(default_factory=dict)
    standins: dict[str, bool] = field(default_factory=dict)  # stream -> random stand-in weights

    def markdown(self) -> str:
        """The top-k of every stream as a Markdown table."""
        from hartutor._markdown import markdown_table

        body = []
        for stream, rows in self.top.items():
            frames, side = self.inputs[stream]
            what = f"{stream} ({self.weights[stream]}, {frames}x{side}x{side})"
            if self.standins.get(stream):
                what += " **stand-in weights: random values**"
            for rank, (label, p) in enumerate(rows, 1):
                body.append([what if rank == 1 else "", str(rank), label, f"{p:.1%}"])
        return markdown_table(("stream", "rank", "label", "probability"), body)


def _frames(path: Path, num_frames: int) -> torch.Tensor:
    from hartutor.video import read_video

    return read_video(path, num_frames=num_frames, on_short="loop").frames


def explain_pretrained(
    video: str | Path,
    *,
    streams: Mapping[str, str] = PRETRAINED_STREAMS,
    inputs: Mapping[str, tuple[int, int]] = FAST_INPUTS,
    method: str = "saliency",
    top: int = 5,
    memory_budget_mb: float = 150.0,
    **options: Any,
) -> PretrainedExplanation:
    """Run each cached pretrained stream on ``video`` at ``inputs[stream]`` (frames, side:
    the weights' own resize-and-crop, scaled to that side) and attribute its top class.

    Raises :class:`~hartutor.errors.WeightsError` naming :func:`how_to_get` when weights are
    missing. Stand-in weights (``HARTUTOR_MIRROR``) are reported in ``standins``."""
    from hartutor.data import ClipTransform
    from hartutor.weights import get_weights, load_pretrained, standin_weights

    missing = missing_weights(streams)
    if missing:
        raise WeightsError(
            f"pretrained weights {missing} are not in the cache; run '{how_to_get(streams)}'"
        )
    path = Path(video)
    result = PretrainedExplanation(str(path), dict(streams), {}, {})
    for stream, name in streams.items():
        entry = get_weights(name)
        frames, side = inputs[stream]
        spec = entry.preprocessing
        resize = None if spec.resize_size is None else round(spec.resize_size * side / spec.size[0])
        small = dataclasses.replace(spec, size=(side, side), resize_size=resize, num_frames=frames)
        x = ClipTransform(small)(_frames(path, frames))
        model = load_pretrained(entry, download=False, progress=False).eval()
        with torch.no_grad():
            probs = torch.softmax(model(x[None]).float(), -1)[0]
        names = entry.categories()
        best = torch.topk(probs, top)
        result.top[stream] = [
            (names[int(i)], float(p)) for p, i in zip(best.values, best.indices, strict=True)
        ]
        result.attributions[stream] = explain(
            model,
            x,
            target=int(best.indices[0]),
            method=method,  # type: ignore[arg-type]
            memory_budget_mb=memory_budget_mb,
            **options,
        )
        result.inputs[stream] = (frames, side)
        result.standins[stream] = standin_weights(name)
        del model
    return result
