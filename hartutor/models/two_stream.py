"""Two-stream ConvNets (Simonyan & Zisserman, NeurIPS 2014): appearance and motion, fused late.

- Spatial stream: a 2D CNN on individual RGB frames
  (:class:`~hartutor.models.frame.FrameClassifier`).
- Temporal stream (:class:`TemporalStream`): the same kind of CNN on a stack of ``L``
  consecutive optical-flow fields, ``2L`` input channels with x and y interleaved as in the
  paper (``I(u, v, 2k-1) = d^x_k``, ``I(u, v, 2k) = d^y_k``), after subtracting each field's
  mean displacement (the paper's simple camera-motion compensation).
- Both are CNN-M-2048 (:class:`CNNM2048`, Chatfield et al. 2014): conv1 96 7x7/2, LRN,
  pool 3x3/2; conv2 256 5x5/2, LRN, pool; conv3-5 512 3x3; pool; full6 4096 + dropout;
  full7 2048 + dropout; softmax. The temporal net drops the second LRN ("to reduce memory
  consumption"). LRN parameters, padding and Caffe's ceil-mode pooling follow the
  VGG_CNN_M_2048 Caffe model, so a 224x224 input reaches full6 as 6x6x512.
- Fusion: the mean of the two streams' softmax scores (the paper's "averaging"; its best
  result used an SVM on the scores instead), via :class:`~hartutor.models.fusion.LateFusion`.

Inputs follow ``hartutor.train``'s batches: ``{"video": (N, 3, T, H, W), "flow": (N, 2, T-1,
H, W)}``, flow in pixels/frame, flow ``t`` going from frame ``t`` to ``t+1``. In training the
temporal stream uses one randomly placed stack per clip (as the paper samples one stack per
video); in eval it averages the softmax scores of up to ``num_test_stacks`` evenly spaced
stacks (the paper averages 25 per video).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hartutor.errors import ModelError
from hartutor.models.common import (
    TINY_NUM_FRAMES,
    TINY_SIZE,
    ClassifierHead,
    Consensus,
    Preset,
    check_choice,
    check_clip,
    check_num_classes,
    check_preset,
    frame_consensus,
    tiny_rgb_spec,
)
from hartutor.models.frame import FrameClassifier
from hartutor.models.fusion import FusionMode, FusionOutput, LateFusion
from hartutor.models.layers import InputSpec
from hartutor.models.registry import register_model

__all__ = [
    "CNNM2048",
    "TemporalStream",
    "TwoStreamNetwork",
    "stack_flow",
    "stack_starts",
    "two_stream",
    "two_stream_spatial",
    "two_stream_temporal",
]

PAPER_SIZE = (224, 224)
PAPER_STACK_LENGTH = 10
PAPER_TEST_SAMPLES = 25
# Chatfield et al.'s ImageNet mean for CNN-M on the 0..255 scale (RGB), std 1.
CNN_M_MEAN = (123.68 / 255, 116.779 / 255, 103.939 / 255)
CNN_M_STD = (1 / 255, 1 / 255, 1 / 255)
TINY_CNN_M = {"widths": (16, 32, 64, 64, 64), "fc_sizes": (128, 128), "pool_output": 1}


class CNNM2048(ClassifierHead):
    """CNN-M-2048 with timm's classifier interface (``second_norm=False``: temporal net).

    ``widths``/``fc_sizes``/``pool_output`` shrink it for the tiny preset; the paper values
    are the defaults. ``pool_output`` is the side of the map entering full6 (an adaptive
    average pool, the identity at the paper's 224x224 input, as in torchvision's AlexNet).
    """

    def __init__(
        self,
        *,
        in_chans: int = 3,
        num_classes: int = 1000,
        widths: Sequence[int] = (96, 256, 512, 512, 512),
        fc_sizes: tuple[int, int] = (4096, 2048),
        second_norm: bool = True,
        drop_rate: float = 0.5,
        pool_output: int = 6,
    ) -> None:
        super().__init__()
        if len(widths) != 5 or len(fc_sizes) != 2:
            raise ModelError(
                f"CNN-M needs 5 conv widths and 2 fc sizes, got {tuple(widths)}, {fc_sizes}"
            )
        c1, c2, c3, c4, c5 = widths
        self.in_chans = in_chans
        self.second_norm = second_norm

        def lrn() -> nn.Module:  # Caffe LRN: local_size 5, alpha 5e-4, beta 0.75, k 2
            return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)

        def pool() -> nn.Module:
            return nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.features = nn.Sequential(
            nn.Conv2d(in_chans, c1, 7, stride=2),
            nn.ReLU(inplace=True),
            lrn(),
            pool(),
            nn.Conv2d(c1, c2, 5, stride=2, padding=1),
            nn.ReLU(inplace=True),
            lrn() if second_norm else nn.Identity(),
            pool(),
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, 3, padding=1),
            nn.ReLU(inplace=True),
            pool(),
        )
        self.global_pool = nn.AdaptiveAvgPool2d(pool_output)
        self.fc6 = nn.Linear(c5 * pool_output * pool_output, fc_sizes[0])
        self.fc7 = nn.Linear(fc_sizes[0], fc_sizes[1])
        self.head_drop = nn.Dropout(drop_rate)
        self.num_features = fc_sizes[1]
        self._make_fc(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(F.relu(self.fc6(self.global_pool(x).flatten(1))))
        x = self.head_drop(F.relu(self.fc7(x)))
        return x if pre_logits else self.fc(x)


def stack_starts(num_flows: int, stack_length: int, num_stacks: int) -> torch.Tensor:
    """Evenly spaced first-field indices of ``num_stacks`` stacks (fewer if fewer fit)."""
    positions = num_flows - stack_length + 1
    if positions < 1:
        raise ModelError(
            f"a flow stack needs {stack_length} flow fields (a clip of {stack_length + 1} "
            f"frames) but the clip has {num_flows}; use longer clips or a smaller stack_length"
        )
    count = min(num_stacks, positions)
    return torch.linspace(0, positions - 1, count, dtype=torch.float64).round().long()


def stack_flow(flow: torch.Tensor, starts: torch.Tensor, stack_length: int) -> torch.Tensor:
    """Flow stacks of ``L = stack_length`` fields from ``flow (N, 2, T', H, W)``.

    ``starts``: ``(S,)`` shared or ``(N, S)`` per clip. Returns ``(N, S, 2L, H, W)`` with
    channels ``x_1, y_1, x_2, y_2, ...`` (the paper's interleaving).
    """
    n, _, _, h, w = flow.shape
    if starts.ndim == 1:
        starts = starts.unsqueeze(0).expand(n, -1)
    starts = starts.to(flow.device)
    s = starts.shape[1]
    times = starts.unsqueeze(-1) + torch.arange(stack_length, device=flow.device)  # (N, S, L)
    batch = torch.arange(n, device=flow.device).view(n, 1, 1)
    fields = flow[batch, :, times]  # advanced indices first: (N, S, L, 2, H, W)
    return fields.reshape(n, s, 2 * stack_length, h, w)


class TemporalStream(nn.Module):
    """The temporal ConvNet: a 2D CNN on stacks of ``stack_length`` flow fields.

    ``forward_features``: flow ``(N, 2, T-1, H, W)`` -> backbone feature maps per stack,
    ``(N, S, C', h, w)``; ``forward_head``: per-stack logits averaged by ``consensus``
    (default ``"softmax_mean"``, as the paper averages scores; returned as log of the mean,
    see :func:`~hartutor.models.frame.frame_consensus`).
    """

    input_keys: tuple[str, ...] = ("flow",)

    def __init__(
        self,
        backbone: nn.Module,
        *,
        stack_length: int = PAPER_STACK_LENGTH,
        num_test_stacks: int = PAPER_TEST_SAMPLES,
        subtract_mean_flow: bool = True,
        consensus: Consensus = "softmax_mean",
        input_spec: InputSpec | None = None,
    ) -> None:
        super().__init__()
        check_choice("consensus", consensus, ("logit_mean", "softmax_mean"))
        if stack_length < 1 or num_test_stacks < 1:
            raise ModelError(
                f"stack_length and num_test_stacks must be >= 1, got {stack_length}, "
                f"{num_test_stacks}"
            )
        in_chans = getattr(backbone, "in_chans", None)
        if in_chans is not None and in_chans != 2 * stack_length:
            raise ModelError(
                f"a stack of {stack_length} flow fields has {2 * stack_length} channels but "
                f"the backbone takes {in_chans}; build it with in_chans={2 * stack_length}"
            )
        self.backbone = backbone
        self.stack_length = stack_length
        self.num_test_stacks = num_test_stacks
        self.subtract_mean_flow = subtract_mean_flow
        self.consensus: Consensus = consensus
        self.input_spec = input_spec

    @property
    def num_classes(self) -> int:
        return int(self.backbone.num_classes)

    def stacks(self, flow: torch.Tensor) -> torch.Tensor:
        """The flow stacks the network reads, ``(N, S, 2L, H, W)``."""
        check_clip(flow, channels=2, model=type(self).__name__, what="flow")
        if self.subtract_mean_flow:
            flow = flow - flow.mean(dim=(-2, -1), keepdim=True)
        num_flows = flow.shape[2]
        starts = stack_starts(num_flows, self.stack_length, self.num_test_stacks)
        if self.training:  # one randomly placed stack per clip
            positions = num_flows - self.stack_length + 1
            starts = torch.randint(positions, (flow.shape[0], 1))
        return stack_flow(flow, starts, self.stack_length)

    def forward_features(self, flow: torch.Tensor) -> torch.Tensor:
        stacks = self.stacks(flow)
        n, s = stacks.shape[:2]
        features = self.backbone.forward_features(stacks.flatten(0, 1))
        return features.reshape(n, s, *features.shape[1:])

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        n, s = x.shape[:2]
        out = self.backbone.forward_head(x.flatten(0, 1), pre_logits=pre_logits)
        out = out.reshape(n, s, *out.shape[1:])
        return out.mean(1) if pre_logits else frame_consensus(out, self.consensus)

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(flow))

    def get_classifier(self) -> nn.Module:
        return self.backbone.get_classifier()

    def reset_classifier(self, num_classes: int) -> None:
        self.backbone.reset_classifier(num_classes)


class TwoStreamNetwork(LateFusion):
    """Spatial + temporal streams fused by softmax averaging; input ``{"video", "flow"}``."""

    def __init__(
        self,
        spatial: FrameClassifier,
        temporal: TemporalStream,
        *,
        weights: Mapping[str, float] | None = None,
        mode: FusionMode = "softmax_mean",
        input_spec: InputSpec | None = None,
    ) -> None:
        super().__init__(
            {"spatial": spatial, "temporal": temporal},
            weights=weights,
            mode=mode,
            input_spec=input_spec,
        )

    @property
    def spatial(self) -> FrameClassifier:
        return self.streams["spatial"]  # type: ignore[return-value]

    @property
    def temporal(self) -> TemporalStream:
        return self.streams["temporal"]  # type: ignore[return-value]

    def forward(self, inputs: torch.Tensor | Mapping[str, torch.Tensor]) -> FusionOutput:
        if isinstance(inputs, torch.Tensor):
            raise ModelError(
                "the two-stream network needs both inputs: call it with "
                "{'video': rgb (N, 3, T, H, W), 'flow': flow (N, 2, T-1, H, W)}"
            )
        return super().forward(inputs)


# --------------------------------------------------------------------------- builders


def _spatial(preset: Preset, num_classes: int, drop_rate: float | None) -> FrameClassifier:
    if preset == "tiny":
        net = CNNM2048(
            num_classes=num_classes,
            drop_rate=0.5 if drop_rate is None else drop_rate,
            **TINY_CNN_M,  # type: ignore[arg-type]
        )
        spec = tiny_rgb_spec("scores averaged over frames")
        return FrameClassifier(net, input_spec=spec)
    net = CNNM2048(num_classes=num_classes, drop_rate=0.5 if drop_rate is None else drop_rate)
    spec = InputSpec(
        num_frames=PAPER_STACK_LENGTH + 1,
        size=PAPER_SIZE,
        mean=CNN_M_MEAN,
        std=CNN_M_STD,
        description="two-stream spatial net (CNN-M-2048): 224x224 RGB frames, ImageNet mean "
        "subtracted on the 0..255 scale; scores the middle frame of an 11-frame clip (the "
        "paper averages 25 frames per video)",
    )
    return FrameClassifier(net, num_segments=1, input_spec=spec)


def _temporal(
    preset: Preset, num_classes: int, stack_length: int, drop_rate: float | None
) -> TemporalStream:
    channels = 2 * stack_length
    drop = 0.9 if drop_rate is None else drop_rate
    if preset == "tiny":
        net = CNNM2048(
            in_chans=channels,
            num_classes=num_classes,
            second_norm=False,
            drop_rate=0.5 if drop_rate is None else drop_rate,
            **TINY_CNN_M,  # type: ignore[arg-type]
        )
        frames, size = TINY_NUM_FRAMES, TINY_SIZE
    else:
        net = CNNM2048(
            in_chans=channels, num_classes=num_classes, second_norm=False, drop_rate=drop
        )
        frames, size = stack_length + 1, PAPER_SIZE
    spec = InputSpec(
        num_frames=frames,
        size=size,
        mean=(0.0, 0.0),
        std=(1.0, 1.0),
        description=f"optical flow (2, {frames - 1}, {size[0]}, {size[1]}) in pixels/frame "
        f"(x, y) between consecutive frames; stacks of {stack_length} fields, each field's "
        "mean displacement subtracted",
    )
    return TemporalStream(net, stack_length=stack_length, input_spec=spec)


@register_model()
def two_stream_spatial(
    *, preset: Preset = "paper", num_classes: int = 101, drop_rate: float | None = None
) -> FrameClassifier:
    """The spatial stream alone (CNN-M-2048 on RGB frames), for training it separately."""
    check_preset(preset)
    check_num_classes(num_classes)
    return _spatial(preset, num_classes, drop_rate)


@register_model()
def two_stream_temporal(
    *,
    preset: Preset = "paper",
    num_classes: int = 101,
    stack_length: int = PAPER_STACK_LENGTH,
    drop_rate: float | None = None,
) -> TemporalStream:
    """The temporal stream alone (CNN-M-2048 without norm2 on 2L-channel flow stacks).

    Dropout: 0.9 for ``paper`` (the paper trains this net from scratch with high dropout),
    0.5 for ``tiny``.
    """
    check_preset(preset)
    check_num_classes(num_classes)
    return _temporal(preset, num_classes, stack_length, drop_rate)


@register_model()
def two_stream(
    *,
    preset: Preset = "paper",
    num_classes: int = 101,
    stack_length: int = PAPER_STACK_LENGTH,
    mode: FusionMode = "softmax_mean",
) -> TwoStreamNetwork:
    """Two-stream network: spatial and temporal CNN-M-2048, softmax scores averaged.

    ``paper``: 224x224 inputs, ``stack_length`` 10; the model's clip is ``stack_length + 1``
    frames (one flow stack, the spatial net scoring the middle frame). ``tiny``: CNN-M with
    reduced widths on 16x64x64 clips with flow (2, 15, 64, 64); the spatial net averages all
    16 frames, the temporal net the stacks that fit.
    """
    check_preset(preset)
    check_num_classes(num_classes)
    spatial = _spatial(preset, num_classes, None)
    temporal = _temporal(preset, num_classes, stack_length, None)
    return TwoStreamNetwork(spatial, temporal, mode=mode, input_spec=spatial.input_spec)
