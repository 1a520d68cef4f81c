"""Inflation: turn a 2D image network into a 3D video network (Carreira & Zisserman 2017).

I3D's recipe (section 2.4 of "Quo Vadis"): every N x N filter becomes N x N x N; its 2D
weights are repeated N times along time and divided by N. On a "boring" video, one frame
repeated, each inflated convolution then computes exactly what the 2D one computed on that
frame, so the 3D network's pooled output equals the 2D network's output: ImageNet weights
become a sensible start for video.

Temporal padding decides where that fixed point holds exactly:

- ``time_padding_mode="replicate"`` (pad with copies of the first/last frame): a boring
  video stays boring after padding, so it holds at every time step.
- ``"zeros"`` (the usual padding, and TF's in DeepMind's I3D): the frames near the start and
  end see zero frames, so the output there is smaller (a k-tap filter at the first frame
  sees only (k+1)/2 real frames); time steps whose receptive field lies inside the clip
  are still exact. Anything pooled over the whole clip is therefore *not* exact.
- ``center=True`` (all weight on the central time tap, zeros elsewhere): exact everywhere
  whatever the padding, but the network starts blind to motion.

Max-pools are exact with any temporal padding (padding never wins); average pools with
``count_include_pad=True`` are exact only away from padded time steps.

Also here: :func:`i3d_from_googlenet`, the paper's ImageNet-inflated initialisation of
:class:`~hartutor.models.i3d.InceptionI3d` from torchvision's GoogLeNet (Inception-v1).
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from hartutor.errors import ModelError
from hartutor.models.i3d import InceptionI3d
from hartutor.models.layers import SamePadConv3d, TemporalPadding

__all__ = [
    "InflatedConv3d",
    "InflationError",
    "TemporalSpec",
    "i3d_from_googlenet",
    "inflate_adaptive_pool2d",
    "inflate_batchnorm2d",
    "inflate_conv2d",
    "inflate_model",
    "inflate_pool2d",
    "inflate_still_twin",
    "still_kernel",
]


class InflationError(ModelError):
    """A 2D network (or one of its layers) cannot be inflated as asked."""


@dataclass(frozen=True)
class TemporalSpec:
    """Temporal kernel, stride and padding given to one inflated layer.

    ``padding=None``: ``(kernel - 1) // 2`` for convolutions (keeps the length for odd
    kernels at stride 1), 0 for pools.
    """

    kernel: int = 1
    stride: int = 1
    padding: int | None = None

    def __post_init__(self) -> None:
        if self.kernel < 1 or self.stride < 1 or (self.padding is not None and self.padding < 0):
            raise InflationError(
                f"temporal kernel/stride must be >= 1 and padding >= 0, got {self}"
            )


class InflatedConv3d(nn.Conv3d):
    """A ``nn.Conv3d`` whose time and space padding may use different modes.

    ``nn.Conv3d(padding_mode=...)`` uses one mode for all three axes; inflation needs the 2D
    layer's spatial mode (usually zeros) with a temporal mode of its own (``"replicate"``
    for an exact boring-video fixed point). Parameters and state-dict keys are Conv3d's.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int, int],
        *,
        stride: tuple[int, int, int] = (1, 1, 1),
        padding: tuple[int, int, int] = (0, 0, 0),
        dilation: tuple[int, int, int] = (1, 1, 1),
        groups: int = 1,
        bias: bool = True,
        time_padding_mode: TemporalPadding = "zeros",
        spatial_padding_mode: str = "zeros",
    ) -> None:
        if time_padding_mode not in ("zeros", "replicate"):
            raise InflationError(
                f"time_padding_mode must be 'zeros' or 'replicate', got {time_padding_mode!r}"
            )
        if spatial_padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise InflationError(f"unknown spatial padding mode {spatial_padding_mode!r}")
        pt, ph, pw = padding
        self.explicit_time_padding = pt if time_padding_mode != "zeros" else 0
        self.explicit_spatial_padding = (ph, pw) if spatial_padding_mode != "zeros" else (0, 0)
        implicit = (
            pt - self.explicit_time_padding,
            ph - self.explicit_spatial_padding[0],
            pw - self.explicit_spatial_padding[1],
        )
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=implicit,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.time_padding_mode = time_padding_mode
        self.spatial_padding_mode = spatial_padding_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ph, pw = self.explicit_spatial_padding
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph, 0, 0), mode=self.spatial_padding_mode)
        if self.explicit_time_padding:
            pt = self.explicit_time_padding
            x = F.pad(x, (0, 0, 0, 0, pt, pt), mode="replicate")
        return super().forward(x)

    def extra_repr(self) -> str:
        pt = self.explicit_time_padding
        ph, pw = self.explicit_spatial_padding
        extra = ""
        if pt:
            extra += f", time_padding={pt} ({self.time_padding_mode})"
        if ph or pw:
            extra += f", spatial_padding=({ph}, {pw}) ({self.spatial_padding_mode})"
        return super().extra_repr() + extra


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if len(value) == 1:
        return (int(value[0]), int(value[0]))
    return (int(value[0]), int(value[1]))


