"""Temporal Segment Networks (Wang et al., ECCV 2016): sparse snippets, a consensus, two streams.

TSN's "good practices" for training two-stream networks on small video sets:

- **Segment sampling** (:func:`segment_starts`, :class:`SegmentSampler`): a clip is split into
  ``K`` equal segments and one short *snippet* is taken from each (one RGB frame, or a stack of
  ``L`` flow fields): at a random place inside the segment in training, at the segment's centre
  in testing. ``K`` snippets cover the whole clip for the price of ``K`` frames.
- **Segmental consensus** (:class:`SegmentConsensus`): the snippets' class scores are combined
  *before* the loss (average in the paper; max and a learned weighted average are its other
  options), so the gradient reaches every snippet through the video-level prediction.
- **Cross-modality initialisation** (:func:`cross_modality_init`): the flow network starts from
  the RGB network's weights; its first convolution, which reads ``2L`` flow channels instead of
  3 RGB ones, gets the RGB filters averaged over the colour channels, replicated ``2L`` times.
- Two streams, RGB and flow, fused late by a weighted average of their scores (1 : 1.5).

:class:`TSN` is one stream over any 2D backbone with timm's classifier interface (see
:mod:`hartutor.models.frame`); the ``tsn`` builder makes the two-stream TSN, a
:class:`~hartutor.models.fusion.LateFusion`. Backbone of the ``paper`` preset: the paper's
BN-Inception (Ioffe & Szegedy 2015) is in neither torchvision nor timm; hartutor uses
torchvision's GoogLeNet, Inception-v1 with BatchNorm, the network BN-Inception modifies (two
3x3 convolutions instead of each 5x5, other pooling) and the one I3D inflates (notebook 05).
The paper also reports GoogLeNet (Inception-v1) two-stream TSN results, so the family is its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
from torch import nn

from hartutor.errors import ModelError
from hartutor.models.common import (
    TINY_NUM_FRAMES,
    TINY_SIZE,
    ClassifierHead,
    Preset,
    check_choice,
    check_clip,
    check_num_classes,
    check_preset,
    gather_frames,
    per_item,
    random_segment_indices,
    tiny_rgb_spec,
    uniform_indices,
)
from hartutor.models.frame import SmallConvNet
from hartutor.models.fusion import FusionMode, LateFusion
from hartutor.models.layers import InputSpec
from hartutor.models.registry import register_model
from hartutor.models.two_stream import stack_flow

__all__ = [
    "TSN",
    "GoogLeNetBackbone",
    "SegmentConsensus",
    "SegmentSampler",
    "cross_modality_init",
    "cross_modality_weight",
    "first_conv",
    "segment_starts",
    "tsn",
]

ConsensusKind = Literal["average", "max", "weighted"]
Modality = Literal["rgb", "flow"]

PAPER_SEGMENTS = 3  # K in training (Wang et al. 2016, section 4.1)
PAPER_TEST_SNIPPETS = 25  # snippets per video in testing (section 4.1)
PAPER_STACK_LENGTH = 5  # flow fields per snippet ("stacking 5 consecutive optical flow fields")
PAPER_STREAM_WEIGHTS = {"rgb": 1.0, "flow": 1.5}  # section 4.1: spatial 1, temporal 1.5
TINY_SEGMENTS = 3
TINY_STACK_LENGTH = 5
TINY_WIDTHS = (16, 32, 64, 64)


# --------------------------------------------------------------------------- segment sampling


def segment_starts(
    length: int,
    num_segments: int,
    *,
    snippet_length: int = 1,
    training: bool = False,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """First index of each of ``num_segments`` snippets of ``snippet_length`` in ``range(length)``.

    The ``length - snippet_length + 1`` places a snippet can start are cut into equal segments;
    ``training=True`` draws one place inside every segment (:func:`random_segment_indices`),
    otherwise the segments' centres (:func:`uniform_indices`). Returns ``(K,)``, or ``(N, K)``
    with ``batch_size`` (one draw per clip).
    """
    positions = length - snippet_length + 1
    if snippet_length < 1 or positions < 1:
        raise ModelError(
            f"a snippet of {snippet_length} needs at least that many frames (or flow fields), "
            f"the clip has {length}; use longer clips or a shorter snippet"
        )
    if training:
        starts = random_segment_indices(
            batch_size or 1, positions, num_segments, generator=generator, device=device
        )
        return starts if batch_size is not None else starts[0]
    starts = uniform_indices(positions, num_segments, device=device)
    return starts if batch_size is None else starts.unsqueeze(0).expand(batch_size, -1)


@dataclass(frozen=True)
class SegmentSampler:
    """TSN's sampler for data pipelines: which frames of a ``length``-frame clip to decode.

    ``sampler(length, training=...)`` gives the ``K`` snippet starts; :meth:`frame_indices`
    every frame each snippet reads, ``(K, snippet_length)``. For a flow snippet of ``L``
    fields, decode ``L + 1`` frames (``snippet_length=L + 1``) or read ``L`` stored fields.
    """

    num_segments: int = PAPER_SEGMENTS
    snippet_length: int = 1

    def __post_init__(self) -> None:
        if self.num_segments < 1 or self.snippet_length < 1:
            raise ModelError(
                f"num_segments and snippet_length must be >= 1, got {self.num_segments}, "
                f"{self.snippet_length}"
            )

    def __call__(
        self, length: int, *, training: bool, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return segment_starts(
            length,
            self.num_segments,
            snippet_length=self.snippet_length,
            training=training,
            generator=generator,
        )

    def frame_indices(
        self, length: int, *, training: bool, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Every frame index the snippets read, ``(K, snippet_length)``."""
        starts = self(length, training=training, generator=generator)
        return starts.unsqueeze(1) + torch.arange(self.snippet_length)


