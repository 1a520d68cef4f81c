"""T3D: "Temporal 3D ConvNets: New Architecture and Transfer Learning for Video
Classification" (Diba, Fayyaz, Sharma, Karami, Arzani, Yousefzadeh and Van Gool,
arXiv:1711.08200, 2017).

T3D is DenseNet-121 (Huang et al. 2017) made 3D: a 3x7x7 stem and max-pool, four dense
blocks of 6, 12, 24 and 16 layers (each layer BN-ReLU-1x1x1 conv to ``bn_size x growth``
channels, then BN-ReLU-3x3x3 conv to ``growth`` = 32 new channels, concatenated to its
input), global average pooling and a linear classifier. Its one new layer is the **Temporal
Transition Layer** (TTL, :class:`TemporalTransition`), which replaces DenseNet's transition
(BN-ReLU-1x1 conv-average pool): after BN-ReLU, several 3D convolutions of different
temporal depths run in parallel on the same map, their outputs are concatenated and a 2x2x2
average pool halves time and space. Short, middle and long temporal ranges are so modelled
side by side, at every resolution, rather than by one fixed 3-frame kernel as in C3D.

Choices where the paper leaves a value open (each an argument of :class:`T3D`):

- Temporal depths: the paper describes the TTL's kernel depths as a set such as
  T in {1, 3, 6}; hartutor uses (1, 3, 6), depth 1 as a 1x1x1 conv and the others as
  d x 3 x 3 convs (``temporal_depths``). The authors' released draft (github.com/
  MohsenFayyaz89/T3D, ``models/T3D.py``, which does not run as published) has 1x1x1, 3x3x3
  and 4x3x3 branches of 128 filters each. Even depths are padded as TensorFlow's SAME
  (the extra frame at the end) so every branch keeps the clip's length.
- Widths: the branches share DenseNet's compressed width (half the TTL's input, θ = 0.5)
  evenly, so the dense blocks see exactly DenseNet-121's widths and the TTL is a drop-in
  replacement of the transition. :meth:`T3D.transition` swaps it back (``ttl=False``) for
  the DenseNet3D-121 baseline of the paper.
- Input: 32 RGB frames of 224x224 (the paper's clips), ImageNet mean/std (the paper
  initialises from a 2D DenseNet trained on ImageNet, below); the stem strides 2 in time
  too (as the authors' draft), so 32 frames leave 1 after the third TTL.

Parameters at 101 classes (counted in ``tests/test_res3d_t3d.py``): 29,425,509 with TTL
depths (1, 3, 6); 25,315,173 with the depths of the authors' draft (1, 3, 4); 11,352,421 for
the plain DenseNet3D-121. The TTLs carry the difference: the d x 3 x 3 branch on the
1024-channel map before the last block alone holds 9.4 M weights at d = 6. The poster's
"25 Million**" (the poster does not say what its double asterisk means) is within 1.3% of
the (1, 3, 4) count; no parameter count for T3D from the paper itself is quoted here, as
none was found in the text available to this project.

**Supervision transfer** (the paper's second contribution, described, not implemented): a 2D
DenseNet-121 pretrained on ImageNet, frozen, is a teacher; frames and clips are paired as
"same video" or "different video", the 2D network embeds a frame, the 3D network (random
init) embeds a clip, and a small binary classifier on the two embeddings learns the
correspondence. Only the 3D network's weights and the classifier are trained; the 3D
network so learns mid-level features the 2D network already has, from unlabelled video,
and is then fine-tuned on the target set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from hartutor.models.layers import InputSpec
from hartutor.models.registry import register_model

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "T3D", "TemporalTransition", "t3d"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAPER_TEMPORAL_DEPTHS = (1, 3, 6)
_DENSENET121_BLOCKS = (6, 12, 24, 16)

_PAPER_SPEC = InputSpec(
    num_frames=32,
    size=(224, 224),
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    fps=None,
    description="T3D: 32 RGB frames resized to 224x224 (Diba et al. 2017), ImageNet mean/std "
    "on [0, 1] RGB (the 2D DenseNet teacher's normalisation).",
)


class _DenseLayer(nn.Module):
    """BN-ReLU-1x1x1 conv (bottleneck) then BN-ReLU-3x3x3 conv: ``growth`` new channels."""

    def __init__(self, in_channels: int, growth: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm3d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv3d(in_channels, bn_size * growth, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm3d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv3d(bn_size * growth, growth, kernel_size=3, padding=1, bias=False)
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.relu1(self.norm1(x)))
        x = self.conv2(self.relu2(self.norm2(x)))
        if self.drop_rate > 0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x


class _DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers, each fed the concatenation of all maps before it."""

    def __init__(
        self, num_layers: int, in_channels: int, growth: int, bn_size: int, drop_rate: float
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = _DenseLayer(in_channels + i * growth, growth, bn_size, drop_rate)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    """DenseNet's transition: BN-ReLU-1x1x1 conv (compression) and 2x2x2 average pool."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm3d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=1, bias=False)
        self.pool = nn.AvgPool3d(kernel_size=2, stride=2)


class TemporalTransition(nn.Module):
    """T3D's Temporal Transition Layer: BN-ReLU, parallel 3D convs of several temporal depths
    (depth 1: 1x1x1; depth d > 1: d x 3 x 3, SAME-padded), concatenated, 2x2x2 average pool.

    Args:
        in_channels: channels of the dense block's output.
        out_channels: channels after concatenation, shared evenly by the branches (the first
            ones take the remainder).
        temporal_depths: one branch per depth, in this order.
    """

    def __init__(self, in_channels: int, out_channels: int, temporal_depths: Sequence[int]) -> None:
        super().__init__()
        depths = tuple(int(d) for d in temporal_depths)
        if not depths or min(depths) < 1:
            raise ValueError(f"temporal_depths needs positive entries, got {temporal_depths}")
        if out_channels < len(depths):
            raise ValueError(f"{out_channels} channels cannot feed {len(depths)} branches")
        self.temporal_depths = depths
        self.norm = nn.BatchNorm3d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        share, extra = divmod(out_channels, len(depths))
        self.branches = nn.ModuleList()
        self.paddings: list[tuple[int, ...]] = []
        for i, depth in enumerate(depths):
            spatial = 1 if depth == 1 else 3
            width = share + (1 if i < extra else 0)
            self.branches.append(
                nn.Conv3d(in_channels, width, kernel_size=(depth, spatial, spatial), bias=False)
            )
            # F.pad order: (W left, W right, H top, H bottom, T before, T after); as TF SAME.
            half = spatial // 2
            self.paddings.append((half, half, half, half, (depth - 1) // 2, depth // 2))
        self.out_channels = out_channels
        self.pool = nn.AvgPool3d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.norm(x))
        outs = [
            conv(F.pad(x, pad) if any(pad) else x)
            for conv, pad in zip(self.branches, self.paddings, strict=True)
        ]
        return self.pool(torch.cat(outs, 1))


class T3D(nn.Module):
    """3D DenseNet with Temporal Transition Layers (DenseNet3D with ``ttl=False``).

    Args:
        num_classes: outputs of ``classifier``.
        in_channels: input channels (3 for RGB).
        growth: channels each dense layer adds (32 in DenseNet-121).
        block_config: dense layers per block (6, 12, 24, 16 in DenseNet-121).
        init_features: channels of the stem (64).
        bn_size: bottleneck width as a multiple of ``growth`` (4).
        drop_rate: dropout after each dense layer (0).
        temporal_depths: the TTL branches' temporal kernel depths (1, 3, 6).
        ttl: False builds DenseNet's plain transitions instead (the DenseNet3D baseline).
        stem_temporal_stride: temporal stride of the stem conv and of its max-pool (2 for the
            paper's 32-frame clips; 1 keeps short clips long enough for three transitions).
        input_spec: what the model expects (stored as ``model.input_spec``).
    """

    def __init__(
        self,
        *,
        num_classes: int = 400,
        in_channels: int = 3,
        growth: int = 32,
        block_config: Sequence[int] = _DENSENET121_BLOCKS,
        init_features: int = 64,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        temporal_depths: Sequence[int] = PAPER_TEMPORAL_DEPTHS,
        ttl: bool = True,
        stem_temporal_stride: int = 2,
        input_spec: InputSpec | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1 or in_channels < 1 or growth < 1 or init_features < 1:
            raise ValueError("num_classes, in_channels, growth and init_features must be >= 1")
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        if not block_config or min(block_config) < 1:
            raise ValueError(f"block_config needs positive entries, got {block_config}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.temporal_depths = tuple(int(d) for d in temporal_depths) if ttl else ()
        self.input_spec = input_spec if input_spec is not None else _PAPER_SPEC
        s = stem_temporal_stride
        self.features = nn.Sequential()
        self.features.add_module(
            "conv0",
            nn.Conv3d(
                in_channels,
                init_features,
                kernel_size=(3, 7, 7),
                stride=(s, 2, 2),
                padding=(1, 3, 3),
                bias=False,
            ),
        )
        self.features.add_module("norm0", nn.BatchNorm3d(init_features))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        self.features.add_module("pool0", nn.MaxPool3d(3, stride=(s, 2, 2), padding=1))
        channels = init_features
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(int(num_layers), channels, growth, bn_size, drop_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            channels += int(num_layers) * growth
            if i == len(block_config) - 1:
                break
            if ttl:
                layer: nn.Module = TemporalTransition(channels, channels // 2, temporal_depths)
                self.features.add_module(f"ttl{i + 1}", layer)
            else:
                self.features.add_module(f"transition{i + 1}", _Transition(channels, channels // 2))
            channels //= 2
        self.features.add_module("norm5", nn.BatchNorm3d(channels))
        self.num_features = channels
        self.classifier = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision DenseNet's initialisation: He convs, unit BatchNorm, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def transition_layers(self) -> list[nn.Module]:
        """The three layers between dense blocks (TTLs, or DenseNet's transitions)."""
        return [m for m in self.features if isinstance(m, (TemporalTransition, _Transition))]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) clip -> final map (N, 1024, T/32, H/32, W/32) at paper size."""
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"T3D expects (N, {self.in_channels}, T, H, W) input, got {tuple(x.shape)}"
            )
        return F.relu(self.features(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Final map -> logits (N, num_classes), or the pooled features (N, 1024)."""
        x = F.adaptive_avg_pool3d(x, 1).flatten(1)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier, e.g. to fine-tune on UCF101 (101 classes)."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.num_features, num_classes).to(
            self.classifier.weight.device
        )
        nn.init.zeros_(self.classifier.bias)


@register_model("t3d")
def t3d(
    *,
    preset: Literal["paper", "tiny"] = "paper",
    num_classes: int = 400,
    in_channels: int = 3,
    ttl: bool = True,
    drop_rate: float = 0.0,
) -> T3D:
    """Build T3D. ``paper``: DenseNet-121 in 3D with TTLs of depths (1, 3, 6), for 32x224x224
    clips. ``tiny``: growth 8, a 16-channel stem and two layers per block, the same TTLs,
    for 16x64x64 clips (stem stride 1 in time), trainable on a CPU. ``ttl=False`` gives the
    DenseNet3D baseline of the same size (plain transitions).
    """
    if preset == "paper":
        spec = _PAPER_SPEC if in_channels == 3 else None
        if spec is None:
            spec = InputSpec(
                num_frames=32,
                size=(224, 224),
                mean=(0.0,) * in_channels,
                std=(1.0,) * in_channels,
                description=f"{in_channels}-channel input, no normalisation defined",
            )
        return T3D(
            num_classes=num_classes,
            in_channels=in_channels,
            ttl=ttl,
            drop_rate=drop_rate,
            input_spec=spec,
        )
    if preset == "tiny":
        spec = InputSpec(
            num_frames=16,
            size=(64, 64),
            mean=IMAGENET_MEAN if in_channels == 3 else (0.0,) * in_channels,
            std=IMAGENET_STD if in_channels == 3 else (1.0,) * in_channels,
            description="tiny T3D: 16 frames of 64x64, normalised as the paper model",
        )
        return T3D(
            num_classes=num_classes,
            in_channels=in_channels,
            growth=8,
            block_config=(2, 2, 2, 2),
            init_features=16,
            drop_rate=drop_rate,
            ttl=ttl,
            stem_temporal_stride=1,
            input_spec=spec,
        )
    raise ValueError(f"unknown T3D preset {preset!r}; use 'paper' or 'tiny'")
