"""Karpathy et al., "Large-scale Video Classification with Convolutional Neural Networks"
(CVPR 2014): four ways of fusing frames in time, the poster's "3D CNN" row.

One base network, the paper's single-frame model, written
``C(96,11,3)-N-P-C(256,5,1)-N-P-C(384,3,1)-C(384,3,1)-C(256,3,1)-P-FC(4096)-FC(4096)`` on
170x170 frames (C(d, f, s): d filters of f x f with stride s; N: local response
normalisation; P: non-overlapping 2x2 max-pooling), and four ways of extending it in time
(the paper's Section 2.1 and its Figure 1):

- ``"single_frame"``: every frame on its own; the clip's score is the mean of its frames'
  scores (the paper averages predictions over a video). Frame order cannot matter.
- ``"early"``: conv1's filters extend over the whole clip in time (T = 10 frames, about a
  third of a second), so pixels of different frames are combined in the first layer, once.
- ``"late"``: two single-frame towers with shared weights on two frames 15 apart, merged at
  the first fully connected layer: no layer below fc6 sees more than one frame.
- ``"slow"``: time fused a little in each of conv1-conv3: conv1 has temporal extent 4 with
  stride 2 over a 10-frame clip (4 responses in time), conv2 and conv3 extent 2 with stride 2,
  so conv3 sees all 10 frames and the rest of the network is the single-frame one.

Everything is an ``nn.Conv3d`` (temporal kernel 1 where a layer does not fuse time), so one
class builds the four, and :meth:`KarpathyNet.temporal_views` says which frames every unit of
every layer sees (what ``hartutor.viz.plot_temporal_fusion`` draws and the tests check by
perturbing the frames a model does not see). Time steps that are still separate at fc6
(``single_frame``, or a clip longer than a variant's view) get their own scores, averaged.

Assumptions where the paper is silent: conv1 is "valid" (no padding), conv2-conv5 are padded
to keep their size (as in AlexNet), pooling floors, so a 170x170 frame gives a 6x6x256 map
(9216 inputs to fc6). ``multiresolution=True`` builds the paper's "fovea and context"
streams (Section 2.2): two towers of their own, one on the centre crop of half the frame size,
one on the whole frame at half resolution (178x178 frames, 89x89 streams in the paper), the
last pooling layer removed, both conv5 maps concatenated into fc6.
The paper's LRN constants are k=2, n=5, alpha=1e-4, beta=0.5. The tiny preset replaces LRN by
BatchNorm after every convolution (it trains from scratch in minutes on a CPU).

Sizes and the poster. Counted here at 101 classes: single frame 58.7M parameters, early
59.0M, slow 60.3M (61.9M with Sports-1M's 487 classes), late 96.4M (fc6 reads two towers);
fc6's 9216 x 4096 weights are most of each. The poster's "3D CNN" row (79 million, 65.4%)
quotes the paper's UCF101 transfer result: slow fusion pretrained on Sports-1M with its top
three layers retrained on UCF101, 65.4% three-fold accuracy on RGB frames (41.3% trained
from scratch). The paper states no parameter count, and none of the four layouts gives 79M.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from hartutor.errors import ModelError
from hartutor.models.common import (
    TINY_MEAN,
    TINY_NUM_FRAMES,
    TINY_SIZE,
    TINY_STD,
    Preset,
    check_choice,
    check_clip,
    check_num_classes,
    check_preset,
)
from hartutor.models.layers import InputSpec
from hartutor.models.registry import register_model

__all__ = [
    "FUSIONS",
    "Fusion",
    "KarpathyConv",
    "KarpathyLayout",
    "KarpathyNet",
    "karpathy",
    "karpathy_layout",
]

Fusion = Literal["single_frame", "early", "late", "slow"]
FUSIONS: tuple[str, ...] = ("single_frame", "early", "late", "slow")
Norm = Literal["lrn", "batch"]

# The paper's base network: (out channels, spatial kernel, spatial stride, padding, pool after).
_PAPER_CONVS: tuple[tuple[int, int, int, int, bool], ...] = (
    (96, 11, 3, 0, True),
    (256, 5, 1, 2, True),
    (384, 3, 1, 1, False),
    (384, 3, 1, 1, False),
    (256, 3, 1, 1, True),
)
# The tiny preset: the same five convolutions at about 1/6 of the width, on 64x64 frames.
_TINY_CONVS: tuple[tuple[int, int, int, int, bool], ...] = (
    (16, 5, 2, 0, True),
    (32, 3, 1, 1, True),
    (48, 3, 1, 1, False),
    (48, 3, 1, 1, False),
    (32, 3, 1, 1, True),
)
# Sports-1M frames are scaled to [0, 1] and the mean subtracted (the paper gives no values);
# ImageNet's statistics are the usual stand-in.
_PAPER_MEAN = (0.485, 0.456, 0.406)
_PAPER_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class KarpathyLayout:
    """How a variant treats time: the frames it picks, then (extent, stride) in time of conv1-5.

    ``frames``: indices of the clip's frames the towers read (``None``: every frame).
    ``temporal``: per convolution, the kernel extent and stride along time ("valid").
    ``fc_joint``: whether fc6 reads every remaining time step at once (late fusion) or each
    on its own (scores averaged).
    """

    num_frames: int
    frames: tuple[int, ...] | None
    temporal: tuple[tuple[int, int], ...]
    fc_joint: bool


def karpathy_layout(fusion: Fusion, *, num_frames: int, late_gap: int = 15) -> KarpathyLayout:
    """The paper's temporal layout of ``fusion`` for clips of ``num_frames`` frames.

    ``early``: conv1 spans the whole clip. ``slow``: conv1 extent 4, stride 2 (stride 4 for
    clips longer than 10 frames, so that conv3 still sees every frame: 16 -> 4 -> 2 -> 1),
    conv2 and conv3 extent 2, stride 2. ``late``: frames 0 and ``late_gap``.
    """
    check_choice("fusion", fusion, FUSIONS)
    flat = ((1, 1),) * 5
    if fusion == "single_frame":
        return KarpathyLayout(num_frames, None, flat, fc_joint=False)
    if fusion == "early":
        return KarpathyLayout(num_frames, None, ((num_frames, 1), *flat[1:]), fc_joint=False)
    if fusion == "late":
        if not 0 < late_gap < num_frames:
            raise ModelError(f"late_gap must be in 1..{num_frames - 1}, got {late_gap}")
        return KarpathyLayout(num_frames, (0, late_gap), flat, fc_joint=True)
    stride = 2 if num_frames <= 10 else 4
    slow = ((4, stride), (2, 2), (2, 2), (1, 1), (1, 1))
    return KarpathyLayout(num_frames, None, slow, fc_joint=False)


class KarpathyConv(nn.Module):
    """conv (3D, temporal extent 1 where time is not fused) -> ReLU -> norm -> 2x2 max-pool.

    The paper's order is conv, ReLU, LRN, pool (as in Krizhevsky et al.); ``norm="batch"``
    (tiny preset) puts BatchNorm after every conv instead of LRN after conv1 and conv2.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel: int,
        stride: int,
        padding: int,
        temporal: tuple[int, int],
        norm: Norm | None,
        pool: bool,
    ) -> None:
        super().__init__()
        t_kernel, t_stride = temporal
        self.conv = nn.Conv3d(
            in_channels,
            out_channels,
            kernel_size=(t_kernel, kernel, kernel),
            stride=(t_stride, stride, stride),
            padding=(0, padding, padding),
            bias=norm != "batch",
        )
        self.relu = nn.ReLU(inplace=True)
        self.norm: nn.Module
        if norm == "batch":
            self.norm = nn.BatchNorm3d(out_channels)
        elif norm == "lrn":
            self.norm = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.5, k=2.0)
        else:
            self.norm = nn.Identity()
        self.pool = nn.MaxPool3d((1, 2, 2)) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.norm, nn.BatchNorm3d):
            return self.pool(self.relu(self.norm(self.conv(x))))
        return self.pool(self.norm(self.relu(self.conv(x))))