def _conv2d_padding(conv2d: nn.Conv2d) -> tuple[int, int]:
    padding = conv2d.padding
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        totals = [d * (k - 1) for d, k in zip(conv2d.dilation, conv2d.kernel_size, strict=True)]
        if any(t % 2 for t in totals):
            raise InflationError(
                f"{conv2d} uses padding='same' with an even kernel (asymmetric padding); "
                "give it explicit integer padding before inflating"
            )
        return (totals[0] // 2, totals[1] // 2)
    return _pair(padding)  # type: ignore[arg-type]


def inflate_conv2d(
    conv2d: nn.Conv2d,
    time_kernel: int,
    *,
    time_stride: int = 1,
    time_padding: int | None = None,
    time_padding_mode: TemporalPadding = "zeros",
    center: bool = False,
    time_dilation: int = 1,
) -> InflatedConv3d:
    """A Conv3d whose k_t x k_h x k_w kernel repeats the 2D kernel over time, divided by k_t.

    ``center=True`` puts the 2D kernel on the central tap (``k_t // 2``) and zeros elsewhere
    instead. The bias is kept, groups and spatial stride/padding/dilation are copied.
    ``time_padding`` defaults to ``(time_kernel - 1) // 2``.
    """
    if not isinstance(conv2d, nn.Conv2d):
        raise InflationError(f"inflate_conv2d needs an nn.Conv2d, got {type(conv2d).__name__}")
    if time_kernel < 1 or time_stride < 1 or time_dilation < 1:
        raise InflationError(
            f"time kernel/stride/dilation must be >= 1, got {time_kernel}/{time_stride}/"
            f"{time_dilation}"
        )
    pt = (time_kernel - 1) // 2 if time_padding is None else int(time_padding)
    ph, pw = _conv2d_padding(conv2d)
    conv3d = InflatedConv3d(
        conv2d.in_channels,
        conv2d.out_channels,
        (time_kernel, *conv2d.kernel_size),
        stride=(time_stride, *conv2d.stride),
        padding=(pt, ph, pw),
        dilation=(time_dilation, *conv2d.dilation),
        groups=conv2d.groups,
        bias=conv2d.bias is not None,
        time_padding_mode=time_padding_mode,
        spatial_padding_mode=conv2d.padding_mode,
    ).to(device=conv2d.weight.device, dtype=conv2d.weight.dtype)
    with torch.no_grad():
        weight2d = conv2d.weight.detach()
        if center:
            conv3d.weight.zero_()
            conv3d.weight[:, :, time_kernel // 2] = weight2d
        else:
            conv3d.weight.copy_(weight2d.unsqueeze(2).expand_as(conv3d.weight) / time_kernel)
        if conv2d.bias is not None:
            conv3d.bias.copy_(conv2d.bias.detach())
    conv3d.weight.requires_grad_(conv2d.weight.requires_grad)
    conv3d.train(conv2d.training)
    return conv3d


def _copy_norm_state(source: nn.Module, target: nn.Module) -> None:
    target.load_state_dict(source.state_dict())
    for name, param in target.named_parameters():
        param.requires_grad_(getattr(source, name).requires_grad)
    target.train(source.training)


def inflate_batchnorm2d(bn2d: nn.BatchNorm2d) -> nn.BatchNorm3d:
    """A BatchNorm3d with the same eps, momentum, affine weights and running statistics."""
    bn3d = nn.BatchNorm3d(
        bn2d.num_features,
        eps=bn2d.eps,
        momentum=bn2d.momentum,
        affine=bn2d.affine,
        track_running_stats=bn2d.track_running_stats,
    )
    ref = bn2d.weight if bn2d.weight is not None else bn2d.running_mean
    if ref is not None:
        bn3d = bn3d.to(device=ref.device, dtype=ref.dtype)
    _copy_norm_state(bn2d, bn3d)
    return bn3d


def inflate_pool2d(
    pool2d: nn.MaxPool2d | nn.AvgPool2d,
    time_kernel: int = 1,
    *,
    time_stride: int | None = None,
    time_padding: int = 0,
) -> nn.MaxPool3d | nn.AvgPool3d:
    """MaxPool2d/AvgPool2d -> MaxPool3d/AvgPool3d (``time_stride`` defaults to the kernel).

    Spatial kernel, stride, padding and ``ceil_mode`` (and dilation for max, and
    ``count_include_pad``/``divisor_override`` for average) are copied.
    """
    ts = time_kernel if time_stride is None else time_stride
    kernel = (time_kernel, *_pair(pool2d.kernel_size))
    stride = (ts, *_pair(pool2d.stride if pool2d.stride is not None else pool2d.kernel_size))
    padding = (time_padding, *_pair(pool2d.padding))
    if isinstance(pool2d, nn.MaxPool2d):
        if pool2d.return_indices:
            raise InflationError("MaxPool2d(return_indices=True) cannot be inflated")
        return nn.MaxPool3d(
            kernel,
            stride=stride,
            padding=padding,
            dilation=(1, *_pair(pool2d.dilation)),
            ceil_mode=pool2d.ceil_mode,
        )
    if isinstance(pool2d, nn.AvgPool2d):
        return nn.AvgPool3d(
            kernel,
            stride=stride,
            padding=padding,
            ceil_mode=pool2d.ceil_mode,
            count_include_pad=pool2d.count_include_pad,
            divisor_override=pool2d.divisor_override,
        )
    raise InflationError(f"inflate_pool2d needs MaxPool2d/AvgPool2d, got {type(pool2d).__name__}")


def inflate_adaptive_pool2d(
    pool2d: nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d, time_output_size: int | None = 1
) -> nn.AdaptiveAvgPool3d | nn.AdaptiveMaxPool3d:
    """Adaptive 2D pool -> 3D, pooling time to ``time_output_size`` (None keeps time)."""
    size = _pair(pool2d.output_size)  # type: ignore[arg-type]
    output = (time_output_size, *size)
    if isinstance(pool2d, nn.AdaptiveAvgPool2d):
        return nn.AdaptiveAvgPool3d(output)
    if isinstance(pool2d, nn.AdaptiveMaxPool2d):
        if pool2d.return_indices:
            raise InflationError("AdaptiveMaxPool2d(return_indices=True) cannot be inflated")
        return nn.AdaptiveMaxPool3d(output)
    raise InflationError(f"not an adaptive 2D pool: {type(pool2d).__name__}")


# Layers that work unchanged on (N, C, T, H, W): elementwise ops, per-sample ops on dim 1,
# layers applied after global pooling.
_PASS_THROUGH: tuple[type[nn.Module], ...] = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Softmax,
    nn.LogSoftmax,
    nn.Dropout,
    nn.AlphaDropout,
    nn.Flatten,
    nn.Linear,
    nn.GroupNorm,
    nn.BatchNorm1d,  # in heads, after global pooling and flattening
)
# Pure containers whose own forward only chains children.
_CONTAINERS: tuple[type[nn.Module], ...] = (nn.Sequential, nn.ModuleList, nn.ModuleDict)

Converter = Callable[[nn.Module, str], nn.Module]


def inflate_model(
    model2d: nn.Module,
    *,
    time_kernels: Mapping[str, int | TemporalSpec] | None = None,
    conv_time_kernel: int | Literal["spatial"] = "spatial",
    time_padding_mode: TemporalPadding = "zeros",
    center: bool = False,
    global_pool_time: int | None = 1,
    converters: Mapping[type[nn.Module], Converter] | None = None,
) -> nn.Module:
    """A 3D twin of ``model2d``: a deep copy with every 2D layer replaced by its inflation.

    Args:
        model2d: the 2D network (left untouched).
        time_kernels: temporal kernel per layer, keyed by qualified module name
            (``"layer1.0.conv1"``) or a ``fnmatch`` pattern (``"features.*"``); values are a
            kernel size or a :class:`TemporalSpec`. The first matching key wins; a key
            that matches no inflatable layer is an error (catches typos).
        conv_time_kernel: temporal kernel of convolutions not in the table: ``"spatial"``
            (k x k -> k x k x k, as I3D) or a fixed size (1 = frame by frame). Pools not in
            the table do not pool over time.
        time_padding_mode: ``"zeros"`` or ``"replicate"`` (see the module docstring).
        center: centre initialisation instead of I3D's repeat-and-divide.
        global_pool_time: time output of adaptive pools (1: pool time away; None: keep).
        converters: extra ``{layer type: fn(layer, qualified_name) -> 3D layer}``.

    Containers (including custom blocks) are copied with their ``forward`` code, which
    must not assume 4D tensors (torchvision's ResNet, VGG, GoogLeNet forwards are fine).
    Unknown layers raise :class:`InflationError` naming the layer.
    """
    table = dict(time_kernels or {})
    extra = dict(converters or {})
    used: set[str] = set()

    def spec_for(name: str) -> TemporalSpec | None:
        for key, value in table.items():
            if key == name or fnmatch.fnmatchcase(name, key):
                used.add(key)
                return value if isinstance(value, TemporalSpec) else TemporalSpec(int(value))
        return None

    def convert(module: nn.Module, name: str) -> nn.Module | None:
        """The 3D replacement of a layer, or None if it is kept (pass-through/container)."""
        for layer_type, fn in extra.items():
            if isinstance(module, layer_type):
                spec_for(name)
                return fn(module, name)
        if isinstance(module, nn.Conv2d):
            spec = spec_for(name)
            if spec is None:
                kernel = (
                    module.kernel_size[0] if conv_time_kernel == "spatial" else conv_time_kernel
                )
                spec = TemporalSpec(int(kernel))
            return inflate_conv2d(
                module,
                spec.kernel,
                time_stride=spec.stride,
                time_padding=spec.padding,
                time_padding_mode=time_padding_mode,
                center=center,
            )
        if isinstance(module, nn.BatchNorm2d):
            return inflate_batchnorm2d(module)
        if isinstance(module, nn.InstanceNorm2d):
            norm = nn.InstanceNorm3d(
                module.num_features,
                eps=module.eps,
                momentum=module.momentum,
                affine=module.affine,
                track_running_stats=module.track_running_stats,
            )
            _copy_norm_state(module, norm)
            return norm
        if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            spec = spec_for(name) or TemporalSpec(1)
            return inflate_pool2d(
                module, spec.kernel, time_stride=spec.stride, time_padding=spec.padding or 0
            )
        if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return inflate_adaptive_pool2d(module, global_pool_time)
        if isinstance(module, nn.Dropout2d):
            return nn.Dropout3d(module.p, inplace=module.inplace)
        if isinstance(module, _PASS_THROUGH):
            return None
        own_params = [n for n, _ in module.named_parameters(recurse=False)]
        if own_params:
            raise InflationError(
                f"layer {name or '<root>'!r} ({type(module).__name__}) holds parameters "
                f"{own_params} directly and is not a known 2D layer; pass converters="
                f"{{{type(module).__name__}: fn}} to inflate it"
            )
        if isinstance(module, _CONTAINERS) or len(module._modules) > 0:
            return None
        raise InflationError(
            f"layer {name or '<root>'!r} ({type(module).__name__}) is not supported by "
            "inflate_model; supported: Conv2d, BatchNorm2d, InstanceNorm2d, Max/AvgPool2d, "
            "adaptive pools, Dropout2d and elementwise layers; pass converters={"
            f"{type(module).__name__}: fn}} to inflate it"
        )

    def walk(parent: nn.Module, prefix: str) -> None:
        for child_name, child in list(parent.named_children()):
            qualified = f"{prefix}.{child_name}" if prefix else child_name
            replacement = convert(child, qualified)
            if replacement is None:
                walk(child, qualified)
            else:
                setattr(parent, child_name, replacement)

    model3d = copy.deepcopy(model2d)
    root = convert(model3d, "")
    if root is not None:
        model3d = root
    else:
        walk(model3d, "")
    unused = [key for key in table if key not in used]
    if unused:
        raise InflationError(
            f"time_kernels entries {unused} match no inflatable layer of "
            f"{type(model2d).__name__}; names look like "
            f"{[n for n, m in model2d.named_modules() if isinstance(m, nn.Conv2d)][:4]}"
        )
    return model3d


# ------------------------------------------------------------------ ImageNet-inflated I3D

_GOOGLENET_UNITS = {
    "conv1": "Conv3d_1a_7x7",
    "conv2": "Conv3d_2b_1x1",
    "conv3": "Conv3d_2c_3x3",
}
_GOOGLENET_BLOCKS = {
    "inception3a": "Mixed_3b",
    "inception3b": "Mixed_3c",
    "inception4a": "Mixed_4b",
    "inception4b": "Mixed_4c",
    "inception4c": "Mixed_4d",
    "inception4d": "Mixed_4e",
    "inception4e": "Mixed_4f",
    "inception5a": "Mixed_5b",
    "inception5b": "Mixed_5c",
}
_GOOGLENET_BRANCHES = {
    "branch1": "b0",
    "branch2.0": "b1a",
    "branch2.1": "b1b",
    "branch3.0": "b2a",
    "branch3.1": "b2b",
    "branch4.1": "b3b",
}


def still_kernel(conv: nn.Conv3d) -> torch.Tensor:
    """The 2D kernel (out, in, H, W) that ``conv`` applies to a one-frame clip.

    A SAME-padded :class:`~hartutor.models.layers.SamePadConv3d` pads a single frame with
    ``(k - 1) // 2`` time steps before it: with zero padding only that time tap meets the frame;
    with replicate padding every tap meets a copy of it, so their sum acts. A plain
    ``nn.Conv3d`` (zero padding ``p``) meets it with tap ``p``.
    """
    kernel = conv.weight.detach()
    k = kernel.shape[2]
    if isinstance(conv, SamePadConv3d) and conv.temporal_padding == "replicate":
        return kernel.sum(2)
    tap = (k - 1) // 2 if isinstance(conv, SamePadConv3d) else int(conv.padding[0])
    if not 0 <= tap < k or (not isinstance(conv, SamePadConv3d) and conv.padding_mode != "zeros"):
        raise InflationError(
            f"cannot tell which time tap of {conv} meets a one-frame clip; "
            "use SamePadConv3d or a zero-padded Conv3d"
        )
    return kernel[:, :, tap]


def inflate_still_twin(model: nn.Module) -> nn.Module:
    """I3D's inflation for a 3D network trained as its own 2D twin, on still images.

    On a one-frame clip every 3D convolution of ``model`` is a 2D one (:func:`still_kernel`),
    so training a 3D network such as the tiny I3D on one-frame clips (an image source) trains
    a 2D network of the same layout, its twin; the other time taps are never used. The copy
    returned has each k-tap kernel replaced by that 2D kernel repeated k times and divided by
    k, Carreira & Zisserman's recipe: on a boring video (one frame repeated) each convolution
    computes what the twin computed on the frame (exactly with replicate time padding, away
    from the clip's ends with zero padding), and time filters start from there. BatchNorm,
    pools and the classifier are copied unchanged. ``model`` is left untouched.
    """
    inflated = copy.deepcopy(model)
    with torch.no_grad():
        for conv in inflated.modules():
            if isinstance(conv, nn.Conv3d) and conv.weight.shape[2] > 1:
                k = conv.weight.shape[2]
                flat = still_kernel(conv)
                conv.weight.copy_(flat.unsqueeze(2).expand_as(conv.weight) / k)
    return inflated


def _googlenet_unit_pairs() -> list[tuple[str, str]]:
    pairs = list(_GOOGLENET_UNITS.items())
    for block2d, block3d in _GOOGLENET_BLOCKS.items():
        for branch2d, branch3d in _GOOGLENET_BRANCHES.items():
            pairs.append((f"{block2d}.{branch2d}", f"{block3d}.{branch3d}"))
    return pairs


def i3d_from_googlenet(
    googlenet: nn.Module,
    *,
    num_classes: int | None = None,
    dropout: float = 0.5,
    temporal_padding: TemporalPadding = "zeros",
) -> InceptionI3d:
    """The paper's "ImageNet-inflated" I3D: torchvision's GoogLeNet weights, inflated.

    torchvision's ``googlenet`` is Inception-v1 with BatchNorm (eps 1e-3) and the "5x5"
    branch built from a 3x3 conv, like TF-slim's and therefore I3D's: every conv and BN
    has a counterpart (``conv1`` -> ``Conv3d_1a_7x7``, ``inception3a.branch2.1`` ->
    ``Mixed_3b.b1b``, ...). Each 2D kernel is repeated over the I3D kernel's time extent
    (7 for Conv3d_1a, 3 for the 3x3 convs, 1 for 1x1) and divided by it; BN affine weights
    and running statistics are copied (so BN scales are trainable in the result). ``fc``
    becomes the logits conv when ``num_classes`` is None or equals its outputs; otherwise
    the logits are freshly initialised. The auxiliary classifiers are dropped.

    Differences from the 2D network, which is why the boring-video fixed point is exact
    only under conditions (see tests/test_inflate.py):

    - Spatial padding: I3D uses TF SAME padding; torchvision pads ``conv1`` by 3 on each
      side and max-pools with ``ceil_mode=True`` and no padding. These agree when the
      input side is odd (conv1: SAME pads (3, 3)) and each 3x3/stride-2 max-pool gets an
      even side (SAME pads (0, 1), as ceil mode does): sides of the form 16k - 1 (111, 223).
      At 224 the conv1 grids differ by one pixel (SAME pads (2, 3)).
    - Temporal padding: with ``temporal_padding="zeros"`` (TF's, the default) frames near
      the clip's ends see zero frames; ``"replicate"`` makes a repeated frame give
      GoogLeNet's output exactly at every time step.
    - Head: GoogLeNet averages globally then applies dropout 0.2 and ``fc``; I3D averages
      2x7x7 windows, applies a 1x1x1 conv and averages logits over time. On a 7x7 map (or
      any map smaller than the window) and a boring video these are the same numbers.
    - BN momentum: 0.001 (TF's decay 0.999) instead of torchvision's 0.1.
    - Input: ``googlenet.transform_input=True`` (torchvision's pretrained weights) maps
      ImageNet-normalised input to (x - 0.5) / 0.5; the I3D takes that [-1, 1] scaling
      directly (its ``input_spec``: mean = std = 0.5).
    """
    state2d = googlenet.state_dict()
    if "fc.weight" not in state2d or "conv1.conv.weight" not in state2d:
        raise InflationError(
            f"{type(googlenet).__name__} is not torchvision's GoogLeNet (no conv1.conv / fc); "
            "build it with torchvision.models.googlenet()"
        )
    fc_classes = int(state2d["fc.weight"].shape[0])
    classes = fc_classes if num_classes is None else num_classes
    model = InceptionI3d(
        num_classes=classes,
        in_channels=int(state2d["conv1.conv.weight"].shape[1]),
        dropout=dropout,
        temporal_padding=temporal_padding,
        bn_scale_trainable=True,
    )
    state3d = model.state_dict()
    new_state: dict[str, torch.Tensor] = {}
    for name2d, name3d in _googlenet_unit_pairs():
        weight2d = state2d[f"{name2d}.conv.weight"]
        target = state3d[f"{name3d}.conv3d.weight"]
        time_kernel = target.shape[2]
        if tuple(target.shape[:2]) + tuple(target.shape[3:]) != tuple(weight2d.shape):
            raise InflationError(
                f"GoogLeNet {name2d}.conv.weight {tuple(weight2d.shape)} does not fit I3D "
                f"{name3d}.conv3d.weight {tuple(target.shape)}"
            )
        new_state[f"{name3d}.conv3d.weight"] = (
            weight2d.unsqueeze(2).repeat(1, 1, time_kernel, 1, 1) / time_kernel
        )
        for leaf in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            new_state[f"{name3d}.bn.{leaf}"] = state2d[f"{name2d}.bn.{leaf}"]
    if classes == fc_classes:
        new_state["logits.conv3d.weight"] = state2d["fc.weight"][:, :, None, None, None]
        new_state["logits.conv3d.bias"] = state2d["fc.bias"]
    missing, unexpected = model.load_state_dict(new_state, strict=False)
    expected_missing = (
        {"logits.conv3d.weight", "logits.conv3d.bias"} if classes != fc_classes else set()
    )
    if unexpected or set(missing) != expected_missing:
        raise InflationError(  # pragma: no cover - the tables above cover every tensor
            f"GoogLeNet -> I3D mapping incomplete: missing {missing}, unexpected {unexpected}"
        )
    return model.train(googlenet.training)
