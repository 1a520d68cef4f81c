"""Frame-level models: a 2D CNN applied to every frame, and LRCN (a 2D CNN into an LSTM).

The first rungs of the timeline treat a video as a bag of images:

- :class:`FrameClassifier` runs any 2D image classifier on each frame of a clip
  ``(N, C, T, H, W) -> (N*T, C, H, W)`` and averages the per-frame class scores (the
  "single-frame" baseline of Karpathy et al. 2014). The same class is the spatial stream of
  the two-stream network (``hartutor.models.two_stream``) and the Xception stream of the late
  fusion (``hartutor.models.xception``): the per-frame wrapper is written once, here.
- :class:`LRCN` (Donahue et al., CVPR 2015) feeds per-frame CNN features into an LSTM and
  averages the per-timestep predictions, so the order of the frames can matter.

A 2D backbone is any module with timm's classifier interface: ``forward_features(images)``
(a feature map), ``forward_head(features, pre_logits=False)`` (pooled features or logits),
``num_classes``, ``num_features``, ``get_classifier()`` and ``reset_classifier(n)``. Every timm
model has it, so ``paper`` presets take timm ImageNet architectures by name, and the small CNNs
written here for the ``tiny`` presets implement it too. Backbones keep their own classifier
(timm ``num_classes=n``) rather than being built with ``num_classes=0``: ImageNet checkpoints
then load into the backbone exactly as timm saved them, classifier included.

Scores averaged over frames (``consensus``):

- ``"logit_mean"``: the mean of the per-frame logits (TSN's average consensus);
- ``"softmax_mean"``: the mean of the per-frame softmax probabilities, as the papers average
  "class scores" at test time. It is returned as its logarithm, ``log(mean_t softmax(z_t))``,
  which is a valid logit vector (its softmax is the mean probability), so the output still
  goes straight into ``nn.CrossEntropyLoss`` and ``argmax``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import partial
from typing import Literal, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from hartutor.errors import ModelError
from hartutor.models.common import (
    ClassifierHead,
    Consensus,
    Preset,
    check_choice,
    check_clip,
    check_num_classes,
    check_preset,
    frame_consensus,
    gather_frames,
    per_item,
    random_segment_indices,
    tiny_rgb_spec,
    uniform_indices,
)
from hartutor.models.layers import InputSpec
from hartutor.models.registry import register_model

__all__ = [
    "LRCN",
    "Consensus",
    "FrameBackbone",
    "FrameClassifier",
    "LRCNConvNet",
    "ModelError",
    "Preset",
    "SmallConvNet",
    "check_choice",
    "check_clip",
    "clip_to_frames",
    "create_timm_backbone",
    "frame_consensus",
    "gather_frames",
    "lrcn",
    "random_segment_indices",
    "single_frame",
    "timm_input_spec",
    "uniform_indices",
]

Aggregate = Literal["mean", "last"]


@runtime_checkable
class FrameBackbone(Protocol):
    """timm's image-classifier interface, the contract for 2D backbones here."""

    num_classes: int
    num_features: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...
    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor: ...
    def get_classifier(self) -> nn.Module: ...
    def reset_classifier(self, num_classes: int) -> None: ...


# --------------------------------------------------------------------------- frame sampling


def clip_to_frames(x: torch.Tensor, *, channels_last: bool = False) -> torch.Tensor:
    """Clips ``(N, C, T, H, W)`` as a batch of frames ``(N*T, C, H, W)``, frame ``t`` of clip
    ``n`` at ``n*T + t``; ``channels_last=True`` lays them out channels-last (same values; see
    :func:`hartutor.accel.ops.cpu_channels_last`). One copy at most, for any strides of
    ``x`` (sampled frames come as a view of a ``(N, T, C, H, W)`` tensor)."""
    n, c, t, h, w = x.shape
    if not channels_last:
        return x.transpose(1, 2).reshape(n * t, c, h, w).contiguous()
    frames = x.permute(0, 2, 3, 4, 1).reshape(n * t, h, w, c).permute(0, 3, 1, 2)
    return frames.contiguous(memory_format=torch.channels_last)


