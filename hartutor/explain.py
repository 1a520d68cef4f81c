"""What each stream attends to: Captum attributions of a class score to each stream's input.

:func:`explain` attributes one class's score for **one clip** with a Captum method:

- ``"saliency"``: :class:`captum.attr.Saliency` (``|d score / d input|``);
- ``"smoothgrad"``: SmoothGrad (Smilkov et al. 2017), Captum's
  :class:`captum.attr.NoiseTunnel` around Saliency: the mean of ``nt_samples`` saliency maps of
  the clip plus Gaussian noise of standard deviation ``stdevs`` (default 0.15 of the input's
  range), which averages out the gradient's pixel-to-pixel noise;
- ``"integrated_gradients"``: :class:`captum.attr.IntegratedGradients` from a zero baseline
  (in the model's normalised space: mid-grey for [-1, 1] clips, no motion for flow), with
  ``internal_batch_size`` chosen from the memory budget;
- ``"grad_cam"``: :class:`captum.attr.LayerGradCam` on a late conv layer (I3D's last Mixed
  block; a frame stream's last 2D conv block), upsampled to the input with
  :meth:`captum.attr.LayerAttribution.interpolate` (trilinear in time and space);
- ``"guided_grad_cam"``: Captum's Guided Grad-CAM formula, :class:`captum.attr.GuidedBackprop`
  times the upsampled Grad-CAM (as :class:`captum.attr.GuidedGradCam` computes it; composed
  here because that class cannot upsample a per-frame ``(N*S, 1, h, w)`` map to a clip);
- ``"occlusion"``: :class:`captum.attr.Occlusion` with a sliding window over ``(C, T, H, W)``
  (default: 4 non-overlapping windows along each of T, H and W, all channels together),
  ``perturbations_per_eval`` chosen from the memory budget.

What is explained (``stream``):

- a single model, or ``stream=None`` for a :class:`~hartutor.models.fusion.LateFusion`: the
  model's own score. For a fusion that is the **fused probability** of the target (the
  weighted mean of the streams' softmax for ``softmax_mean``), attributed back to the shared
  inputs through the adapters, so the maps have the shared clip's shape;
- ``stream="i3d"`` (any stream name): that stream's own **logit** for the target, attributed to
  the input the stream actually sees (after its adapter: e.g. Xception's sampled and resized
  frames).

A stream's **share** of the fused score: for ``softmax_mean`` the fused probability of the
target is ``sum_s w_s p_s(target)`` (weights normalised), so stream ``s`` contributes
``w_s p_s(target) / sum_j w_j p_j(target)``; the shares sum to 1. For ``logit_sum`` fusions the
same probability-weighted ratio is reported (logits have no additive positive parts).

Memory: on a 1-2 GB machine the full-size I3D at 64x224x224 needs ~1.7 GB for one plain
backward pass. :func:`estimate_memory` runs the model once on the real clip under
``torch.no_grad`` with forward hooks on every leaf module and adds up the bytes of their
outputs, i.e. the activations autograd would keep (deterministic and portable, unlike peak RSS,
which depends on the allocator and on what else the process holds). A calibrated factor turns
that into a per-sample cost of a backward pass (and of a no-grad forward); see
:class:`MemoryEstimate`. Then :func:`explain` turns on activation checkpointing for models with
named endpoints (I3D) when a backward pass would exceed ``memory_budget_mb``, and picks IG's
``internal_batch_size`` and Occlusion's ``perturbations_per_eval`` to fit. The budget counts the
working memory of the attribution, on top of the loaded model and Python.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from hartutor.errors import ModelError
from hartutor.models.frame import FrameClassifier, uniform_indices
from hartutor.models.fusion import ClipAdapter, LateFusion
from hartutor.models.layers import InputSpec, Unit3D
from hartutor.models.two_stream import TemporalStream, stack_starts

__all__ = [
    "DEFAULT_MEMORY_BUDGET_MB",
    "METHODS",
    "Attribution",
    "ControlRow",
    "MemoryEstimate",
    "Method",
    "centre_hump",
    "choose_batch_size",
    "controls_markdown",
    "curve_correlation",
    "default_layer",
    "estimate_memory",
    "explain",
    "explain_streams",
    "motion_free_baseline",
    "motion_per_frame",
    "stream_shares",
    "temporal_controls",
    "temporal_importance",
]

Method = Literal[
    "saliency", "smoothgrad", "integrated_gradients", "grad_cam", "guided_grad_cam", "occlusion"
]
METHODS: tuple[str, ...] = (
    "saliency",
    "smoothgrad",
    "integrated_gradients",
    "grad_cam",
    "guided_grad_cam",
    "occlusion",
)
#: Working memory an attribution may use by default, in MiB: with ~300 MB for Python, torch
#: and a full-size I3D it stays under Binder's 2 GB.
DEFAULT_MEMORY_BUDGET_MB = 1500.0
#: Windows of the default occlusion along T, H, W (non-overlapping, all channels together).
DEFAULT_OCCLUSION_WINDOWS = (4, 4, 4)

# Calibration of the hook-based estimate (full-size I3D, 64x224x224, CPU, float32): a
# backward pass peaked at 2.1x the leaf-output bytes (inputs padded for SAME convolutions,
# max-pool indices and gradient buffers are not module outputs); 2.5 leaves a margin. A
# no-grad forward keeps a few tensors alive at once (a block's input, branches, output).
_GRAD_FACTOR = 2.5
_NO_GRAD_FACTOR = 4.0
_INPUT_COPIES = 4  # the input, its gradient, IG's scaled copy and Captum's accumulators


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated working memory per clip (bytes) of the passes an attribution makes.

    ``activation_bytes``: the bytes of every leaf module's output in one forward pass.
    ``grad_bytes``: a forward + backward to the input; ``checkpointed_grad_bytes`` the same with
    activation checkpointing per endpoint (None: the model has no endpoints to checkpoint).
    ``no_grad_bytes``: a forward under ``torch.no_grad`` (Occlusion). ``input_bytes``: the
    attributed inputs.
    """

    activation_bytes: int
    grad_bytes: int
    checkpointed_grad_bytes: int | None
    no_grad_bytes: int
    input_bytes: int


