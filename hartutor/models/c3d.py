"""C3D: "Learning Spatiotemporal Features with 3D Convolutional Networks" (Tran et al., ICCV 2015).

The Sports-1M network of facebookarchive/C3D (``conv3d_deepnetA_sport1m``): eight 3x3x3
convolutions (stride 1, padding 1) with ReLU, five max-pools (pool1 1x2x2 keeps time, the
others 2x2x2), then fc6/fc7 (4096, ReLU, dropout 0.5) and fc8. Input: 16 frames of
112x112. pool5 pads 1 spatially, as in the widely used PyTorch port (DavideA/c3d-pytorch),
so a 16x112x112 clip gives a 512x1x4x4 map, i.e. 8192 inputs to fc6 (Caffe's pooling rounds
up, which the padding reproduces for 7x7 maps). With 101 classes the network has 78,409,573
parameters; with Sports-1M's 487, 79,991,015.

Layers are named as in the paper (``conv1a`` ... ``conv5b``, ``fc6`` ... ``fc8``). The
Sports-1M weights of DavideA/c3d-pytorch (``c3d.pickle``; keys ``conv1.weight``,
``conv2.weight``, ``conv3a.weight`` ...) load after :func:`c3d_state_dict_from_davidea`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import nn

from hartutor.errors import WeightsError
from hartutor.models.layers import InputSpec
from hartutor.models.registry import register_model

__all__ = ["C3D", "C3D_CONV_NAMES", "c3d", "c3d_feature_shape", "c3d_state_dict_from_davidea"]

C3D_CONV_NAMES: tuple[str, ...] = (
    "conv1a",
    "conv2a",
    "conv3a",
    "conv3b",
    "conv4a",
    "conv4b",
    "conv5a",
    "conv5b",
)
# The pool after each group of convs: (kernel = stride, padding).
_POOLS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "conv1a": ((1, 2, 2), (0, 0, 0)),
    "conv2a": ((2, 2, 2), (0, 0, 0)),
    "conv3b": ((2, 2, 2), (0, 0, 0)),
    "conv4b": ((2, 2, 2), (0, 0, 0)),
    "conv5b": ((2, 2, 2), (0, 1, 1)),
}
_PAPER_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)

# facebookarchive/C3D subtracts the Sports-1M mean cube (16x128x171) from BGR frames; its
# per-channel average is about (B, G, R) = (90, 98, 102), the values common ports subtract
# (e.g. jfzhang95/pytorch-video-recognition). Here in RGB order on the [0, 1] scale, with
# std 1/255 so that the model sees mean-subtracted 0..255 pixels as in Caffe.
_C3D_MEAN_RGB = (102.0 / 255.0, 98.0 / 255.0, 90.0 / 255.0)
_PAPER_SPEC = InputSpec(
    num_frames=16,
    size=(112, 112),
    mean=_C3D_MEAN_RGB,
    std=(1.0 / 255.0,) * 3,
    fps=None,
    description="C3D: 16 consecutive frames resized to 128x171, centre crop 112x112, "
    "Sports-1M mean (RGB ~ 102, 98, 90) subtracted from 0..255 pixels. Caffe's C3D reads "
    "BGR frames; DavideA's port feeds RGB 0..255 without mean subtraction.",
)


def c3d_feature_shape(input_size: Sequence[int]) -> tuple[int, int, int]:
    """(T, H, W) of C3D's pool5 output for a (T, H, W) clip (16x112x112 -> 1x4x4)."""
    if len(input_size) != 3:
        raise ValueError(f"input_size must be (T, H, W), got {input_size}")
    size = list(input_size)
    for kernel, padding in _POOLS.values():
        size = [(n + 2 * p - k) // k + 1 for n, k, p in zip(size, kernel, padding, strict=True)]
    if min(size) < 1:
        raise ValueError(
            f"a {tuple(input_size)} clip is too small for C3D's five poolings; use at least "
            "16 frames of 32x32"
        )
    return size[0], size[1], size[2]


class C3D(nn.Module):
    """C3D (one class for the paper network and its scaled-down variants).

    Args:
        num_classes: outputs of fc8 (487 for Sports-1M, 101 for UCF101).
        in_channels: input channels (3 for RGB).
        dropout: dropout after fc6 and fc7 (0.5 in the paper).
        channels: output channels of conv1a .. conv5b.
        fc_features: width of fc6 and fc7 (4096 in the paper).
        input_size: (T, H, W) of the clips; fixes the size of fc6's input.
        input_spec: what the model expects (stored as ``model.input_spec``).
    """

    def __init__(
        self,
        *,
        num_classes: int = 487,
        in_channels: int = 3,
        dropout: float = 0.5,
        channels: Sequence[int] = _PAPER_CHANNELS,
        fc_features: int = 4096,
        input_size: Sequence[int] = (16, 112, 112),
        input_spec: InputSpec | None = None,
    ) -> None:
        super().__init__()
        if len(channels) != len(C3D_CONV_NAMES):
            raise ValueError(f"channels needs {len(C3D_CONV_NAMES)} entries, got {channels}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if num_classes < 1 or in_channels < 1 or fc_features < 1:
            raise ValueError("num_classes, in_channels and fc_features must be >= 1")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.input_size = tuple(int(n) for n in input_size)
        self.feature_shape = (int(channels[-1]), *c3d_feature_shape(self.input_size))
        self.input_spec = input_spec if input_spec is not None else _PAPER_SPEC

        previous = in_channels
        self.layer_names: list[str] = []
        for name, out in zip(C3D_CONV_NAMES, channels, strict=True):
            self.add_module(name, nn.Conv3d(previous, int(out), kernel_size=3, padding=1))
            self.layer_names.append(name)
            previous = int(out)
            if name in _POOLS:
                kernel, padding = _POOLS[name]
                pool_name = f"pool{name[4]}"
                self.add_module(pool_name, nn.MaxPool3d(kernel, stride=kernel, padding=padding))
                self.layer_names.append(pool_name)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        flat = self.feature_shape[0] * self.feature_shape[1] * self.feature_shape[2]
        flat *= self.feature_shape[3]
        self.fc6 = nn.Linear(flat, fc_features)
        self.fc7 = nn.Linear(fc_features, fc_features)
        self.num_features = fc_features
        self.fc8 = nn.Linear(fc_features, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """He initialisation for the ReLU layers, small logits: a plain 8-conv stack
        without BatchNorm barely learns from PyTorch's default init (the signal shrinks
        layer by layer), whereas this trains from scratch in a few dozen steps."""
        for module in self.modules():
            if isinstance(module, (nn.Conv3d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.fc8.weight, std=0.01)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) clip -> pool5 map (N, 512, 1, 4, 4) for 16x112x112 clips."""
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"C3D expects (N, {self.in_channels}, T, H, W) input, got {tuple(x.shape)}"
            )
        for name in self.layer_names:
            x = getattr(self, name)(x)
            if name.startswith("conv"):
                x = self.relu(x)
        return x.contiguous()

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """pool5 map -> fc8 logits, or the fc7 activations (the "C3D features") if asked."""
        if tuple(x.shape[1:]) != self.feature_shape:
            raise ValueError(
                f"C3D's fc6 was built for {self.input_size} clips (pool5 map "
                f"{self.feature_shape}), got a map of {tuple(x.shape[1:])}; resize clips to "
                f"{self.input_size} or build the model with input_size=..."
            )
        x = torch.flatten(x, 1)
        x = self.dropout(self.relu(self.fc6(x)))
        x = self.dropout(self.relu(self.fc7(x)))
        return x if pre_logits else self.fc8(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc8

    def reset_classifier(self, num_classes: int) -> None:
        """Replace fc8, e.g. to fine-tune Sports-1M weights on UCF101 (101 classes)."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.fc8 = nn.Linear(self.num_features, num_classes).to(self.fc7.weight.device)
        nn.init.normal_(self.fc8.weight, std=0.01)
        nn.init.zeros_(self.fc8.bias)


_TINY_CHANNELS = (8, 16, 32, 32, 64, 64, 64, 64)


@register_model("c3d")
def c3d(
    *,
    preset: Literal["paper", "tiny"] = "paper",
    num_classes: int = 487,
    in_channels: int = 3,
    dropout: float | None = None,
) -> C3D:
    """Build C3D. ``paper``: the Sports-1M network (16x112x112 clips, 4096-wide fc,
    dropout 0.5). ``tiny``: the same layers at 1/8 of the channels and 128-wide fc layers
    for 16x64x64 clips, trainable on a CPU (dropout 0.2 by default: 0.5 on two 128-wide
    layers leaves too little signal). ``dropout`` overrides the preset's value.
    """
    if preset == "paper":
        return C3D(
            num_classes=num_classes,
            in_channels=in_channels,
            dropout=0.5 if dropout is None else dropout,
        )
    if preset == "tiny":
        spec = InputSpec(
            num_frames=16,
            size=(64, 64),
            mean=_C3D_MEAN_RGB if in_channels == 3 else (0.5,) * in_channels,
            std=(1.0 / 255.0,) * in_channels,
            description="tiny C3D: 16 frames of 64x64, normalised as the paper model",
        )
        return C3D(
            num_classes=num_classes,
            in_channels=in_channels,
            dropout=0.2 if dropout is None else dropout,
            channels=_TINY_CHANNELS,
            fc_features=128,
            input_size=(16, 64, 64),
            input_spec=spec,
        )
    raise ValueError(f"unknown C3D preset {preset!r}; use 'paper' or 'tiny'")


# DavideA/c3d-pytorch (C3D_model.py) names conv1/conv2 without the paper's "a".
_DAVIDEA_RENAMES = {"conv1": "conv1a", "conv2": "conv2a"}


def c3d_state_dict_from_davidea(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """DavideA/c3d-pytorch's ``c3d.pickle`` state dict, renamed for :class:`C3D`.

    ``conv1.*`` -> ``conv1a.*``, ``conv2.*`` -> ``conv2a.*``, everything else unchanged; a
    ``module.`` prefix is stripped. The result is checked against the paper network (with
    as many classes as its ``fc8``): unknown or missing keys and shape mismatches raise
    :class:`WeightsError`.
    """
    renamed: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        key = key[len("module.") :] if key.startswith("module.") else key
        layer, _, leaf = key.partition(".")
        renamed[f"{_DAVIDEA_RENAMES.get(layer, layer)}.{leaf}"] = value
    if "fc8.bias" not in renamed:
        raise WeightsError(
            "state dict has no 'fc8.bias': not a DavideA/c3d-pytorch C3D "
            f"(keys: {', '.join(sorted(renamed)[:6])} ...)"
        )
    num_classes = int(renamed["fc8.bias"].shape[0])
    with torch.device("meta"):
        reference = C3D(num_classes=num_classes).state_dict()
    unknown = sorted(set(renamed) - set(reference))
    missing = sorted(set(reference) - set(renamed))
    if unknown or missing:
        raise WeightsError(
            "state dict does not match C3D: "
            + (f"unexpected keys {unknown}; " if unknown else "")
            + (f"missing keys {missing}" if missing else "")
        )
    wrong = [
        f"{k} {tuple(v.shape)} (C3D wants {tuple(reference[k].shape)})"
        for k, v in renamed.items()
        if tuple(v.shape) != tuple(reference[k].shape)
    ]
    if wrong:
        raise WeightsError(f"state dict has tensors of the wrong shape: {', '.join(wrong)}")
    return {key: renamed[key] for key in reference}