class KarpathyNet(nn.Module):
    """The paper's network with one of its four fusions in time (see the module docstring).

    Args:
        fusion: ``"single_frame"``, ``"early"``, ``"late"`` or ``"slow"``.
        num_classes: outputs of the last layer (487 for Sports-1M, 101 for UCF101).
        in_channels: input channels (3 for RGB).
        num_frames: frames per clip the layout is built for.
        frame_size: (H, W) of the frames; fixes fc6's input size.
        convs: per convolution (channels, kernel, stride, padding, pool after).
        fc_features: width of fc6 and fc7 (4096 in the paper).
        norm: ``"lrn"`` after conv1 and conv2 (paper) or ``"batch"`` after every conv.
        dropout: dropout after fc6 and fc7.
        late_gap: frames between late fusion's two towers (15 in the paper).
        multiresolution: fovea (centre crop) and context (downsampled) streams, each of
            half the frame size, instead of one tower on the whole frame.
        input_spec: what the model expects (``model.input_spec``).
    """

    def __init__(
        self,
        *,
        fusion: Fusion = "slow",
        num_classes: int = 487,
        in_channels: int = 3,
        num_frames: int = 10,
        frame_size: tuple[int, int] = (170, 170),
        convs: Sequence[tuple[int, int, int, int, bool]] = _PAPER_CONVS,
        fc_features: int = 4096,
        norm: Norm = "lrn",
        dropout: float = 0.5,
        late_gap: int = 15,
        multiresolution: bool = False,
        input_spec: InputSpec | None = None,
    ) -> None:
        super().__init__()
        check_num_classes(num_classes)
        check_choice("norm", norm, ("lrn", "batch"))
        if len(convs) != 5:
            raise ModelError(f"convs needs 5 entries (conv1-conv5), got {len(convs)}")
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"dropout must be in [0, 1), got {dropout}")
        self.fusion = fusion
        self.layout = karpathy_layout(fusion, num_frames=num_frames, late_gap=late_gap)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.input_spec = input_spec or InputSpec(
            num_frames,
            self.frame_size,
            _PAPER_MEAN if in_channels == 3 else (0.5,) * in_channels,
            _PAPER_STD if in_channels == 3 else (0.5,) * in_channels,
            description=f"Karpathy et al. 2014, {fusion} fusion: {num_frames} frames of "
            f"{frame_size[0]}x{frame_size[1]} (170x170 crops in the paper; 178x178 with the "
            "multiresolution streams)",
        )
        self.multiresolution = multiresolution
        if multiresolution:  # the streams' last pooling is removed (paper, Section 2.2)
            convs = [*convs[:-1], (*convs[-1][:4], False)]
        self.conv1, self.conv2, self.conv3, self.conv4, self.conv5 = self._tower(convs, norm)
        self.context = nn.Sequential(*self._tower(convs, norm)) if multiresolution else None
        previous = int(convs[-1][0]) * (2 if multiresolution else 1)
        h, w = self.frame_size
        if multiresolution:
            h, w = h // 2, w // 2
        for _out, kernel, stride, padding, pool in convs:
            h = (h + 2 * padding - kernel) // stride + 1
            w = (w + 2 * padding - kernel) // stride + 1
            h, w = (h // 2, w // 2) if pool else (h, w)
        if min(h, w) < 1:
            raise ModelError(f"frames of {frame_size} are too small for this network")
        views = self.temporal_views()
        self.time_steps = len(views["conv5"])
        self.feature_shape = (int(previous), self.time_steps, h, w)
        flat = int(previous) * h * w * (self.time_steps if self.layout.fc_joint else 1)
        self.fc6 = nn.Linear(flat, fc_features)
        self.fc7 = nn.Linear(fc_features, fc_features)
        self.num_features = fc_features
        self.dropout = nn.Dropout(dropout)
        self.fc8 = nn.Linear(fc_features, num_classes)
        self._init_weights()

    def _tower(
        self, convs: Sequence[tuple[int, int, int, int, bool]], norm: Norm
    ) -> list[KarpathyConv]:
        """conv1-conv5 with this fusion's temporal extents (LRN after conv1 and conv2)."""
        layers = []
        previous = self.in_channels
        for i, ((out, kernel, stride, padding, pool), temporal) in enumerate(
            zip(convs, self.layout.temporal, strict=True)
        ):
            layers.append(
                KarpathyConv(
                    previous,
                    out,
                    kernel=kernel,
                    stride=stride,
                    padding=padding,
                    temporal=temporal,
                    norm=norm if (norm == "batch" or i < 2) else None,
                    pool=pool,
                )
            )
            previous = out
        return layers

    def _init_weights(self) -> None:
        """He initialisation for the ReLU layers and small logits (trains from scratch)."""
        for module in self.modules():
            if isinstance(module, (nn.Conv3d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.fc8.weight, std=0.01)

    def temporal_views(self) -> dict[str, list[tuple[int, ...]]]:
        """For ``input``, ``conv1`` ... ``conv5`` and ``fc6``: the frames each time step sees.

        ``fc6`` has one entry per set of frames scored together (one for early, slow and late
        fusion on the paper's clips; one per frame for single-frame).
        """
        n = self.layout.num_frames
        steps: list[tuple[int, ...]] = [
            (f,) for f in (self.layout.frames if self.layout.frames is not None else range(n))
        ]
        views = {"input": steps}
        for name, (extent, stride) in zip(
            ("conv1", "conv2", "conv3", "conv4", "conv5"), self.layout.temporal, strict=True
        ):
            count = (len(steps) - extent) // stride + 1
            if count < 1:
                raise ModelError(
                    f"a {n}-frame clip is too short for {self.fusion} fusion's {name} "
                    f"(temporal extent {extent})"
                )
            steps = [
                tuple(sorted({f for s in steps[j * stride : j * stride + extent] for f in s}))
                for j in range(count)
            ]
            views[name] = steps
        views["fc6"] = (
            [tuple(sorted({f for s in steps for f in s}))] if self.layout.fc_joint else steps
        )
        return views

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) clip -> conv5 map (N, 256, T', 6, 6) at paper size."""
        check_clip(x, channels=self.in_channels, model=f"karpathy ({self.fusion})")
        if x.shape[2] != self.layout.num_frames:
            raise ModelError(
                f"karpathy ({self.fusion}) was built for {self.layout.num_frames}-frame clips, "
                f"got {x.shape[2]} frames; sample {self.layout.num_frames} frames or build it "
                "with num_frames=..."
            )
        if self.layout.frames is not None:
            x = x[:, :, list(self.layout.frames)]
        if self.context is None:
            return self._fovea(x)
        h, w = x.shape[-2:]
        top, left = (h - h // 2) // 2, (w - w // 2) // 2
        fovea = x[..., top : top + h // 2, left : left + w // 2]
        context = F.avg_pool3d(x, (1, 2, 2))  # the whole frame at half resolution
        return torch.cat([self._fovea(fovea), self.context(context)], dim=1)

    def _fovea(self, x: torch.Tensor) -> torch.Tensor:
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            x = conv(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """conv5 map -> fc8 logits (or the fc7 features), time steps averaged if separate."""
        if tuple(x.shape[1:]) != self.feature_shape:
            raise ModelError(
                f"karpathy's fc6 was built for a conv5 map of {self.feature_shape}, got "
                f"{tuple(x.shape[1:])}; use frames of {self.frame_size}"
            )
        n, steps = x.shape[0], x.shape[2]
        # late: every time step into one fc6; otherwise each step alone, (N*T', C*h*w)
        x = x.flatten(1) if self.layout.fc_joint else x.transpose(1, 2).flatten(2).flatten(0, 1)
        x = self.dropout(torch.relu(self.fc6(x)))
        x = self.dropout(torch.relu(self.fc7(x)))
        if not pre_logits:
            x = self.fc8(x)
        if not self.layout.fc_joint:
            x = x.view(n, steps, -1).mean(1)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc8

    def reset_classifier(self, num_classes: int) -> None:
        """Replace fc8 (the paper's UCF101 transfer retrains the top layers on 101 classes)."""
        check_num_classes(num_classes)
        self.num_classes = num_classes
        self.fc8 = nn.Linear(self.num_features, num_classes).to(self.fc7.weight.device)
        nn.init.normal_(self.fc8.weight, std=0.01)
        nn.init.zeros_(self.fc8.bias)


@register_model("karpathy")
def karpathy(
    *,
    fusion: Fusion = "slow",
    preset: Preset = "paper",
    num_classes: int = 487,
    in_channels: int = 3,
    dropout: float | None = None,
    multiresolution: bool = False,
) -> KarpathyNet:
    """Build one of Karpathy et al.'s four networks (``fusion``).

    ``paper``: the base network on 170x170 crops; clips of 1 frame (single-frame), 10 frames
    (early, slow) or 16 frames (late: frames 1 and 16, 15 apart); LRN, 4096-wide fc layers,
    dropout 0.5. ``tiny``: the same layers at about 1/6 of the width with BatchNorm and
    128-wide fc layers (dropout 0.2), on the synthetic set's 16 frames of 64x64 for every
    fusion, so that the four can be compared on the same clips. ``multiresolution``: the
    paper's fovea and context streams (178x178 frames at paper size, 64x64 tiny).
    """
    check_preset(preset)
    check_choice("fusion", fusion, FUSIONS)
    if preset == "paper":
        frames = {"single_frame": 1, "early": 10, "late": 16, "slow": 10}[fusion]
        return KarpathyNet(
            fusion=fusion,
            num_classes=num_classes,
            in_channels=in_channels,
            num_frames=frames,
            frame_size=(178, 178) if multiresolution else (170, 170),
            dropout=0.5 if dropout is None else dropout,
            multiresolution=multiresolution,
        )
    spec = InputSpec(
        TINY_NUM_FRAMES,
        TINY_SIZE,
        TINY_MEAN[:1] * in_channels,
        TINY_STD[:1] * in_channels,
        description=f"tiny Karpathy ({fusion} fusion): 16 frames of 64x64 in [-1, 1]",
    )
    return KarpathyNet(
        fusion=fusion,
        num_classes=num_classes,
        in_channels=in_channels,
        num_frames=TINY_NUM_FRAMES,
        frame_size=TINY_SIZE,
        convs=_TINY_CONVS,
        fc_features=128,
        norm="batch",
        dropout=0.2 if dropout is None else dropout,
        multiresolution=multiresolution,
        input_spec=spec,
    )
