"""Convolutional two-stream fusion (Feichtenhofer, Pinz & Zisserman, CVPR 2016).

The two-stream network of Simonyan & Zisserman (:mod:`hartutor.models.two_stream`) fuses its
streams at the very end, by averaging class scores: the network never learns which motion goes
with which appearance *at the same place*. Feichtenhofer et al. fuse the streams' feature maps
at a convolutional layer instead (conv5, after its ReLU), where both maps are still aligned
pixel to pixel, and continue with one tower (pool5, fc6, fc7, classifier) from there:

- ``"sum"``: ``y = x_spatial + x_temporal``, channel by channel;
- ``"concat"``: stack the ``2C`` channels and learn a ``1x1`` convolution back to ``C``
  (initialised to the sum, ``[I, I]``, as in the paper, so training starts from sum fusion);
- ``"conv3d"``: stack the maps of ``T`` time instances too, ``(2C, T, h, w)``, fuse them with a
  ``3x3x3`` convolution (space *and* time; initialised to the sum at the centre tap) and
  max-pool over time and space (3D pooling) into the tower: the paper's best fusion;
- ``"late"``: no fusion in the convolutions, both towers kept, softmax scores averaged: the
  baseline on the very same streams and time instances, trained as hartutor trains late
  fusions (each stream on its own loss), returning a
  :class:`~hartutor.models.fusion.FusionOutput`.

Each of the ``T`` time instances reads one RGB frame (spatial stream) and a stack of ``L``
flow fields (temporal stream, ``2L`` channels, as
:class:`~hartutor.models.two_stream.TemporalStream`) starting ``L // 2`` fields before it; the
instances are evenly spaced over the clip. The 2D fusions score every instance through the
tower and average the logits over time.

Streams: the ``paper`` preset uses VGG-16 (the paper's final architecture, torchvision's layer
configuration ``"D"``, built from scratch), ``T = 5`` instances ``tau = 10`` frames apart and
``L = 10``; ``backbone="cnn_m_2048"`` gives the VGG-M-2048 (CNN-M-2048) streams the paper's
Table 1 compares fusion methods on, which are hartutor's two-stream streams. The ``tiny``
preset uses the tiny CNN-M streams of ``two_stream``. hartutor keeps only the fused tower; the
paper's final model also keeps the temporal tower and averages the two predictions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from hartutor.errors import ModelError
from hartutor.models.common import (
    TINY_NUM_FRAMES,
    TINY_SIZE,
    Preset,
    check_choice,
    check_clip,
    check_num_classes,
    check_preset,
    tiny_rgb_spec,
)
from hartutor.models.fusion import FusionOutput, fuse_scores
from hartutor.models.layers import InputSpec
from hartutor.models.registry import register_model
from hartutor.models.two_stream import CNN_M_MEAN, CNN_M_STD, CNNM2048, TINY_CNN_M, stack_flow

__all__ = [
    "ConvFusion",
    "ConvFusionNetwork",
    "FusionMethod",
    "TowerHead",
    "conv_fusion",
    "fusion_times",
    "vgg16_trunk",
]

FusionMethod = Literal["sum", "concat", "conv3d", "late"]
Backbone = Literal["vgg16", "cnn_m_2048"]
METHODS: tuple[str, ...] = ("sum", "concat", "conv3d", "late")

PAPER_TIMES = 5  # T: fused time instances (Feichtenhofer et al. 2016, section 4.3)
PAPER_SPACING = 10  # tau: frames between instances
PAPER_STACK_LENGTH = 10  # L: flow fields per stack
TINY_TIMES = 4
TINY_STACK_LENGTH = 5


class TowerHead(nn.Module):
    """What follows pool5 in VGG-M / VGG-16: pool to a fixed grid, fc6, fc7 (ReLU, dropout), fc."""

    def __init__(
        self,
        channels: int,
        *,
        grid: int,
        fc_sizes: tuple[int, int],
        num_classes: int,
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        self.global_pool = nn.AdaptiveAvgPool2d(grid)
        self.fc6 = nn.Linear(channels * grid * grid, fc_sizes[0])
        self.fc7 = nn.Linear(fc_sizes[0], fc_sizes[1])
        self.head_drop = nn.Dropout(drop_rate)
        self.num_features = fc_sizes[1]
        self.num_classes = num_classes
        self.fc = nn.Linear(fc_sizes[1], num_classes)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(F.relu(self.fc6(self.global_pool(x).flatten(1))))
        x = self.head_drop(F.relu(self.fc7(x)))
        return x if pre_logits else self.fc(x)


class ConvFusion(nn.Module):
    """Fuse two aligned feature maps ``(N, C, T, h, w)`` into one, by ``method``.

    ``"sum"``: add; ``"concat"``: ``1x1`` conv on the ``2C`` stacked channels; ``"conv3d"``:
    ``3x3x3`` conv on them. Both convolutions start as the sum (identity on each half; centre
    tap only for the 3D one), so the learned fusion begins where sum fusion is.
    """

    def __init__(self, method: Literal["sum", "concat", "conv3d"], channels: int) -> None:
        super().__init__()
        check_choice("method", method, ("sum", "concat", "conv3d"))
        self.method = method
        self.conv: nn.Conv3d | None = None
        if method != "sum":
            k = 1 if method == "concat" else 3
            self.conv = nn.Conv3d(2 * channels, channels, k, padding=k // 2)
            with torch.no_grad():
                self.conv.weight.zero_()
                self.conv.bias.zero_()
                eye = torch.eye(channels)
                self.conv.weight[:, :channels, k // 2, k // 2, k // 2] = eye
                self.conv.weight[:, channels:, k // 2, k // 2, k // 2] = eye

    def forward(self, spatial: torch.Tensor, temporal: torch.Tensor) -> torch.Tensor:
        if spatial.shape != temporal.shape:
            raise ModelError(
                f"fusion needs aligned maps of one shape, got {tuple(spatial.shape)} and "
                f"{tuple(temporal.shape)}"
            )
        if self.conv is None:
            return spatial + temporal
        return self.conv(torch.cat([spatial, temporal], dim=1))

    def extra_repr(self) -> str:
        return f"method={self.method!r}"


def fusion_times(num_flows: int, stack_length: int, num_times: int) -> torch.Tensor:
    """First flow field of each of ``num_times`` evenly spaced stacks (fewer if fewer fit)."""
    from hartutor.models.two_stream import stack_starts

    return stack_starts(num_flows, stack_length, num_times)


class ConvFusionNetwork(nn.Module):
    """Two streams fused at a convolutional layer (see the module docstring).

    ``spatial_trunk`` / ``temporal_trunk``: image -> conv5 map (after its ReLU) of RGB frames and
    of ``2L``-channel flow stacks; ``pool``: the spatial stream's pool5 (a 2D max-pool);
    ``head``: a :class:`TowerHead`. ``"late"`` also needs ``temporal_head``. Input
    ``{"video": (N, 3, T, H, W), "flow": (N, 2, T-1, H, W)}``. ``forward_features``: the
    fused map ``(N, C, T', h, w)`` (``"late"``: both maps, by stream); ``forward_head``: logits
    ``(N, classes)`` (``"late"``: a :class:`FusionOutput`).
    """

    input_keys: tuple[str, ...] = ("video", "flow")

    def __init__(
        self,
        spatial_trunk: nn.Module,
        temporal_trunk: nn.Module,
        pool: nn.MaxPool2d,
        head: TowerHead,
        *,
        channels: int,
        method: FusionMethod = "conv3d",
        num_times: int = PAPER_TIMES,
        stack_length: int = PAPER_STACK_LENGTH,
        temporal_head: TowerHead | None = None,
        input_spec: InputSpec | None = None,
    ) -> None:
        super().__init__()
        check_choice("method", method, METHODS)
        if num_times < 1 or stack_length < 1:
            raise ModelError(
                f"num_times and stack_length must be >= 1, got {num_times}, {stack_length}"
            )
        if method == "late" and temporal_head is None:
            raise ModelError("late fusion keeps both towers: pass temporal_head")
        self.spatial_trunk = spatial_trunk
        self.temporal_trunk = temporal_trunk
        self.method: FusionMethod = method
        self.fusion = ConvFusion(method, channels) if method != "late" else None
        self.pool = pool
        self.head = head
        self.temporal_pool = pool if method == "late" else None
        self.temporal_head = temporal_head if method == "late" else None
        self.num_times = num_times
        self.stack_length = stack_length
        self.input_spec = input_spec

    @property
    def num_classes(self) -> int:
        return int(self.head.num_classes)

    def stream_inputs(
        self, inputs: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """RGB frames ``(N, T', 3, H, W)`` and flow stacks ``(N, T', 2L, H, W)``, aligned."""
        if not isinstance(inputs, Mapping) or "video" not in inputs or "flow" not in inputs:
            raise ModelError(
                "convolutional fusion needs both inputs: call it with "
                "{'video': rgb (N, 3, T, H, W), 'flow': flow (N, 2, T-1, H, W)}"
            )
        video, flow = inputs["video"], inputs["flow"]
        check_clip(video, channels=3, model="ConvFusionNetwork")
        check_clip(flow, channels=2, model="ConvFusionNetwork", what="flow")
        flow = flow - flow.mean(dim=(-2, -1), keepdim=True)
        starts = fusion_times(flow.shape[2], self.stack_length, self.num_times).to(video.device)
        centres = (starts + self.stack_length // 2).clamp_(max=video.shape[2] - 1)
        frames = video.index_select(2, centres).transpose(1, 2)
        return frames, stack_flow(flow, starts, self.stack_length)

    def stream_maps(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each stream's conv5 maps ``(N, C, T', h, w)``, before fusion."""
        frames, stacks = self.stream_inputs(inputs)
        n, t = frames.shape[:2]
        maps = {
            "spatial": self.spatial_trunk(frames.flatten(0, 1)),
            "temporal": self.temporal_trunk(stacks.flatten(0, 1)),
        }
        return {k: m.reshape(n, t, *m.shape[1:]).transpose(1, 2) for k, m in maps.items()}

    def forward_features(
        self, inputs: Mapping[str, torch.Tensor]
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        maps = self.stream_maps(inputs)
        if self.fusion is None:
            return maps
        return self.fusion(maps["spatial"], maps["temporal"])

    def _tower(self, x: torch.Tensor, pool: nn.MaxPool2d, head: TowerHead) -> torch.Tensor:
        """2D pooling: every time instance through pool5 and the tower, logits averaged."""
        n, _, t = x.shape[:3]
        frames = pool(x.transpose(1, 2).flatten(0, 1))
        return head(frames).reshape(n, t, -1).mean(1)

    def forward_head(
        self, x: torch.Tensor | Mapping[str, torch.Tensor], pre_logits: bool = False
    ) -> torch.Tensor | FusionOutput:
        if pre_logits:
            raise ModelError("ConvFusionNetwork.forward_head has no pre_logits output")
        if isinstance(x, Mapping):  # late fusion: two towers, scores averaged
            assert self.temporal_head is not None and self.temporal_pool is not None
            logits = {
                "spatial": self._tower(x["spatial"], self.pool, self.head),
                "temporal": self._tower(x["temporal"], self.temporal_pool, self.temporal_head),
            }
            return fuse_scores(logits, mode="softmax_mean")
        if self.method != "conv3d":
            return self._tower(x, self.pool, self.head)
        # 3D pooling: max over all time instances and pool5's window in space.
        k, s = self.pool.kernel_size, self.pool.stride
        pooled = F.max_pool3d(
            x, (x.shape[2], k, k), stride=(1, s, s), ceil_mode=self.pool.ceil_mode
        )
        return self.head(pooled.squeeze(2))

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor | FusionOutput:
        return self.forward_head(self.forward_features(inputs))

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int) -> None:
        for head in (self.head, self.temporal_head):
            if head is not None:
                head.num_classes = num_classes
                head.fc = nn.Linear(head.num_features, num_classes, device=head.fc.weight.device)

    def extra_repr(self) -> str:
        return (
            f"method={self.method!r}, num_times={self.num_times}, stack_length={self.stack_length}"
        )


# --------------------------------------------------------------------------- builders


def vgg16_trunk(in_chans: int = 3) -> nn.Sequential:
    """VGG-16's convolutions up to conv5_3's ReLU (torchvision's configuration ``"D"``)."""
    from torchvision.models.vgg import cfgs, make_layers

    layers = make_layers(cfgs["D"], batch_norm=False)
    if in_chans != 3:
        layers[0] = nn.Conv2d(in_chans, 64, 3, padding=1)
    for m in layers.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return nn.Sequential(*list(layers)[:-1])  # drop pool5: the tower's


def _cnn_m_parts(
    preset: Preset, in_chans: int, num_classes: int
) -> tuple[nn.Module, nn.MaxPool2d, TowerHead, int]:
    kwargs = dict(TINY_CNN_M) if preset == "tiny" else {}
    net = CNNM2048(in_chans=in_chans, num_classes=num_classes, second_norm=in_chans == 3, **kwargs)  # type: ignore[arg-type]
    channels = net.features[-3].out_channels
    head = TowerHead(
        channels,
        grid=net.global_pool.output_size,  # type: ignore[arg-type]
        fc_sizes=(net.fc6.out_features, net.fc7.out_features),
        num_classes=num_classes,
    )
    head.load_state_dict(
        {k: v for k, v in net.state_dict().items() if k.split(".")[0] in ("fc6", "fc7", "fc")}
    )
    return net.features[:-1], net.features[-1], head, channels  # type: ignore[return-value]


@register_model()
def conv_fusion(
    *,
    preset: Preset = "paper",
    num_classes: int = 101,
    method: FusionMethod = "conv3d",
    backbone: Backbone | None = None,
    num_times: int | None = None,
) -> ConvFusionNetwork:
    """Spatial and temporal streams fused at conv5 (``method``: sum, concat, conv3d, late).

    ``paper``: VGG-16 streams (``backbone="cnn_m_2048"``: the CNN-M-2048 streams of the paper's
    Table 1) on 224x224 frames, ``T = 5`` instances 10 frames apart, flow stacks of 10 fields;
    the model's clip is 51 frames. ``tiny``: the tiny CNN-M streams of ``two_stream`` on 16x64x64
    clips, 4 instances, stacks of 5 fields.
    """
    check_preset(preset)
    check_num_classes(num_classes)
    check_choice("method", method, METHODS)
    net_kind = backbone or ("vgg16" if preset == "paper" else "cnn_m_2048")
    check_choice("backbone", net_kind, ("vgg16", "cnn_m_2048"))
    if preset == "tiny":
        if net_kind == "vgg16":
            raise ModelError("the tiny preset has CNN-M streams only; use backbone='cnn_m_2048'")
        times = num_times or TINY_TIMES
        stack, frames, size = TINY_STACK_LENGTH, TINY_NUM_FRAMES, TINY_SIZE
        spec = tiny_rgb_spec(f"with its flow; {times} instances fused at conv5 ({method})")
    else:
        times = num_times or PAPER_TIMES
        stack, size = PAPER_STACK_LENGTH, (224, 224)
        frames = (times - 1) * PAPER_SPACING + stack + 1
        spec = InputSpec(
            num_frames=frames,
            size=size,
            mean=CNN_M_MEAN,
            std=CNN_M_STD,
            description=f"{frames} RGB frames of 224x224 (ImageNet mean subtracted, 0..255 "
            f"scale) and their flow; {times} instances {PAPER_SPACING} frames apart fused at "
            f"conv5 ({method})",
        )
    drop = 0.5
    temporal_head = None
    if net_kind == "vgg16":
        spatial, temporal = vgg16_trunk(3), vgg16_trunk(2 * stack)
        pool, channels = nn.MaxPool2d(2, 2), 512
        head = TowerHead(512, grid=7, fc_sizes=(4096, 4096), num_classes=num_classes)
        if method == "late":
            temporal_head = TowerHead(
                512, grid=7, fc_sizes=(4096, 4096), num_classes=num_classes, drop_rate=drop
            )
    else:
        spatial, pool, head, channels = _cnn_m_parts(preset, 3, num_classes)
        temporal, _, flow_head, _ = _cnn_m_parts(preset, 2 * stack, num_classes)
        temporal_head = flow_head if method == "late" else None
    return ConvFusionNetwork(
        spatial,
        temporal,
        pool,
        head,
        channels=channels,
        method=method,
        num_times=times,
        stack_length=stack,
        temporal_head=temporal_head,
        input_spec=spec,
    )