@dataclass(frozen=True)
class Attribution:
    """One attribution of ``target``'s score for one clip.

    ``maps``: input name (``"video"``, ``"flow"``) -> attribution ``(C, T, H, W)`` on the input
    that was attributed (``C = 1`` for Grad-CAM). ``inputs``: those inputs ``(C, T, H, W)``.
    ``stream``: the stream explained, None for the model's own (fused) score. ``score``: the
    explained score (a stream's logit, the fused probability, or a plain model's logit);
    ``probability``: its softmax probability of the target. ``shares``: every stream's share
    of the fused score (empty for a single model). ``frame_indices``: for each input, the
    position of each of its frames in the shared clip (flow field ``t`` lies between frames
    ``t`` and ``t + 1``). ``specs``: the inputs' normalisation, for showing them.
    """

    maps: dict[str, torch.Tensor]
    inputs: dict[str, torch.Tensor]
    target: int
    method: str
    stream: str | None
    score: float
    probability: float
    shares: dict[str, float] = field(default_factory=dict)
    frame_indices: dict[str, tuple[int, ...]] = field(default_factory=dict)
    specs: dict[str, InputSpec | None] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def _key(self, key: str | None) -> str:
        if key is None:
            if len(self.maps) != 1:
                raise ModelError(f"this attribution has maps {sorted(self.maps)}; pass key=...")
            return next(iter(self.maps))
        if key not in self.maps:
            raise ModelError(f"no map {key!r}; this attribution has {sorted(self.maps)}")
        return key

    @property
    def map(self) -> torch.Tensor:
        """The attribution ``(C, T, H, W)`` when there is a single input."""
        return self.maps[self._key(None)]

    @property
    def share(self) -> float | None:
        """This stream's share of the fused score (None for fused or single-model maps)."""
        return self.shares.get(self.stream) if self.stream is not None else None

    def reduced(self, key: str | None = None) -> np.ndarray:
        """``(T, H, W)`` magnitude: the sum over channels of ``|attribution|``."""
        return self.maps[self._key(key)].abs().sum(0).numpy()

    def heatmap(self, key: str | None = None) -> np.ndarray:
        """:meth:`reduced` scaled to [0, 1] over the whole clip (for overlays)."""
        heat = self.reduced(key)
        top = float(heat.max()) if heat.size else 0.0
        return heat / top if top > 0 else np.zeros_like(heat)

    def temporal_importance(self, key: str | None = None) -> np.ndarray:
        """Each frame's share of the total ``|attribution|``, ``(T,)`` summing to 1."""
        return temporal_importance(self.maps[self._key(key)])

    def temporal_curve(self, key: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(frame positions in the shared clip, :meth:`temporal_importance`), for plots."""
        key = self._key(key)
        values = self.temporal_importance(key)
        positions = self.frame_indices.get(key) or tuple(range(len(values)))
        return np.asarray(positions, dtype=float), values

    def frames(self, key: str | None = None) -> np.ndarray:
        """The attributed input as uint8 ``(T, H, W, 3)`` pictures (flow colour-coded)."""
        key = self._key(key)
        x = self.inputs[key].float()
        if x.shape[0] == 2:
            from hartutor.viz import flow_to_color

            return flow_to_color(x.numpy())
        spec = self.specs.get(key)
        if spec is not None and len(spec.mean) == x.shape[0]:
            mean = torch.tensor(spec.mean).view(-1, 1, 1, 1)
            std = torch.tensor(spec.std).view(-1, 1, 1, 1)
            x = x * std + mean
        else:  # unknown normalisation: stretch to [0, 1]
            x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-12)
        pixels = (x.clamp(0, 1) * 255).round().to(torch.uint8)
        if pixels.shape[0] == 1:
            pixels = pixels.expand(3, -1, -1, -1)
        return pixels.permute(1, 2, 3, 0).numpy()


def temporal_importance(attribution: torch.Tensor | np.ndarray) -> np.ndarray:
    """Which frames matter: ``sum |attribution|`` per frame of ``(C, T, H, W)`` (or ``(T, H,
    W)``), normalised to sum to 1 (all zeros stays zeros)."""
    a = torch.as_tensor(attribution).detach().double().abs()
    if a.ndim == 4:
        a = a.sum(0)
    if a.ndim != 3:
        raise ModelError(
            f"temporal_importance needs a (C, T, H, W) or (T, H, W) map, got {tuple(a.shape)}"
        )
    per_frame = a.sum(dim=(1, 2))
    total = float(per_frame.sum())
    return (per_frame / total).numpy() if total > 0 else per_frame.numpy()


# --------------------------------------------------------------------------- inputs


def motion_per_frame(flow: np.ndarray) -> np.ndarray:
    """Each frame's share of a clip's motion: flow ``(2, T-1, H, W)`` speed summed over pixels,
    each field split between the two frames it joins; ``(T,)`` summing to 1 (zeros if still)."""
    speed = np.hypot(flow[0], flow[1]).sum(axis=(1, 2))
    frames = np.zeros(len(speed) + 1)
    frames[:-1] += speed / 2
    frames[1:] += speed / 2
    total = frames.sum()
    return frames / total if total > 0 else frames


def centre_hump(num_frames: int) -> np.ndarray:
    """A fixed bump over the middle of a clip (a Hann window), ``(T,)`` summing to 1.

    The control for temporal-importance curves: zero padding in time gives a 3D CNN's end
    frames fewer paths to the output, so its gradients peak mid-clip even when nothing moves.
    A curve that correlates with this hump as well as with the motion does not show motion.
    """
    hump = np.hanning(num_frames + 2)[1:-1]
    return hump / hump.sum()


def curve_correlation(
    attribution: Attribution, per_frame: np.ndarray, key: str | None = None
) -> float:
    """Pearson correlation of an attribution's temporal importance with a per-frame curve
    (motion, a hump) read at the frames the stream saw; NaN when either is constant."""
    positions, values = attribution.temporal_curve(key)
    other = np.asarray(per_frame, dtype=float)[positions.astype(int)]
    if np.std(values) == 0 or np.std(other) == 0:
        return float("nan")
    return float(np.corrcoef(values, other)[0, 1])


def motion_free_baseline(video: torch.Tensor) -> torch.Tensor:
    """The clip with its motion removed: its mean frame repeated, same shape ``(..., T, H, W)``.

    An Integrated Gradients baseline with the clip's appearance but no motion, so that the
    attributions measure what the motion adds (the default zero baseline also credits the
    appearance).
    """
    return video.mean(dim=-3, keepdim=True).expand_as(video).contiguous()


@dataclass(frozen=True)
class ControlRow:
    """One clip of :func:`temporal_controls`: correlations of a stream's temporal importance."""

    action: str
    seed: int
    motion: float  # with the clip's motion per frame
    hump: float  # with the fixed centre hump
    still_hump: float  # the same figure held still (no motion at all): with the hump
    motion_hump: float  # the motion itself with the hump (how confounded the clip is)
    beyond_still: float  # (moving curve - still curve) with the motion


def temporal_controls(
    model: LateFusion,
    actions: Sequence[str],
    seeds: Sequence[int] = (0, 1),
    *,
    stream: str = "i3d",
    method: Method = "saliency",
    **options: Any,
) -> list[ControlRow]:
    """Does a stream's temporal importance follow the motion, or a hump it has anyway?

    For each synthetic clip (no camera motion) and the same figure held still
    (``render_clip(still=True)``), explain ``stream``'s score of the true class and correlate
    its temporal importance with the motion per frame and with :func:`centre_hump`. A curve
    that humps on a still clip, on clips whose motion is itself mid-clip, cannot show that the
    stream follows motion; what its curve adds over the still clip's is the part that can.
    """
    from hartutor.synth import render_clip
    from hartutor.widgets import Clip, clip_inputs

    spec = model.input_spec
    hump = centre_hump(spec.num_frames)
    rows = []
    for action in actions:
        for seed in seeds:
            common = {"num_frames": spec.num_frames, "size": spec.size, "camera_motion": False}
            moving = render_clip(action, seed, with_flow=True, **common)
            still = render_clip(action, seed, still=True, **common)
            curves = []
            for frames in (moving.frames, still.frames):
                x = clip_inputs(model, Clip(action, frames))
                curves.append(
                    explain(model, x, target=moving.label, method=method, stream=stream, **options)
                )
            motion = motion_per_frame(moving.flow)
            positions, values = curves[0].temporal_curve()
            _, still_values = curves[1].temporal_curve()
            at = positions.astype(int)
            rows.append(
                ControlRow(
                    action=action,
                    seed=int(seed),
                    motion=curve_correlation(curves[0], motion),
                    hump=curve_correlation(curves[0], hump),
                    still_hump=curve_correlation(curves[1], hump),
                    motion_hump=float(np.corrcoef(motion, hump)[0, 1]),
                    beyond_still=float(np.corrcoef(values - still_values, motion[at])[0, 1]),
                )
            )
    return rows


def controls_markdown(rows: Sequence[ControlRow]) -> str:
    """A Markdown table of :func:`temporal_controls`' rows, with their means."""
    from hartutor._markdown import markdown_table

    fields = ("motion", "hump", "still_hump", "motion_hump", "beyond_still")
    header = (
        "clip",
        "with motion",
        "with the hump",
        "still clip, with the hump",
        "motion with the hump",
        "moving - still, with motion",
    )
    body = [(f"{r.action} ({r.seed})", *(f"{getattr(r, f):+.2f}" for f in fields)) for r in rows]
    body.append(
        ("**mean**", *(f"**{np.nanmean([getattr(r, f) for r in rows]):+.2f}**" for f in fields))
    )
    return markdown_table(header, body)


def _as_inputs(model: nn.Module, inputs: torch.Tensor | Mapping[str, torch.Tensor]) -> dict:
    """``{key: (1, C, T, H, W) float}`` in the order of ``model.input_keys``."""
    keys = tuple(getattr(model, "input_keys", ("video",)))
    if isinstance(inputs, torch.Tensor):
        if len(keys) != 1 and "video" not in keys:
            raise ModelError(f"{type(model).__name__} takes {list(keys)}; pass a dict")
        inputs = {keys[0] if len(keys) == 1 else "video": inputs}
    out: dict[str, torch.Tensor] = {}
    for key in keys:
        if key not in inputs:
            raise ModelError(
                f"{type(model).__name__} needs inputs {list(keys)} but got {sorted(inputs)}; "
                "pass a dict such as {'video': clip, 'flow': flow}"
            )
        x = inputs[key]
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ModelError(
                f"input {key!r} must be a float tensor (C, T, H, W), got "
                f"{getattr(x, 'dtype', type(x).__name__)}; normalise decoded frames first "
                "(hartutor.data.model_transform)"
            )
        if x.ndim == 4:
            x = x.unsqueeze(0)
        if x.ndim != 5 or x.shape[0] != 1:
            raise ModelError(
                f"explain takes one clip: input {key!r} must be (C, T, H, W) or (1, C, T, H, W), "
                f"got {tuple(x.shape)}; loop over a batch one clip at a time"
            )
        out[key] = x.detach()
    return out


def _spec_of(module: nn.Module) -> InputSpec | None:
    spec = getattr(module, "input_spec", None)
    return spec if isinstance(spec, InputSpec) else None


def _adapter_positions(adapter: nn.Module | None, clip_length: int, length: int) -> tuple[int, ...]:
    """Where the frames a stream sees come from in the shared clip."""
    if isinstance(adapter, ClipAdapter) and adapter.num_frames is not None:
        return tuple(int(i) for i in uniform_indices(clip_length, adapter.num_frames).tolist())
    return tuple(range(length))


# --------------------------------------------------------------------------- scoring modules


def _segments(model: nn.Module) -> list[nn.Module] | None:
    """Modules to checkpoint one by one (I3D's endpoints), or None if not checkpointable."""
    names = getattr(model, "endpoint_names", None)
    if names and hasattr(model, "forward_head"):
        return [getattr(model, name) for name in names]
    return None


def _run(model: nn.Module, x: Any, use_checkpoint: bool) -> torch.Tensor:
    """``model(x)``, with activation checkpointing per endpoint where possible and asked."""
    segments = _segments(model) if use_checkpoint else None
    if segments is None or not torch.is_grad_enabled():
        return model(x)
    for segment in segments:
        x = activation_checkpoint(segment, x, use_reentrant=False)
    return model.forward_head(x)


class _Scores(nn.Module):
    """``(*inputs) -> (N, K)`` scores of what is explained (a module, for Captum's hooks)."""

    def __init__(
        self, model: nn.Module, keys: Sequence[str], stream: str | None, fused: bool
    ) -> None:
        super().__init__()
        self.model = model
        self.keys = tuple(keys)
        self.stream = stream
        self.fused = fused
        self.use_checkpoint = False

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.stream is not None:  # a stream on its own (adapted) input
            x: Any = xs[0] if len(xs) == 1 else dict(zip(self.keys, xs, strict=True))
            return _run(self.model.streams[self.stream], x, self.use_checkpoint)
        inputs = dict(zip(self.keys, xs, strict=True))
        if not self.fused:
            x = xs[0] if len(xs) == 1 else inputs
            return _run(self.model, x, self.use_checkpoint)
        fusion: LateFusion = self.model  # type: ignore[assignment]
        logits = {
            name: _run(stream, fusion.stream_input(name, inputs), self.use_checkpoint)
            for name, stream in fusion.streams.items()
        }
        return fusion.forward_head(logits).probabilities  # type: ignore[union-attr]

    def explained(self) -> nn.Module:
        return self.model.streams[self.stream] if self.stream is not None else self.model


@contextmanager
def _explaining(model: nn.Module) -> Iterator[None]:
    """Eval mode and frozen parameters (no weight gradients), restored afterwards."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


class _GuidedGrad(torch.autograd.Function):
    """Identity whose backward keeps only positive gradients (guided backprop's ReLU rule)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad.clamp_min(0)


@contextmanager
def _guided_functional_relus(model: nn.Module) -> Iterator[None]:
    """Guided backprop for ReLUs applied functionally (I3D's :class:`Unit3D`).

    Captum's :class:`GuidedBackprop` rewrites the gradient of ``nn.ReLU`` modules only. A
    ``Unit3D`` calls ``F.relu``; a hook on its output passes only positive gradients back,
    which composed with the ReLU's own backward is exactly guided backprop's rule.
    """
    handles = [
        module.register_forward_hook(lambda _m, _i, out: _GuidedGrad.apply(out))
        for module in model.modules()
        if isinstance(module, Unit3D) and module.activation
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# --------------------------------------------------------------------------- memory


def estimate_memory(
    scores: Callable[..., torch.Tensor] | nn.Module,
    inputs: Sequence[torch.Tensor],
    *,
    modules: nn.Module | None = None,
) -> tuple[MemoryEstimate, torch.Tensor]:
    """Estimate per-clip working memory from one no-grad forward on ``inputs`` (batch 1).

    Forward hooks on every leaf module of ``modules`` (default: ``scores``) add up the bytes of
    their outputs and note the largest; for checkpointable models (see :func:`_segments`) the
    endpoints' outputs and the activations inside the largest endpoint are counted too.
    Returns the estimate and the forward's output (so the scores cost no extra pass).
    """
    root = modules if modules is not None else scores
    if not isinstance(root, nn.Module):
        raise ModelError("estimate_memory needs the modules to hook; pass modules=...")
    totals = {"all": 0, "max": 0, "segment_out": 0}
    per_segment: dict[int, int] = {}
    checkpointable = False
    handles = []

    def leaf_hook(_m: nn.Module, _i: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            totals["all"] += out.nbytes
            totals["max"] = max(totals["max"], out.nbytes)

    def counter(index: int) -> Callable[..., None]:
        def hook(_m: nn.Module, _i: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor):
                per_segment[index] = per_segment.get(index, 0) + out.nbytes

        return hook

    def segment_hook(_m: nn.Module, _i: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            totals["segment_out"] += out.nbytes

    segment_leaves: set[int] = set()
    for module in root.modules():
        segments = _segments(module)
        if segments is None:
            continue
        checkpointable = True
        for segment in segments:
            handles.append(segment.register_forward_hook(segment_hook))
            for leaf in segment.modules():
                if not list(leaf.children()):
                    handles.append(leaf.register_forward_hook(counter(id(segment))))
                    segment_leaves.add(id(leaf))
    leaf_bytes_outside = {"value": 0}

    def outside_hook(_m: nn.Module, _i: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            leaf_bytes_outside["value"] += out.nbytes

    for module in root.modules():
        if not list(module.children()):
            handles.append(module.register_forward_hook(leaf_hook))
            if id(module) not in segment_leaves:
                handles.append(module.register_forward_hook(outside_hook))
    try:
        with torch.no_grad():
            output = scores(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    input_bytes = sum(int(x.nbytes) for x in inputs)
    grad = int(_GRAD_FACTOR * totals["all"]) + _INPUT_COPIES * input_bytes
    checkpointed = None
    if checkpointable:
        inner = max(per_segment.values(), default=0)
        checkpointed = (
            totals["segment_out"]
            + int(_GRAD_FACTOR * (inner + leaf_bytes_outside["value"]))
            + _INPUT_COPIES * input_bytes
        )
    no_grad = int(_NO_GRAD_FACTOR * totals["max"]) + 2 * input_bytes
    estimate = MemoryEstimate(totals["all"], grad, checkpointed, no_grad, input_bytes)
    return estimate, output


def choose_batch_size(per_item_bytes: int, budget_bytes: float, limit: int) -> int:
    """How many items (IG steps, occlusion windows) fit in ``budget_bytes``: 1 to ``limit``."""
    if per_item_bytes <= 0:
        return max(1, limit)
    return int(max(1, min(limit, budget_bytes // per_item_bytes)))


# --------------------------------------------------------------------------- layers


_HEAD_NAMES = ("global_pool", "head", "head_drop", "fc", "fc6", "classifier", "pool", "flatten")


def default_layer(stream: nn.Module) -> nn.Module:
    """The late conv layer Grad-CAM looks at: I3D's last endpoint (``Mixed_5c``; ``Mixed_5b``
    for the tiny preset); for frame and flow streams the backbone's last block before its
    pooling head (MiniXception ``exit``, CNN-M ``features``, timm ``act4`` / ``layer4``)."""
    segments = _segments(stream)
    if segments:
        return segments[-1]
    backbone = getattr(stream, "backbone", stream)
    before_head: list[nn.Module] = []
    for name, child in backbone.named_children():
        if name in _HEAD_NAMES:
            break
        before_head.append(child)
    if before_head:
        return before_head[-1]
    raise ModelError(
        f"cannot tell which layer of {type(stream).__name__} to use for Grad-CAM; pass "
        "layer=<module or dotted name>, e.g. layer='Mixed_5c'"
    )


def _resolve_layer(stream: nn.Module, layer: nn.Module | str | None) -> nn.Module:
    if layer is None:
        return default_layer(stream)
    if isinstance(layer, nn.Module):
        return layer
    try:
        return stream.get_submodule(layer)
    except AttributeError:
        names = [n for n, _ in stream.named_modules() if n and n.count(".") < 2][:12]
        raise ModelError(
            f"{type(stream).__name__} has no layer {layer!r}; some of its layers: {names}"
        ) from None


def _frame_groups(stream: nn.Module, length: int, count: int) -> list[list[int]] | None:
    """Which input frames each of the ``count`` per-frame layer maps covers."""
    if isinstance(stream, TemporalStream):
        starts = stack_starts(length, stream.stack_length, stream.num_test_stacks).tolist()
        return [list(range(int(s), int(s) + stream.stack_length)) for s in starts]
    if isinstance(stream, FrameClassifier):
        indices = stream.eval_frame_indices(length)
        if indices is None:
            return [[t] for t in range(length)]
        return [[int(i)] for i in indices.tolist()]
    if count == length:
        return [[t] for t in range(length)]
    return None


def _upsample_cam(cam: torch.Tensor, stream: nn.Module, size: tuple[int, int, int]) -> torch.Tensor:
    """A Grad-CAM map of a clip ``(1, 1, t, h, w)`` or of frames ``(S, 1, h, w)`` -> ``(1, 1,
    T, H, W)`` with :meth:`LayerAttribution.interpolate` (trilinear / bilinear)."""
    from captum.attr import LayerAttribution

    length, height, width = size
    if cam.ndim == 5:
        return LayerAttribution.interpolate(cam, size, interpolate_mode="trilinear")
    if cam.ndim != 4:
        raise ModelError(f"Grad-CAM of this layer has shape {tuple(cam.shape)}; pick a conv layer")
    frames = LayerAttribution.interpolate(cam, (height, width), interpolate_mode="bilinear")
    groups = _frame_groups(stream, length, frames.shape[0])
    if groups is None or len(groups) != frames.shape[0]:
        raise ModelError(
            f"cannot place {frames.shape[0]} per-frame Grad-CAM maps on a clip of {length} "
            f"frames for {type(stream).__name__}; pick a layer with a time axis"
        )
    out = torch.zeros(1, 1, length, height, width, dtype=frames.dtype)
    count = torch.zeros(length, dtype=frames.dtype)
    for k, group in enumerate(groups):
        for t in group:
            out[0, 0, t] += frames[k, 0]
            count[t] += 1
    return out / count.clamp_min(1).view(1, 1, -1, 1, 1)


# --------------------------------------------------------------------------- explain


def stream_shares(
    model: LateFusion, stream_logits: Mapping[str, torch.Tensor], target: int
) -> dict[str, float]:
    """Each stream's share of the fused score of ``target`` (see the module docstring)."""
    parts = {
        name: model.stream_weights[name] * float(torch.softmax(z.float(), -1)[0, target])
        for name, z in stream_logits.items()
    }
    total = sum(parts.values())
    if total <= 0:
        return {name: 1.0 / len(parts) for name in parts}
    return {name: value / total for name, value in parts.items()}


def _check_target(target: int, num_classes: int) -> int:
    if isinstance(target, torch.Tensor):
        target = int(target)
    if not isinstance(target, (int, np.integer)) or not 0 <= int(target) < num_classes:
        raise ModelError(f"target must be a class index in [0, {num_classes}), got {target!r}")
    return int(target)


def explain(
    model: nn.Module,
    inputs: torch.Tensor | Mapping[str, torch.Tensor],
    *,
    target: int,
    method: Method = "integrated_gradients",
    stream: str | None = None,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    **options: Any,
) -> Attribution:
    """Attribute ``target``'s score for one clip with Captum (see the module docstring).

    ``inputs``: one clip ``(C, T, H, W)`` (or ``(1, C, T, H, W)``), normalised as the model
    expects, or a dict by input key for multi-input models (``{"video", "flow"}``). ``stream``:
    a :class:`LateFusion` stream to explain on its own input (None: the model's own score).
    ``options``: ``layer`` (Grad-CAM: a module or dotted name in the stream), ``baselines``
    (IG, Occlusion; default zeros), ``n_steps`` (IG, 50), ``internal_batch_size`` (IG),
    ``sliding_window_shapes`` / ``strides`` / ``perturbations_per_eval`` (Occlusion: one tuple
    per input, ``(C, T, H, W)``), ``checkpoint`` (``"auto"``, True, False), ``abs`` (Saliency,
    True), ``nt_samples`` (SmoothGrad, 16) and ``stdevs`` (SmoothGrad: the noise's standard
    deviation, default 0.15 of each input's range). Batch sizes not given are chosen to fit
    ``memory_budget_mb``.
    """
    if method not in METHODS:
        raise ModelError(f"method={method!r} is not supported; use one of {list(METHODS)}")
    known = {
        "layer",
        "baselines",
        "n_steps",
        "internal_batch_size",
        "sliding_window_shapes",
        "strides",
        "perturbations_per_eval",
        "checkpoint",
        "abs",
        "nt_samples",
        "stdevs",
    }
    unknown = sorted(set(options) - known)
    if unknown:
        raise ModelError(f"unknown options {unknown}; explain accepts {sorted(known)}")
    if not memory_budget_mb > 0:
        raise ModelError(f"memory_budget_mb must be positive, got {memory_budget_mb}")
    is_fusion = isinstance(model, LateFusion)
    if stream is not None and not is_fusion:
        raise ModelError(
            f"stream={stream!r} needs a LateFusion model, got {type(model).__name__}; "
            "leave stream=None to explain the model itself"
        )
    if is_fusion and stream is not None and stream not in model.streams:
        raise ModelError(f"no stream {stream!r}; this fusion has {list(model.streams)}")
    shared = _as_inputs(model, inputs)
    num_classes = int(getattr(model, "num_classes", -1))
    with _explaining(model):
        if stream is not None:
            adapted = model.stream_input(stream, shared)
            sub = model.streams[stream]
            keys = tuple(getattr(sub, "input_keys", ("video",)))
            if isinstance(adapted, torch.Tensor):
                attributed = {keys[0]: adapted.detach()}
            else:
                attributed = {k: v.detach() for k, v in adapted.items()}
            specs = {key: _spec_of(sub) for key in attributed}
            adapter = model.adapters[stream] if stream in model.adapters else None  # noqa: SIM401
            positions = {
                key: _adapter_positions(adapter, shared[key].shape[2], x.shape[2])
                if key in shared
                else tuple(range(x.shape[2]))
                for key, x in attributed.items()
            }
        else:
            attributed = shared
            specs = {key: _spec_of(model) for key in attributed}
            positions = {key: tuple(range(x.shape[2])) for key, x in attributed.items()}
        if method in ("grad_cam", "guided_grad_cam") and stream is None and is_fusion:
            raise ModelError(
                f"{method} looks at one layer of one stream; pass stream= one of "
                f"{list(model.streams)}, or use a gradient or occlusion method for the fused score"
            )
        scorer = _Scores(model, tuple(attributed), stream, fused=is_fusion and stream is None)
        xs = tuple(attributed.values())
        estimate, output = estimate_memory(scorer, xs)
        if num_classes < 1:
            num_classes = int(output.shape[-1])
        target = _check_target(target, num_classes)
        score = float(output[0, target])
        if is_fusion and stream is None:
            probability = score
        else:
            probability = float(torch.softmax(output.float(), -1)[0, target])
        shares: dict[str, float] = {}
        if is_fusion:
            with torch.no_grad():
                logits = model.forward_features(shared)
            shares = stream_shares(model, logits, target)
        budget = memory_budget_mb * 2**20
        use_checkpoint = _decide_checkpoint(options.get("checkpoint", "auto"), estimate, budget)
        scorer.use_checkpoint = use_checkpoint
        maps, used = _attribute(method, scorer, xs, target, estimate, budget, options)
    used["checkpoint"] = use_checkpoint
    used["memory_estimate"] = estimate
    return Attribution(
        maps={key: m[0].detach().float().cpu() for key, m in zip(attributed, maps, strict=True)},
        inputs={key: x[0].detach().cpu() for key, x in attributed.items()},
        target=target,
        method=method,
        stream=stream,
        score=score,
        probability=probability,
        shares=shares,
        frame_indices=positions,
        specs=specs,
        options=used,
    )


def _decide_checkpoint(flag: object, estimate: MemoryEstimate, budget: float) -> bool:
    if flag == "auto":
        return estimate.checkpointed_grad_bytes is not None and estimate.grad_bytes > budget
    if isinstance(flag, bool):
        return flag
    raise ModelError(f"checkpoint must be 'auto', True or False, got {flag!r}")


def _grad_cost(estimate: MemoryEstimate, use_checkpoint: bool) -> int:
    if use_checkpoint and estimate.checkpointed_grad_bytes is not None:
        return estimate.checkpointed_grad_bytes
    return estimate.grad_bytes


def _warn_if_over(what: str, need: float, budget: float) -> None:
    if need > budget:
        warnings.warn(
            f"{what} needs about {need / 2**20:.0f} MiB, over memory_budget_mb="
            f"{budget / 2**20:.0f}; it runs with batch size 1 anyway. Use a shorter or smaller "
            "clip, or a method without gradients to the input (grad_cam, occlusion)",
            ResourceWarning,
            stacklevel=3,
        )


def _per_input(value: Any, xs: Sequence[torch.Tensor], name: str) -> tuple:
    """One tuple per input (a single tuple is accepted for a single input)."""
    if len(xs) == 1 and isinstance(value, tuple) and value and isinstance(value[0], int):
        value = (value,)
    value = tuple(tuple(int(v) for v in item) for item in value)
    if len(value) != len(xs) or any(len(v) != x.ndim - 1 for v, x in zip(value, xs, strict=True)):
        raise ModelError(
            f"{name} must give (C, T, H, W) for each of the {len(xs)} inputs, got {value}"
        )
    return value


def _baselines(options: Mapping[str, Any], xs: Sequence[torch.Tensor]) -> tuple:
    base = options.get("baselines")
    if base is None:
        return tuple(torch.zeros_like(x) for x in xs)
    if isinstance(base, (int, float)):
        return tuple(torch.full_like(x, float(base)) for x in xs)
    base = (base,) if isinstance(base, torch.Tensor) else tuple(base)
    if len(base) != len(xs):
        raise ModelError(f"baselines: give one per input ({len(xs)}), got {len(base)}")
    return tuple(
        (b if b.ndim == 5 else b.unsqueeze(0)).to(x.dtype) for b, x in zip(base, xs, strict=True)
    )


def _attribute(
    method: str,
    scorer: _Scores,
    xs: tuple[torch.Tensor, ...],
    target: int,
    estimate: MemoryEstimate,
    budget: float,
    options: Mapping[str, Any],
) -> tuple[tuple[torch.Tensor, ...], dict[str, Any]]:
    from captum.attr import (
        GuidedBackprop,
        IntegratedGradients,
        LayerGradCam,
        NoiseTunnel,
        Occlusion,
        Saliency,
    )

    grad_cost = _grad_cost(estimate, scorer.use_checkpoint)
    used: dict[str, Any] = {}
    if method == "saliency":
        _warn_if_over("saliency", grad_cost, budget)
        inputs = tuple(x.clone().requires_grad_() for x in xs)
        maps = Saliency(scorer).attribute(inputs, target=target, abs=options.get("abs", True))
        return tuple(maps), used
    if method == "smoothgrad":
        samples = int(options.get("nt_samples", 16))
        stdevs = options.get("stdevs")
        if stdevs is None:
            stdevs = tuple(0.15 * float(x.max() - x.min()) for x in xs)
        _warn_if_over("smoothgrad", grad_cost, budget)
        batch = choose_batch_size(grad_cost, budget, samples)
        used.update(nt_samples=samples, stdevs=stdevs, nt_samples_batch_size=batch)
        inputs = tuple(x.clone().requires_grad_() for x in xs)
        maps = NoiseTunnel(Saliency(scorer)).attribute(
            inputs,
            nt_type="smoothgrad",
            nt_samples=samples,
            nt_samples_batch_size=batch,
            stdevs=stdevs if len(xs) > 1 else float(stdevs[0]),
            target=target,
            abs=options.get("abs", True),
        )
        return tuple(m.detach() for m in maps), used
    if method == "integrated_gradients":
        n_steps = int(options.get("n_steps", 50))
        batch = options.get("internal_batch_size")
        if batch is None:
            _warn_if_over("integrated gradients", grad_cost, budget)
            batch = choose_batch_size(grad_cost, budget, n_steps)
        used.update(n_steps=n_steps, internal_batch_size=int(batch))
        maps = IntegratedGradients(scorer).attribute(
            xs,
            baselines=_baselines(options, xs),
            target=target,
            n_steps=n_steps,
            internal_batch_size=int(batch),
        )
        return tuple(maps), used
    if method == "occlusion":
        windows = options.get("sliding_window_shapes")
        if windows is None:
            windows = tuple(
                (
                    x.shape[1],
                    *(
                        math.ceil(s / k)
                        for s, k in zip(x.shape[2:], DEFAULT_OCCLUSION_WINDOWS, strict=True)
                    ),
                )
                for x in xs
            )
        windows = _per_input(windows, xs, "sliding_window_shapes")
        strides = _per_input(options.get("strides", windows), xs, "strides")
        # Captum occludes each input in turn: the evaluations add up over inputs.
        count = sum(
            math.prod(
                math.ceil((s - w) / st) + 1
                for s, w, st in zip(x.shape[1:], win, stride, strict=True)
            )
            for x, win, stride in zip(xs, windows, strides, strict=True)
        )
        per_eval = options.get("perturbations_per_eval")
        if per_eval is None:
            fixed = 3 * estimate.input_bytes  # Captum's sums and counts, the input
            per_item = estimate.no_grad_bytes + estimate.input_bytes
            _warn_if_over("occlusion", fixed + per_item, budget)
            per_eval = choose_batch_size(per_item, budget - fixed, count)
        used.update(
            sliding_window_shapes=windows,
            strides=strides,
            perturbations_per_eval=int(per_eval),
            evaluations=count,
        )
        with torch.no_grad():
            maps = Occlusion(scorer).attribute(
                xs if len(xs) > 1 else xs[0],
                sliding_window_shapes=windows if len(xs) > 1 else windows[0],
                strides=strides if len(xs) > 1 else strides[0],
                baselines=_baselines(options, xs) if len(xs) > 1 else _baselines(options, xs)[0],
                target=target,
                perturbations_per_eval=int(per_eval),
            )
        return (maps,) if isinstance(maps, torch.Tensor) else tuple(maps), used
    # Grad-CAM family: one stream (or single model), one layer
    explained = scorer.explained()
    if len(xs) != 1:
        raise ModelError(f"{method} needs a single-input stream; this one takes {scorer.keys}")
    layer = _resolve_layer(explained, options.get("layer"))
    used["layer"] = next((n for n, m in explained.named_modules() if m is layer), repr(layer))
    cam = LayerGradCam(scorer, layer).attribute(xs[0], target=target, relu_attributions=True)
    cam = _upsample_cam(cam.detach(), explained, tuple(xs[0].shape[2:]))
    if method == "grad_cam":
        return (cam,), used
    _warn_if_over("guided backprop", grad_cost, budget)
    with _guided_functional_relus(explained), warnings.catch_warnings():
        # Captum announces its (temporary) ReLU hooks on every call: noise in a notebook.
        warnings.filterwarnings("ignore", message="Setting backward hooks", category=UserWarning)
        guided = GuidedBackprop(scorer).attribute(xs[0].clone().requires_grad_(), target=target)
    return (guided.detach() * cam,), used


def explain_streams(
    model: LateFusion,
    inputs: torch.Tensor | Mapping[str, torch.Tensor],
    *,
    target: int,
    method: Method = "integrated_gradients",
    fused: bool = True,
    **options: Any,
) -> dict[str, Attribution]:
    """:func:`explain` for every stream of a fusion (each on its own input), plus ``"fused"``
    (the fused probability on the shared inputs) unless ``fused=False`` or the method looks
    at a single layer."""
    if not isinstance(model, LateFusion):
        raise ModelError(f"explain_streams needs a LateFusion, got {type(model).__name__}")
    out = {
        name: explain(model, inputs, target=target, method=method, stream=name, **options)
        for name in model.streams
    }
    if fused and method not in ("grad_cam", "guided_grad_cam"):
        out["fused"] = explain(model, inputs, target=target, method=method, **options)
    return out
