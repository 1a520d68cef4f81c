"""Late fusion: run several streams on their own inputs and combine their class scores.

The streams are trained on their own (as in the two-stream paper and the I3D + Xception
poster) and combined at test time. Two rules are offered:

- ``"softmax_mean"`` (the two-stream paper's averaging and the poster's choice): a weighted
  mean of the streams' softmax probabilities. ``fused`` is then a **probability** vector.
- ``"logit_sum"`` (DeepMind's I3D ``evaluate_sample.py``: RGB logits + flow logits): a
  weighted sum of the streams' logits. ``fused`` is then a **logit** vector.

:class:`FusionOutput` says which in ``kind`` and gives both views (``probabilities``,
``log_probabilities``), so code that needs a loss or a softmax never has to guess.

Inputs: each stream declares the batch keys it consumes in ``input_keys`` (default
``("video",)``; a flow stream has ``("flow",)``), as ``hartutor.train`` expects. The fusion
takes a dict of those keys, or a tensor, which is the ``"video"`` input. A stream whose input
differs from the shared clip gets an **adapter** that derives it: for I3D + Xception the
fusion takes I3D's clip (64 frames, 224x224, [-1, 1]) and Xception's adapter samples a few
frames and resizes them to 299x299 (both streams use [-1, 1] scaling, so values carry over).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from hartutor.errors import ModelError
from hartutor.models.common import Preset, check_choice, check_clip, gather_frames, uniform_indices
from hartutor.models.layers import InputSpec
from hartutor.models.registry import build_model, register_model

__all__ = [
    "ClipAdapter",
    "FusionMode",
    "FusionOutput",
    "LateFusion",
    "i3d_xception_fusion",
]

FusionMode = Literal["softmax_mean", "logit_sum"]
ScoreKind = Literal["probabilities", "logits"]


class FusionOutput(NamedTuple):
    """What :class:`LateFusion` returns.

    ``streams``: each stream's logits ``(N, K)``, by stream name. ``fused``: the combined
    scores ``(N, K)``: probabilities for ``"softmax_mean"``, logits for ``"logit_sum"``
    (``kind`` says which).
    """

    streams: dict[str, torch.Tensor]
    fused: torch.Tensor
    kind: ScoreKind

    @property
    def probabilities(self) -> torch.Tensor:
        """Fused class probabilities, whatever the fusion rule."""
        return self.fused if self.kind == "probabilities" else F.softmax(self.fused, dim=-1)

    @property
    def log_probabilities(self) -> torch.Tensor:
        """Fused log-probabilities: valid logits for ``nn.CrossEntropyLoss`` in either mode."""
        if self.kind == "probabilities":
            return self.fused.clamp_min(torch.finfo(self.fused.dtype).tiny).log()
        return F.log_softmax(self.fused, dim=-1)


class ClipAdapter(nn.Module):
    """Turn the fusion's shared clip into one stream's input: frames, size and normalisation.

    ``num_frames``: sample that many frames at the centres of equal segments (None: keep
    all). ``size``: resize every frame to ``(H, W)`` (None: keep). ``source``/``target``:
    the normalisations (:class:`InputSpec`) of the incoming clip and of the stream; when
    they differ the values are mapped from one to the other through [0, 1] pixels.
    """

    def __init__(
        self,
        *,
        num_frames: int | None = None,
        size: tuple[int, int] | None = None,
        source: InputSpec | None = None,
        target: InputSpec | None = None,
        interpolation: Literal["bilinear", "bicubic"] = "bilinear",
    ) -> None:
        super().__init__()
        check_choice("interpolation", interpolation, ("bilinear", "bicubic"))
        if num_frames is not None and num_frames < 1:
            raise ModelError(f"num_frames must be >= 1 or None, got {num_frames}")
        self.num_frames = num_frames
        self.size = tuple(size) if size is not None else None
        self.interpolation = interpolation
        scale: list[float] | None = None
        shift: list[float] | None = None
        if source is not None and target is not None:
            if source.num_channels != target.num_channels:
                raise ModelError(
                    f"cannot adapt a {source.num_channels}-channel clip to a "
                    f"{target.num_channels}-channel stream"
                )
            # pixels = x * src_std + src_mean; y = (pixels - tgt_mean) / tgt_std
            scale = [s / t for s, t in zip(source.std, target.std, strict=True)]
            shift = [
                (sm - tm) / ts
                for sm, tm, ts in zip(source.mean, target.mean, target.std, strict=True)
            ]
            if all(abs(a - 1) < 1e-7 for a in scale) and all(abs(b) < 1e-7 for b in shift):
                scale = shift = None  # same normalisation: nothing to do
        self.register_buffer(
            "scale", None if scale is None else torch.tensor(scale).view(1, -1, 1, 1, 1), False
        )
        self.register_buffer(
            "shift", None if shift is None else torch.tensor(shift).view(1, -1, 1, 1, 1), False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x, channels=None, model=type(self).__name__)
        if self.num_frames is not None and self.num_frames != x.shape[2]:
            x = gather_frames(x, uniform_indices(x.shape[2], self.num_frames, device=x.device))
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            n, c, t, h, w = x.shape
            frames = x.transpose(1, 2).reshape(n * t, c, h, w)
            frames = F.interpolate(
                frames,
                size=self.size,
                mode=self.interpolation,
                align_corners=False,
                antialias=self.size[0] < h or self.size[1] < w,
            )
            x = frames.reshape(n, t, c, *self.size).transpose(1, 2)
        if self.scale is not None:
            x = x * self.scale + self.shift
        return x

    def extra_repr(self) -> str:
        return (
            f"num_frames={self.num_frames}, size={self.size}, "
            f"interpolation={self.interpolation!r}, renormalise={self.scale is not None}"
        )


def _stream_keys(stream: nn.Module) -> tuple[str, ...]:
    keys = tuple(getattr(stream, "input_keys", ("video",)))
    if not keys:
        raise ModelError(f"{type(stream).__name__}.input_keys is empty")
    return keys


def _check_weights(names: Sequence[str], weights: Mapping[str, float] | None) -> dict[str, float]:
    """One non-negative weight per stream name, with a positive sum (default: 1 each)."""
    weights = dict(weights) if weights is not None else dict.fromkeys(names, 1.0)
    if set(weights) != set(names):
        raise ModelError(
            f"weights are given for {sorted(weights)} but the streams are {sorted(names)}; "
            "give one weight per stream"
        )
    if any(not (w >= 0) for w in weights.values()) or sum(weights.values()) <= 0:
        raise ModelError(f"weights must be >= 0 with a positive sum, got {weights}")
    return {name: float(weights[name]) for name in names}


def fuse_scores(
    stream_logits: Mapping[str, torch.Tensor],
    *,
    weights: Mapping[str, float] | None = None,
    mode: FusionMode = "softmax_mean",
) -> FusionOutput:
    """The late-fusion rule on per-stream logits ``(N, K)``, shared by :class:`LateFusion` and
    the frozen-feature route.

    ``softmax_mean`` (the poster's choice): the weighted mean of the streams' softmax
    probabilities (weights normalised to sum to 1). ``logit_sum`` (DeepMind's choice for RGB +
    flow): the weighted sum of logits.
    """
    check_choice("mode", mode, ("softmax_mean", "logit_sum"))
    if not stream_logits:
        raise ModelError("late fusion needs the scores of at least one stream")
    shapes = {name: tuple(z.shape) for name, z in stream_logits.items()}
    if len(set(shapes.values())) > 1 or any(len(shape) != 2 for shape in shapes.values()):
        raise ModelError(f"streams must give scores of one shape (N, K), got {shapes}")
    weights = _check_weights(list(stream_logits), weights)
    if mode == "softmax_mean":
        total = sum(weights.values())
        fused = sum(weights[n] * F.softmax(z.float(), dim=-1) for n, z in stream_logits.items())
        return FusionOutput(dict(stream_logits), fused / total, "probabilities")  # type: ignore[operator]
    fused = sum(weights[n] * z.float() for n, z in stream_logits.items())
    return FusionOutput(dict(stream_logits), fused, "logits")  # type: ignore[arg-type]


class LateFusion(nn.Module):
    """Combine any streams' class scores (see the module docstring for the rules and inputs).

    ``streams``: name -> module returning logits ``(N, K)``. ``weights``: name -> weight
    (default 1 each); for ``"softmax_mean"`` they are normalised to sum to 1, so the result
    stays a probability vector. ``adapters``: name -> module preparing that stream's input.
    ``forward_features`` returns each stream's logits; ``forward_head`` combines them into a
    :class:`FusionOutput`.
    """

    def __init__(
        self,
        streams: Mapping[str, nn.Module],
        *,
        weights: Mapping[str, float] | None = None,
        mode: FusionMode = "softmax_mean",
        adapters: Mapping[str, nn.Module] | None = None,
        input_spec: InputSpec | None = None,
    ) -> None:
        super().__init__()
        check_choice("mode", mode, ("softmax_mean", "logit_sum"))
        if not streams:
            raise ModelError("LateFusion needs at least one stream")
        names = list(streams)
        for name in names:
            if not name.isidentifier():
                raise ModelError(f"stream name {name!r} must be a Python identifier")
        weights = _check_weights(names, weights)
        adapters = dict(adapters or {})
        unknown = sorted(set(adapters) - set(names))
        if unknown:
            raise ModelError(f"adapters given for unknown streams {unknown}; streams: {names}")
        class_counts = {
            name: int(s.num_classes) for name, s in streams.items() if hasattr(s, "num_classes")
        }
        if len(set(class_counts.values())) > 1:
            raise ModelError(
                f"streams predict different numbers of classes {class_counts}; build every "
                "stream with the same num_classes"
            )
        self.streams = nn.ModuleDict(dict(streams))
        self.adapters = nn.ModuleDict(adapters)
        self.mode: FusionMode = mode
        self.stream_weights = {name: float(weights[name]) for name in names}
        self.input_spec = input_spec
        keys: list[str] = []
        for stream in streams.values():
            keys += [k for k in _stream_keys(stream) if k not in keys]
        self.input_keys: tuple[str, ...] = tuple(keys)

    @property
    def kind(self) -> ScoreKind:
        return "probabilities" if self.mode == "softmax_mean" else "logits"

    @property
    def num_classes(self) -> int:
        first = next(iter(self.streams.values()))
        return int(getattr(first, "num_classes", -1))

    def stream_input(
        self, name: str, inputs: torch.Tensor | Mapping[str, torch.Tensor]
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """The input of stream ``name``: its keys picked from ``inputs``, then its adapter."""
        if isinstance(inputs, torch.Tensor):
            inputs = {"video": inputs}
        keys = _stream_keys(self.streams[name])
        missing = [key for key in keys if key not in inputs]
        if missing:
            raise ModelError(
                f"stream {name!r} consumes {list(keys)} but the input has {sorted(inputs)}; "
                "pass a dict such as {'video': rgb, 'flow': flow}"
            )
        x: torch.Tensor | dict[str, torch.Tensor] = (
            inputs[keys[0]] if len(keys) == 1 else {key: inputs[key] for key in keys}
        )
        if name in self.adapters:
            x = self.adapters[name](x)
        return x

    def forward_features(
        self, inputs: torch.Tensor | Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        logits: dict[str, torch.Tensor] = {}
        for name, stream in self.streams.items():
            out = stream(self.stream_input(name, inputs))
            if not isinstance(out, torch.Tensor) or out.ndim != 2:
                raise ModelError(
                    f"stream {name!r} must return logits (N, num_classes), got "
                    f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}"
                )
            logits[name] = out
        shapes = {name: tuple(t.shape) for name, t in logits.items()}
        if len(set(shapes.values())) > 1:
            raise ModelError(f"streams returned scores of different shapes: {shapes}")
        return logits

    def stream_scores(self, stream_logits: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What is combined: softmax probabilities (``softmax_mean``) or the logits."""
        if self.mode == "softmax_mean":
            return {name: F.softmax(z.float(), dim=-1) for name, z in stream_logits.items()}
        return {name: z.float() for name, z in stream_logits.items()}

    def forward_head(
        self, stream_logits: Mapping[str, torch.Tensor], pre_logits: bool = False
    ) -> FusionOutput | dict[str, torch.Tensor]:
        """Fuse per-stream logits; ``pre_logits=True`` returns the per-stream scores instead."""
        if pre_logits:
            return self.stream_scores(stream_logits)
        return fuse_scores(stream_logits, weights=self.stream_weights, mode=self.mode)

    def forward(self, inputs: torch.Tensor | Mapping[str, torch.Tensor]) -> FusionOutput:
        out = self.forward_head(self.forward_features(inputs))
        assert isinstance(out, FusionOutput)
        return out

    def reset_classifier(self, num_classes: int) -> None:
        """Reset every stream's classifier to ``num_classes`` outputs."""
        for name, stream in self.streams.items():
            if not hasattr(stream, "reset_classifier"):
                raise ModelError(f"stream {name!r} has no reset_classifier()")
            stream.reset_classifier(num_classes)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, weights={self.stream_weights}, input_keys={self.input_keys}"


@register_model()
def i3d_xception_fusion(
    *,
    preset: Preset = "paper",
    num_classes: int = 101,
    xception_frames: int = 8,
    mode: FusionMode = "softmax_mean",
    weights: Sequence[float] | None = None,
) -> LateFusion:
    """The poster's model: hartutor's I3D and the Xception frame stream, fused late.

    The fusion's input is I3D's clip (``input_spec``: 64 frames of 224x224 in [-1, 1] for
    ``paper``). Xception sees ``xception_frames`` frames sampled evenly from it and resized
    to its own input size (299x299, bicubic, for ``paper``); the poster does not say how
    many frames its Xception stream scores, 8 is hartutor's choice. ``weights``: (I3D,
    Xception) weights of the fusion rule ``mode`` (default equal).
    """
    i3d = build_model("i3d", preset=preset, num_classes=num_classes)
    xception = build_model("xception", preset=preset, num_classes=num_classes)
    clip_spec: InputSpec | None = getattr(i3d, "input_spec", None)
    frame_spec: InputSpec | None = getattr(xception, "input_spec", None)
    adapter = ClipAdapter(
        num_frames=xception_frames,
        size=frame_spec.size if frame_spec is not None else None,
        source=clip_spec,
        target=frame_spec,
        interpolation="bicubic" if preset == "paper" else "bilinear",
    )
    if weights is not None and len(weights) != 2:
        raise ModelError(f"weights must be (i3d, xception), got {tuple(weights)}")
    spec = None
    if clip_spec is not None:
        spec = InputSpec(
            num_frames=clip_spec.num_frames,
            size=clip_spec.size,
            mean=clip_spec.mean,
            std=clip_spec.std,
            fps=clip_spec.fps,
            description=f"I3D's clip ({clip_spec.description}); Xception scores "
            f"{xception_frames} frames sampled from it, resized to "
            f"{frame_spec.size if frame_spec else clip_spec.size}",
        )
    return LateFusion(
        {"i3d": i3d, "xception": xception},
        weights=None if weights is None else {"i3d": weights[0], "xception": weights[1]},
        mode=mode,
        adapters={"xception": adapter},
        input_spec=spec,
    )