# --------------------------------------------------------------------------- 2D backbones


class SmallConvNet(ClassifierHead):
    """A small 2D CNN for the tiny presets: a strided stem, then conv-BN-ReLU + max-pool stages.

    At 64x64 with the default widths it has about 0.1M parameters and ~15M multiply-adds per
    frame, so a 16-frame clip model trains on a laptop CPU in minutes.
    """

    def __init__(
        self,
        *,
        in_chans: int = 3,
        num_classes: int = 1000,
        widths: Sequence[int] = (16, 32, 64, 128),
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(widths) < 1 or min(widths) < 1:
            raise ModelError(f"widths must be positive channel counts, got {tuple(widths)}")
        self.in_chans = in_chans
        layers: list[nn.Module] = [
            nn.Conv2d(in_chans, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*layers)
        self.num_features = widths[-1]
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(drop_rate)
        self._make_fc(num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.global_pool(x).flatten(1))
        return x if pre_logits else self.fc(x)


class LRCNConvNet(ClassifierHead):
    """The CaffeNet/ZF-style CNN of LRCN's released activity-recognition model, up to ``fc6``.

    Layers as in ``examples/LRCN_activity_recognition/train_test_lstm_RGB.prototxt`` of
    LisaAnne/lisa-caffe-public (the paper calls it a CaffeNet variant): conv1 96 7x7/2,
    ReLU, max-pool 3/2, LRN; conv2 384 5x5/2 (2 groups), ReLU, pool, LRN; conv3 512 3x3;
    conv4 512 3x3 (2 groups); conv5 384 3x3 (2 groups), pool; fc6 4096, ReLU, dropout 0.9.
    Caffe's LRN (size 5, alpha 1e-4, beta 0.75, k 1) and ceil-mode pooling are kept, so a
    227x227 frame gives the 6x6x384 map fc6 expects. ``fc6`` is the pre-logits feature the
    LSTM reads; ``num_classes > 0`` adds a linear classifier for single-frame training
    (LRCN's single-frame baseline).
    """

    def __init__(
        self,
        *,
        in_chans: int = 3,
        num_classes: int = 0,
        widths: Sequence[int] = (96, 384, 512, 512, 384),
        fc6_size: int = 4096,
        drop_rate: float = 0.9,
        pool_output: int = 6,
    ) -> None:
        super().__init__()
        if len(widths) != 5:
            raise ModelError(f"LRCNConvNet needs 5 conv widths, got {tuple(widths)}")
        c1, c2, c3, c4, c5 = widths
        self.in_chans = in_chans

        def pool() -> nn.Module:
            return nn.MaxPool2d(3, stride=2, ceil_mode=True)

        def lrn() -> nn.Module:
            return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)

        self.features = nn.Sequential(
            nn.Conv2d(in_chans, c1, 7, stride=2),
            nn.ReLU(inplace=True),
            pool(),
            lrn(),
            nn.Conv2d(c1, c2, 5, stride=2, groups=2),
            nn.ReLU(inplace=True),
            pool(),
            lrn(),
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, 3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            pool(),
        )
        # Identity at the paper's 227x227 input (already 6x6); lets other sizes run.
        self.global_pool = nn.AdaptiveAvgPool2d(pool_output)
        self.fc6 = nn.Linear(c5 * pool_output * pool_output, fc6_size)
        self.head_drop = nn.Dropout(drop_rate)
        self.num_features = fc6_size
        self._make_fc(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(F.relu(self.fc6(self.global_pool(x).flatten(1))))
        return x if pre_logits else self.fc(x)


def create_timm_backbone(
    name: str, *, num_classes: int, in_chans: int = 3, drop_rate: float = 0.0
) -> nn.Module:
    """A randomly initialised timm image classifier (weights come from ``hartutor.weights``)."""
    import timm

    if not timm.is_model(name):
        close = timm.list_models(f"*{name}*")[:5]
        hint = f" Close names: {close}." if close else ""
        raise ModelError(f"timm has no model {name!r}.{hint} See timm.list_models().")
    return timm.create_model(
        name, pretrained=False, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate
    )


def timm_input_spec(model: nn.Module, *, num_frames: int, description: str = "") -> InputSpec:
    """The :class:`InputSpec` of a timm backbone, read from its pretrained config."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    _, height, width = cfg.get("input_size", (3, 224, 224))
    return InputSpec(
        num_frames=num_frames,
        size=(int(height), int(width)),
        mean=tuple(float(m) for m in cfg.get("mean", (0.485, 0.456, 0.406))),
        std=tuple(float(s) for s in cfg.get("std", (0.229, 0.224, 0.225))),
        description=description,
    )


# --------------------------------------------------------------------------- clip models


class FrameClassifier(nn.Module):
    """A 2D classifier applied to every frame (or ``num_segments`` sampled frames) of a clip.

    ``forward_features``: ``(N, C, T, H, W)`` -> the backbone's feature maps per frame,
    ``(N, S, C', h, w)``. ``forward_head``: per-frame logits averaged by ``consensus``
    (``pre_logits=True``: the backbone's pooled features averaged over frames, ``(N, F)``).
    With ``num_segments`` set, that many frames are taken from equal segments of the clip:
    a random frame per segment in training (TSN), the segment centres in eval mode, or every
    frame with ``eval_all_frames=True`` (TSN's denser testing: training sees fewer frames, the
    scores of a clip then stay the same for any order of its frames).
    """

    input_keys: tuple[str, ...] = ("video",)

    def __init__(
        self,
        backbone: nn.Module,
        *,
        num_segments: int | None = None,
        consensus: Consensus = "softmax_mean",
        input_spec: InputSpec | None = None,
        eval_all_frames: bool = False,
    ) -> None:
        super().__init__()
        check_choice("consensus", consensus, ("logit_mean", "softmax_mean"))
        if num_segments is not None and num_segments < 1:
            raise ModelError(f"num_segments must be >= 1 or None (all frames), got {num_segments}")
        missing = [
            attr
            for attr in ("forward_features", "forward_head", "reset_classifier", "num_classes")
            if not hasattr(backbone, attr)
        ]
        if missing:
            raise ModelError(
                f"{type(backbone).__name__} lacks {missing} of timm's classifier interface "
                "(forward_features, forward_head, num_classes, reset_classifier)"
            )
        self.backbone = backbone
        self.num_segments = num_segments
        self.eval_all_frames = eval_all_frames
        self.consensus: Consensus = consensus
        self.input_spec = input_spec

    @property
    def num_classes(self) -> int:
        return int(self.backbone.num_classes)

    @property
    def num_features(self) -> int:
        return int(self.backbone.num_features)

    def eval_frame_indices(
        self, length: int, device: torch.device | str | None = None
    ) -> torch.Tensor | None:
        """The frames of a ``length``-frame clip scored in eval mode (None: every frame)."""
        if self.num_segments is None or self.eval_all_frames:
            return None
        return uniform_indices(length, self.num_segments, device=device)

    def sample_frames(self, x: torch.Tensor) -> torch.Tensor:
        """The frames the model looks at: all of them, or ``num_segments`` sampled ones."""
        length = x.shape[2]
        if self.training and self.num_segments is not None:
            indices = random_segment_indices(x.shape[0], length, self.num_segments, device=x.device)
        else:
            indices = self.eval_frame_indices(length, device=x.device)
        return x if indices is None else gather_frames(x, indices)

    def to_frames(self, x: torch.Tensor) -> torch.Tensor:
        """Clips ``(N, C, T, H, W)`` as the batch of frames ``(N*T, C, H, W)`` the backbone
        classifies (:func:`clip_to_frames`)."""
        return clip_to_frames(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        channels = self.input_spec.num_channels if self.input_spec is not None else None
        check_clip(x, channels=channels, model=type(self).__name__)
        x = self.sample_frames(x)
        n, t = x.shape[0], x.shape[2]
        features = self.backbone.forward_features(self.to_frames(x))
        return features.reshape(n, t, *features.shape[1:])

    def frame_scores(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Per-frame logits ``(N, S, K)`` (or pooled features) from ``forward_features``."""
        return per_item(partial(self.backbone.forward_head, pre_logits=pre_logits), features)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        scores = self.frame_scores(x, pre_logits=pre_logits)
        if pre_logits:
            return scores.mean(1)
        return frame_consensus(scores, self.consensus)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.backbone.get_classifier()

    def reset_classifier(self, num_classes: int) -> None:
        """New ``num_classes``-way classifier on the backbone (fine-tuning to a new label set)."""
        self.backbone.reset_classifier(num_classes)


class LRCN(nn.Module):
    """Long-term Recurrent Convolutional Network for activity recognition (Donahue et al.).

    Per-frame 2D CNN features (``backbone.forward_head(..., pre_logits=True)``; fc6 in the
    paper) -> LSTM -> dropout -> linear, one prediction per time step. ``aggregate="mean"``
    averages the per-step predictions as LRCN does at test time (with ``consensus``);
    ``"last"`` keeps only the final step, the usual sequence-classification alternative.
    ``forward_features`` returns the LSTM outputs ``(N, T, hidden_size)``.
    """

    input_keys: tuple[str, ...] = ("video",)

    def __init__(
        self,
        backbone: nn.Module,
        *,
        num_classes: int,
        hidden_size: int = 256,
        num_layers: int = 1,
        drop_rate: float = 0.5,
        aggregate: Aggregate = "mean",
        consensus: Consensus = "softmax_mean",
        input_spec: InputSpec | None = None,
    ) -> None:
        super().__init__()
        check_choice("aggregate", aggregate, ("mean", "last"))
        check_choice("consensus", consensus, ("logit_mean", "softmax_mean"))
        self.backbone = backbone
        self.lstm = nn.LSTM(
            int(backbone.num_features), hidden_size, num_layers=num_layers, batch_first=True
        )
        self.head_drop = nn.Dropout(drop_rate)
        self.num_features = hidden_size
        self.num_classes = num_classes
        self.fc = nn.Linear(hidden_size, num_classes) if num_classes > 0 else nn.Identity()
        self.aggregate: Aggregate = aggregate
        self.consensus: Consensus = consensus
        self.input_spec = input_spec

    def to_frames(self, x: torch.Tensor) -> torch.Tensor:
        """Clips ``(N, C, T, H, W)`` as the batch of frames ``(N*T, C, H, W)`` the backbone
        classifies (:func:`clip_to_frames`)."""
        return clip_to_frames(x)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features of every frame, ``(N, T, F)``: what the LSTM reads."""
        channels = self.input_spec.num_channels if self.input_spec is not None else None
        check_clip(x, channels=channels, model=type(self).__name__)
        n, t = x.shape[0], x.shape[2]
        features = self.backbone.forward_head(
            self.backbone.forward_features(self.to_frames(x)), pre_logits=True
        )
        return features.reshape(n, t, -1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.lstm(self.frame_features(x))
        return outputs

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x)
        if pre_logits:
            return x.mean(1) if self.aggregate == "mean" else x[:, -1]
        if self.aggregate == "last":
            return self.fc(x[:, -1])
        return frame_consensus(self.fc(x), self.consensus)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        device = self.lstm.weight_ih_l0.device
        self.num_classes = num_classes
        self.fc = (
            nn.Linear(self.num_features, num_classes, device=device)
            if num_classes > 0
            else nn.Identity()
        )


# --------------------------------------------------------------------------- builders


@register_model()
def single_frame(
    *,
    preset: Preset = "paper",
    num_classes: int = 101,
    backbone: str = "resnet50",
    num_segments: int | None = None,
    consensus: Consensus = "softmax_mean",
    drop_rate: float = 0.0,
) -> FrameClassifier:
    """Single-frame baseline: a 2D CNN on each frame, class scores averaged over frames.

    ``paper``: the timm ImageNet architecture ``backbone`` (default ResNet-50) on 16-frame
    clips at its pretrained input size and normalisation. ``tiny``: :class:`SmallConvNet`
    on 16x64x64 clips (``backbone`` is ignored).
    """
    check_preset(preset)
    check_num_classes(num_classes)
    if preset == "tiny":
        net: nn.Module = SmallConvNet(num_classes=num_classes, drop_rate=drop_rate)
        spec = tiny_rgb_spec("a small 2D CNN per frame")
    else:
        net = create_timm_backbone(backbone, num_classes=num_classes, drop_rate=drop_rate)
        spec = timm_input_spec(
            net,
            num_frames=16,
            description=f"16 RGB frames, each as timm's {backbone} expects (ImageNet "
            "preprocessing); class scores averaged over frames",
        )
    return FrameClassifier(net, num_segments=num_segments, consensus=consensus, input_spec=spec)


@register_model()
def lrcn(
    *,
    preset: Preset = "paper",
    num_classes: int = 101,
    backbone: str | None = None,
    hidden_size: int | None = None,
    aggregate: Aggregate = "mean",
    consensus: Consensus = "softmax_mean",
) -> LRCN:
    """LRCN: per-frame CNN features into an LSTM, per-step predictions averaged.

    ``paper``: LRCN's released RGB model: :class:`LRCNConvNet` fc6 (4096, dropout 0.9)
    into a 256-unit LSTM, dropout 0.5, on 16 frames of 227x227 with the Caffe ImageNet mean
    subtracted (the released data layer uses BGR means 103.939, 116.779, 128.68: the last is
    presumably a typo for 123.68, which is used here, in RGB order). ``backbone`` replaces
    the CNN by a timm architecture's pooled features. ``tiny``: :class:`SmallConvNet`
    features (128) into a 64-unit LSTM on 16x64x64 clips.
    """
    check_preset(preset)
    check_num_classes(num_classes)
    net: nn.Module
    if backbone is not None:
        net = create_timm_backbone(backbone, num_classes=0)
        spec = timm_input_spec(
            net,
            num_frames=16,
            description=f"16 RGB frames, each as timm's {backbone} expects; into an LSTM",
        )
    elif preset == "tiny":
        net = SmallConvNet(num_classes=0)
        spec = tiny_rgb_spec("small CNN into an LSTM")
    else:
        net = LRCNConvNet(num_classes=0)
        spec = InputSpec(
            num_frames=16,
            size=(227, 227),
            mean=(123.68 / 255, 116.779 / 255, 103.939 / 255),
            std=(1 / 255, 1 / 255, 1 / 255),
            description="LRCN (Donahue et al. 2015): 16 RGB frames, 227x227 crops of 240x320 "
            "frames, Caffe ImageNet mean subtracted on the 0..255 scale",
        )
    hidden = hidden_size if hidden_size is not None else (64 if preset == "tiny" else 256)
    return LRCN(
        net,
        num_classes=num_classes,
        hidden_size=hidden,
        aggregate=aggregate,
        consensus=consensus,
        input_spec=spec,
    )


def __getattr__(name: str) -> object:
    """``backbone_frames`` moved to :mod:`hartutor.accel.ops` (the CPU speed work)."""
    if name == "backbone_frames":
        from hartutor.accel import ops

        return ops.backbone_frames
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
