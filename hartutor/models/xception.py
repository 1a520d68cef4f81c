"""Xception (Chollet, CVPR 2017) as a frame-level stream: the 2D half of the late fusion.

``paper``: timm's ``legacy_xception``, the ImageNet Xception ported from Keras (22,855,952
parameters with 1000 classes), applied to each frame by
:class:`~hartutor.models.frame.FrameClassifier`. Its input size and normalisation are read
from timm's pretrained config (299x299, mean = std = 0.5, i.e. [-1, 1]).

``tiny``: :class:`MiniXception`, the same architecture in miniature, built from timm's own
Xception blocks: an entry flow of three strided residual blocks (as Chollet's), a middle flow
of residual blocks, an exit flow of separable convolutions. Every block keeps the
depthwise-separable convolutions (a per-channel 3x3 then a 1x1 across channels) that are the
point of Xception. It trains on 8 frames of each clip, as many as the paper stream scores
(one random frame from each of 8 equal segments, as TSN), and scores every frame in evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hartutor.errors import ModelError
from hartutor.models.common import Consensus, Preset, check_num_classes, check_preset, tiny_rgb_spec
from hartutor.models.frame import FrameClassifier, create_timm_backbone
from hartutor.models.layers import InputSpec
from hartutor.models.registry import register_model

__all__ = ["MiniXception", "xception", "xception_input_spec"]

TIMM_ARCH = "legacy_xception"
PAPER_NUM_FRAMES = 8
#: Frames per clip the tiny preset trains on (one per segment), as many as the paper stream
#: (and the fusion's Xception adapter) take: half the synthetic clip, which halves its training
#: cost. It scores every frame in evaluation.
TINY_NUM_SEGMENTS = 8


class MiniXception(nn.Module):
    """A reduced Xception from timm's ``Block``/``SeparableConv2d``, with timm's interface.

    Entry flow: conv 3x3/2, conv 3x3, then one strided residual block per ``entry_widths``
    entry; middle flow: ``middle_blocks`` residual blocks of three separable convolutions;
    exit flow: a strided block, two separable convolutions, global average pooling. On 64x64
    frames the middle flow runs at 4x4, as Xception's runs at 19x19 on 299x299 (1/16 of the
    side). The defaults are narrow (about 0.18M parameters) so that it trains on a CPU core:
    its narrow, wide-map layers are the slowest part of training per FLOP (``benchmarks/``).
    """

    def __init__(
        self,
        *,
        in_chans: int = 3,
        num_classes: int = 1000,
        stem_widths: tuple[int, int] = (8, 16),
        entry_widths: Sequence[int] = (24, 48, 96),
        middle_blocks: int = 2,
        exit_widths: tuple[int, int, int] = (128, 160, 192),
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        from timm.models.xception import Block, SeparableConv2d

        if not entry_widths or middle_blocks < 0:
            raise ModelError(
                f"entry_widths must be non-empty and middle_blocks >= 0, got "
                f"{tuple(entry_widths)}, {middle_blocks}"
            )
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, stem_widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(stem_widths[0]),
            nn.ReLU(inplace=True),
            nn.Conv2d(stem_widths[0], stem_widths[1], 3, padding=1, bias=False),
            nn.BatchNorm2d(stem_widths[1]),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        width = stem_widths[1]
        for i, out in enumerate(entry_widths):
            blocks.append(Block(width, out, reps=2, strides=2, start_with_relu=i > 0))
            width = out
        blocks += [Block(width, width, reps=3, strides=1) for _ in range(middle_blocks)]
        blocks.append(Block(width, exit_widths[0], reps=2, strides=2, grow_first=False))
        self.blocks = nn.Sequential(*blocks)
        self.exit = nn.Sequential(
            SeparableConv2d(exit_widths[0], exit_widths[1], 3, 1, 1),
            nn.BatchNorm2d(exit_widths[1]),
            nn.ReLU(inplace=True),
            SeparableConv2d(exit_widths[1], exit_widths[2], 3, 1, 1),
            nn.BatchNorm2d(exit_widths[2]),
            nn.ReLU(inplace=True),
        )
        self.num_features = exit_widths[2]
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(drop_rate)
        self.fc: nn.Module = (
            nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        )
        for m in self.modules():  # timm's Xception initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.exit(self.blocks(self.stem(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.global_pool(x).flatten(1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        device = next(self.parameters()).device
        self.num_classes = num_classes
        self.fc = (
            nn.Linear(self.num_features, num_classes, device=device)
            if num_classes > 0
            else nn.Identity()
        )


def xception_input_spec(num_frames: int = PAPER_NUM_FRAMES) -> InputSpec:
    """Input of the paper Xception stream, from timm's pretrained cfg of ``legacy_xception``."""
    import timm

    cfg = timm.models.get_pretrained_cfg(TIMM_ARCH)
    if cfg is None:  # pragma: no cover - timm always ships this cfg
        raise ModelError(f"timm has no pretrained config for {TIMM_ARCH!r}; upgrade timm")
    _, height, width = cfg.input_size
    return InputSpec(
        num_frames=num_frames,
        size=(int(height), int(width)),
        mean=tuple(float(m) for m in cfg.mean),
        std=tuple(float(s) for s in cfg.std),
        description=f"{num_frames} RGB frames sampled evenly from a clip, each {height}x"
        f"{width} as timm's {TIMM_ARCH} ({cfg.tag}) expects: shorter side "
        f"{int(height / cfg.crop_pct)} ({cfg.interpolation}), centre crop, "
        f"mean {tuple(cfg.mean)}, std {tuple(cfg.std)}",
    )


@register_model()
def xception(
    *,
    preset: Preset = "paper",
    num_classes: int = 1000,
    num_segments: int | None = None,
    consensus: Consensus = "softmax_mean",
    drop_rate: float = 0.0,
    eval_all_frames: bool = False,
) -> FrameClassifier:
    """Xception applied to every frame (or ``num_segments`` sampled frames) of a clip.

    ``paper``: timm ``legacy_xception`` (ImageNet weights load through
    ``hartutor.weights``: ``load_pretrained("xception_imagenet1k_tf")``), input per
    :func:`xception_input_spec` (8 frames, all scored). ``tiny``: :class:`MiniXception` on
    16x64x64 clips. By default it trains on :data:`TINY_NUM_SEGMENTS` frames of each clip
    (one random frame per segment) and scores all 16 in evaluation, so its scores ignore the
    order of the frames like every frame-level model's. ``num_segments=0``: every frame in
    training too; ``eval_all_frames``: see :class:`~hartutor.models.frame.FrameClassifier`.
    """
    check_preset(preset)
    check_num_classes(num_classes)
    every_frame = num_segments == 0
    if preset == "tiny":
        net: nn.Module = MiniXception(num_classes=num_classes, drop_rate=drop_rate)
        spec = tiny_rgb_spec("a miniature Xception per frame")
        if num_segments is None:
            num_segments, eval_all_frames = TINY_NUM_SEGMENTS, True
    else:
        net = create_timm_backbone(TIMM_ARCH, num_classes=num_classes, drop_rate=drop_rate)
        spec = xception_input_spec(PAPER_NUM_FRAMES)
    return FrameClassifier(
        net,
        num_segments=None if every_frame else num_segments,
        consensus=consensus,
        input_spec=spec,
        eval_all_frames=eval_all_frames,
    )