# --------------------------------------------------------------------------- consensus


class SegmentConsensus(nn.Module):
    """Combine per-snippet class scores ``(N, K, classes)`` into one ``(N, classes)``.

    ``"average"`` (the paper's choice), ``"max"``, or ``"weighted"``: a learned weight per
    segment (initialised to ``1/K``, so it starts as the average; ``num_segments`` required and
    the number of snippets then fixed). The scores are logits and so is the result: the softmax
    and the loss come after the consensus, as in the paper.
    """

    def __init__(self, kind: ConsensusKind = "average", num_segments: int | None = None) -> None:
        super().__init__()
        check_choice("consensus", kind, ("average", "max", "weighted"))
        self.kind: ConsensusKind = kind
        if kind == "weighted":
            if num_segments is None or num_segments < 1:
                raise ModelError("a weighted consensus needs num_segments (one weight each)")
            self.weight = nn.Parameter(torch.full((num_segments,), 1.0 / num_segments))
        else:
            self.register_parameter("weight", None)

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        if scores.ndim != 3:
            raise ModelError(f"consensus expects scores (N, K, classes), got {tuple(scores.shape)}")
        if self.kind == "average":
            return scores.mean(1)
        if self.kind == "max":
            return scores.amax(1)
        if scores.shape[1] != self.weight.shape[0]:
            raise ModelError(
                f"the weighted consensus learned {self.weight.shape[0]} segment weights but got "
                f"{scores.shape[1]} snippets; test with as many snippets as segments"
            )
        return torch.einsum("nkc,k->nc", scores, self.weight.to(scores.dtype))

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


