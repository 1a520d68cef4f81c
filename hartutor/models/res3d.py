"""Res3D: "ConvNet Architecture Search for Spatiotemporal Feature Learning" (Tran, Ray, Shou,
Chang and Paluri, arXiv:1708.05038, 2017).

The architecture search of that paper keeps C3D's homogeneous 3x3x3 convolutions and adds
ResNet's identity shortcuts: Res3D is a 3D ResNet-18 (a 3x7x7 stem, four stages of two basic
blocks of two 3x3x3 convolutions each, strides 2 in space and time from the second stage on,
global average pooling, one linear layer). torchvision's ``r3d_18`` *is* this network, so
hartutor does not rewrite it: :class:`Res3D` subclasses torchvision's ``VideoResNet`` and
builds its stages with torchvision's own ``BasicBlock``, ``Conv3DSimple`` and
``VideoResNet._make_layer``.

Why a subclass rather than ``r3d_18()`` itself: ``VideoResNet`` hard-codes the widths
64-128-256-512 and its ``BasicStem`` hard-codes 3 input and 64 output channels, so a small
member of the same family (the ``tiny`` preset) cannot be had from it. :class:`Res3D` takes
the four widths (and the input channels) as arguments and otherwise does exactly what
``VideoResNet.__init__`` does; at the paper widths its state dict has the same keys and
shapes as ``torchvision.models.video.r3d_18`` (tested), so torchvision's Kinetics-400 weights
load into it unchanged. It adds hartutor's model interface: ``forward_features`` /
``forward_head``, ``get_classifier`` / ``reset_classifier`` and an ``input_spec``.

At 101 classes the paper network has 33,218,085 parameters (the poster's "33 Million").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

# torchvision is imported after hartutor._compat: the package __init__ runs it first.
from torchvision.models.video.resnet import BasicBlock, Conv3DSimple, VideoResNet

from hartutor.models.layers import InputSpec
from hartutor.models.registry import register_model

__all__ = ["KINETICS_MEAN", "KINETICS_STD", "PAPER_SPEC", "Res3D", "res3d"]

#: torchvision's video weights transforms (``VideoClassification``): Kinetics-400 mean/std.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
_PAPER_WIDTHS = (64, 128, 256, 512)
_LAYERS = (2, 2, 2, 2)  # ResNet-18: two basic blocks per stage

PAPER_SPEC = InputSpec(
    num_frames=16,
    size=(112, 112),
    mean=KINETICS_MEAN,
    std=KINETICS_STD,
    fps=None,
    description="Res3D (torchvision r3d_18): 16-frame clips (Tran et al. 2017 searched on 8 "
    "frames; torchvision's Kinetics-400 weights were trained on 16), resized to 128x171, "
    "centre crop 112x112, Kinetics mean/std on [0, 1] RGB.",
    resize_size=128,
)


class Res3D(VideoResNet):
    """A 3D ResNet-18 of any widths (torchvision's ``r3d_18`` at the paper widths).

    Args:
        num_classes: outputs of the final linear layer ``fc``.
        widths: output channels of the stem/``layer1`` .. ``layer4`` (64..512 in the paper).
        in_channels: input channels (3 for RGB).
        input_spec: what the model expects (stored as ``model.input_spec``).
    """

    def __init__(
        self,
        *,
        num_classes: int = 400,
        widths: Sequence[int] = _PAPER_WIDTHS,
        in_channels: int = 3,
        input_spec: InputSpec | None = None,
    ) -> None:
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"widths needs four positive entries, got {tuple(widths)}")
        if num_classes < 1 or in_channels < 1:
            raise ValueError(f"num_classes and in_channels must be >= 1, got {num_classes}")
        # VideoResNet.__init__ with the widths as arguments (it fixes 64..512 itself).
        nn.Module.__init__(self)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.widths = tuple(int(w) for w in widths)
        self.input_spec = input_spec if input_spec is not None else PAPER_SPEC
        # torchvision's BasicStem, with the channels as arguments (same module indices).
        self.stem = nn.Sequential(
            nn.Conv3d(
                in_channels,
                self.widths[0],
                kernel_size=(3, 7, 7),
                stride=(1, 2, 2),
                padding=(1, 3, 3),
                bias=False,
            ),
            nn.BatchNorm3d(self.widths[0]),
            nn.ReLU(inplace=True),
        )
        self.inplanes = self.widths[0]
        for index, (width, blocks) in enumerate(zip(self.widths, _LAYERS, strict=True)):
            stride = 1 if index == 0 else 2
            layer = self._make_layer(BasicBlock, Conv3DSimple, width, blocks, stride=stride)
            self.add_module(f"layer{index + 1}", layer)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.num_features = self.widths[-1] * BasicBlock.expansion
        self.fc = nn.Linear(self.num_features, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """VideoResNet's initialisation: He (fan-out) convs, unit BatchNorm, small fc."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) clip -> layer4 map (N, 512, T/8, H/16, W/16) at paper widths."""
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"Res3D expects (N, {self.in_channels}, T, H, W) input, got {tuple(x.shape)}"
            )
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """layer4 map -> logits (N, num_classes), or the pooled features (N, 512)."""
        x = self.avgpool(x).flatten(1)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``fc``, e.g. to fine-tune Kinetics-400 weights on UCF101 (101 classes)."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes).to(self.fc.weight.device)
        nn.init.normal_(self.fc.weight, 0, 0.01)
        nn.init.zeros_(self.fc.bias)


_TINY_WIDTHS = (16, 32, 64, 128)


@register_model("res3d")
def res3d(
    *,
    preset: Literal["paper", "tiny"] = "paper",
    num_classes: int = 400,
    in_channels: int = 3,
) -> Res3D:
    """Build Res3D. ``paper``: torchvision's ``r3d_18`` (16x112x112 clips; its Kinetics-400
    state dict loads as is). ``tiny``: the same 18 layers at 1/4 of the widths (16..128) for
    16x64x64 clips, trainable on a CPU. Train it at learning rate 1e-3 (``--lr 1e-3``): at
    the CLI's default 2e-3 it stayed near chance on the synthetic set (under 10% validation
    top-1 after 4 epochs, at widths 8..64 and 16..128 alike).
    """
    if preset == "paper":
        spec = PAPER_SPEC if in_channels == 3 else _plain_spec(in_channels, 112)
        return Res3D(num_classes=num_classes, in_channels=in_channels, input_spec=spec)
    if preset == "tiny":
        spec = InputSpec(
            num_frames=16,
            size=(64, 64),
            mean=KINETICS_MEAN if in_channels == 3 else (0.0,) * in_channels,
            std=KINETICS_STD if in_channels == 3 else (1.0,) * in_channels,
            description="tiny Res3D: 16 frames of 64x64, normalised as the paper model",
        )
        return Res3D(
            num_classes=num_classes,
            widths=_TINY_WIDTHS,
            in_channels=in_channels,
            input_spec=spec,
        )
    raise ValueError(f"unknown Res3D preset {preset!r}; use 'paper' or 'tiny'")


def _plain_spec(in_channels: int, size: int) -> InputSpec:
    return InputSpec(
        num_frames=16,
        size=(size, size),
        mean=(0.0,) * in_channels,
        std=(1.0,) * in_channels,
        description=f"{in_channels}-channel input, no normalisation defined",
    )