# --------------------------------------------------------------------------- cross-modality init


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` of ``model`` (in module order): the one that reads the input."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ModelError(f"{type(model).__name__} has no Conv2d layer")


def cross_modality_weight(rgb_weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """TSN's flow filters from RGB filters: ``(out, 3, kh, kw) -> (out, in_chans, kh, kw)``.

    Each filter's weights are averaged over the RGB channels and the average replicated to
    every flow channel (``in_chans = 2L``), as in section 3.2 of the paper.
    """
    if rgb_weight.ndim != 4:
        raise ModelError(f"expected a conv weight (out, in, kh, kw), got {tuple(rgb_weight.shape)}")
    if in_chans < 1:
        raise ModelError(f"in_chans must be >= 1, got {in_chans}")
    mean = rgb_weight.mean(dim=1, keepdim=True)
    return mean.expand(-1, in_chans, -1, -1).clone()


@torch.no_grad()
def cross_modality_init(flow_net: nn.Module, rgb_net: nn.Module) -> nn.Module:
    """Initialise ``flow_net`` from ``rgb_net`` (same architecture but the input channels).

    Every tensor whose shape matches is copied; the first convolution's weight is
    :func:`cross_modality_weight` of the RGB one. Returns ``flow_net``.
    """
    flow_conv, rgb_conv = first_conv(flow_net), first_conv(rgb_net)
    conv_key = next(name for name, m in flow_net.named_modules() if m is flow_conv) + ".weight"
    first = cross_modality_weight(rgb_conv.weight, flow_conv.in_channels)
    rgb_state, flow_state = rgb_net.state_dict(), flow_net.state_dict()
    new = {name: first if name == conv_key else rgb_state.get(name) for name in flow_state}
    differ = [
        name
        for name, tensor in flow_state.items()
        if new[name] is None or new[name].shape != tensor.shape
    ]
    if differ:
        raise ModelError(
            f"the flow and RGB networks differ beyond their first conv's input channels: "
            f"{differ[:5]}; build both with the same architecture"
        )
    for name, tensor in flow_state.items():
        tensor.copy_(new[name])
    return flow_net


# --------------------------------------------------------------------------- backbone


class GoogLeNetBackbone(ClassifierHead):
    """torchvision's GoogLeNet (Inception-v1 with BatchNorm) with timm's classifier interface.

    ``in_chans`` other than 3 replaces the stem convolution (flow stacks); the auxiliary
    classifiers are left out, as TSN trains without them. ``drop_rate`` is the dropout before
    the classifier (TSN: 0.8 spatial, 0.7 temporal).
    """

    def __init__(self, *, in_chans: int = 3, num_classes: int = 1000, drop_rate: float = 0.2):
        super().__init__()
        from torchvision.models import googlenet

        net = googlenet(weights=None, aux_logits=False, init_weights=True, transform_input=False)
        if in_chans != 3:
            old = net.conv1.conv
            net.conv1.conv = nn.Conv2d(in_chans, old.out_channels, 7, 2, 3, bias=False)
            nn.init.trunc_normal_(net.conv1.conv.weight, std=0.01, a=-2, b=2)
        self.in_chans = in_chans
        names = [n for n, _ in net.named_children() if n not in ("aux1", "aux2", "avgpool")]
        self.features = nn.Sequential(*[getattr(net, n) for n in names[: names.index("dropout")]])
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(drop_rate)
        self.num_features = 1024
        self._make_fc(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.global_pool(x).flatten(1))
        return x if pre_logits else self.fc(x)


# --------------------------------------------------------------------------- the network


class TSN(nn.Module):
    """One TSN stream: ``K`` snippets through a 2D ``backbone``, their scores combined.

    ``modality="rgb"``: input ``video (N, 3, T, H, W)``, one frame per snippet. ``"flow"``:
    input ``flow (N, 2, T-1, H, W)``, a stack of ``snippet_length`` fields per snippet (``2L``
    channels, x and y interleaved, each field's mean subtracted, as
    :class:`~hartutor.models.two_stream.TemporalStream`). ``num_segments`` snippets in
    training, ``num_test_snippets`` (default the same) in eval mode.
    ``forward_features``: ``(N, K, C', h, w)``; ``forward_head``: consensus logits ``(N, classes)``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        modality: Modality = "rgb",
        num_segments: int = PAPER_SEGMENTS,
        num_test_snippets: int | None = None,
        snippet_length: int | None = None,
        consensus: ConsensusKind = "average",
        input_spec: InputSpec | None = None,
    ) -> None:
        super().__init__()
        check_choice("modality", modality, ("rgb", "flow"))
        length = snippet_length if snippet_length is not None else (1 if modality == "rgb" else 5)
        if modality == "rgb" and length != 1:
            raise ModelError(f"an RGB snippet is one frame, got snippet_length={snippet_length}")
        test = num_test_snippets if num_test_snippets is not None else num_segments
        if num_segments < 1 or test < 1:
            raise ModelError(
                f"num_segments and num_test_snippets must be >= 1, got {num_segments}, {test}"
            )
        if consensus == "weighted" and test != num_segments:
            raise ModelError("a weighted consensus needs num_test_snippets == num_segments")
        channels = 3 if modality == "rgb" else 2 * length
        in_chans = getattr(backbone, "in_chans", channels)
        if in_chans != channels:
            raise ModelError(
                f"a {modality} snippet has {channels} channels but the backbone takes "
                f"{in_chans}; build it with in_chans={channels}"
            )
        self.backbone = backbone
        self.modality: Modality = modality
        self.input_keys: tuple[str, ...] = ("video",) if modality == "rgb" else ("flow",)
        self.num_segments = num_segments
        self.num_test_snippets = test
        self.snippet_length = length
        self.consensus = SegmentConsensus(consensus, num_segments)
        self.input_spec = input_spec

    @property
    def num_classes(self) -> int:
        return int(self.backbone.num_classes)

    def starts(self, length: int, batch_size: int, device: torch.device) -> torch.Tensor:
        """Snippet starts ``(N, K)`` (training) or ``(K,)`` (eval) in a clip of ``length``."""
        if self.training:
            return segment_starts(
                length,
                self.num_segments,
                snippet_length=self.snippet_length,
                training=True,
                batch_size=batch_size,
                device=device,
            )
        return segment_starts(
            length, self.num_test_snippets, snippet_length=self.snippet_length, device=device
        )

    def snippets(self, x: torch.Tensor) -> torch.Tensor:
        """The images the backbone reads, ``(N, K, C, H, W)``."""
        what = "video" if self.modality == "rgb" else "flow"
        check_clip(x, channels=3 if self.modality == "rgb" else 2, model="TSN", what=what)
        starts = self.starts(x.shape[2], x.shape[0], x.device)
        if self.modality == "rgb":
            frames = gather_frames(x, starts)  # (N, C, K, H, W)
            return frames.transpose(1, 2)
        x = x - x.mean(dim=(-2, -1), keepdim=True)
        return stack_flow(x, starts, self.snippet_length)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return per_item(self.backbone.forward_features, self.snippets(x))

    def snippet_scores(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Per-snippet logits ``(N, K, classes)`` (or pooled features) from ``forward_features``."""
        return per_item(partial(self.backbone.forward_head, pre_logits=pre_logits), features)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        scores = self.snippet_scores(x, pre_logits=pre_logits)
        return scores.mean(1) if pre_logits else self.consensus(scores)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.backbone.get_classifier()

    def reset_classifier(self, num_classes: int) -> None:
        self.backbone.reset_classifier(num_classes)

    def extra_repr(self) -> str:
        return (
            f"modality={self.modality!r}, num_segments={self.num_segments}, "
            f"num_test_snippets={self.num_test_snippets}, snippet_length={self.snippet_length}"
        )


# --------------------------------------------------------------------------- builders


def _backbone(preset: Preset, in_chans: int, num_classes: int, drop_rate: float) -> nn.Module:
    if preset == "tiny":
        return SmallConvNet(
            in_chans=in_chans, num_classes=num_classes, widths=TINY_WIDTHS, drop_rate=drop_rate
        )
    return GoogLeNetBackbone(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)


def _flow_spec(frames: int, size: tuple[int, int], stack_length: int) -> InputSpec:
    return InputSpec(
        num_frames=frames,
        size=size,
        mean=(0.0, 0.0),
        std=(1.0, 1.0),
        description=f"optical flow (2, {frames - 1}, {size[0]}, {size[1]}) in pixels/frame; "
        f"snippets of {stack_length} stacked fields, each field's mean subtracted",
    )


@register_model()
def tsn(
    *,
    preset: Preset = "paper",
    num_classes: int = 101,
    num_segments: int | None = None,
    consensus: ConsensusKind = "average",
    cross_modality: bool = True,
    mode: FusionMode = "logit_sum",
    modalities: Sequence[Modality] = ("rgb", "flow"),
) -> LateFusion:
    """Two-stream Temporal Segment Network: RGB and flow TSNs fused with weights 1 : 1.5.

    ``paper``: GoogLeNet (Inception-v1 + BN, in place of the paper's BN-Inception, see the
    module docstring) on 224x224 snippets, ``K = 3`` segments in training, 25 snippets in
    testing, flow stacks of 5 fields, dropout 0.8 (RGB) / 0.7 (flow); the model's clip is 30
    frames (29 flow fields: 25 stacks of 5 start at distinct fields). ``tiny``:
    :class:`SmallConvNet` backbones on 16x64x64 clips, 3 segments in training and testing,
    stacks of 5 fields.
    ``cross_modality``: start the flow stream from the RGB stream's (here random) weights.
    ``mode``: ``"logit_sum"`` (weighted sum of the scores, as the paper) or
    ``"softmax_mean"``. ``modalities``: the streams to build (one alone still trains).
    """
    check_preset(preset)
    check_num_classes(num_classes)
    modalities = tuple(modalities)
    if not modalities or any(m not in ("rgb", "flow") for m in modalities):
        raise ModelError(
            f"modalities must be a non-empty subset of ('rgb', 'flow'), got {modalities}"
        )
    k = (
        num_segments
        if num_segments is not None
        else (PAPER_SEGMENTS if preset == "paper" else TINY_SEGMENTS)
    )
    if preset == "paper":
        stack, test = PAPER_STACK_LENGTH, PAPER_TEST_SNIPPETS
        frames, size = PAPER_TEST_SNIPPETS + PAPER_STACK_LENGTH, (224, 224)
        rgb_spec = InputSpec(
            num_frames=frames,
            size=size,
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
            description="TSN RGB: 224x224 frames, ImageNet normalisation; 25 snippets "
            "scored at test time, 3 segments in training",
        )
        drops = {"rgb": 0.8, "flow": 0.7}
    else:
        stack, test = TINY_STACK_LENGTH, k
        frames, size = TINY_NUM_FRAMES, TINY_SIZE
        rgb_spec = tiny_rgb_spec(f"TSN: {k} snippets, one frame from each of {k} segments")
        drops = {"rgb": 0.5, "flow": 0.5}
    if consensus == "weighted":
        test = k
    rgb_net = _backbone(preset, 3, num_classes, drops["rgb"])
    streams: dict[str, nn.Module] = {}
    if "rgb" in modalities:
        streams["rgb"] = TSN(
            rgb_net,
            modality="rgb",
            num_segments=k,
            num_test_snippets=test,
            consensus=consensus,
            input_spec=rgb_spec,
        )
    if "flow" in modalities:
        flow_net = _backbone(preset, 2 * stack, num_classes, drops["flow"])
        if cross_modality:
            cross_modality_init(flow_net, rgb_net)
        streams["flow"] = TSN(
            flow_net,
            modality="flow",
            num_segments=k,
            num_test_snippets=test,
            snippet_length=stack,
            consensus=consensus,
            input_spec=_flow_spec(frames, size, stack),
        )
    weights = {name: PAPER_STREAM_WEIGHTS[name] for name in streams}
    return LateFusion(streams, weights=weights, mode=mode, input_spec=rgb_spec)
