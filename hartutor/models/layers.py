"""Building blocks shared by hartutor's 3D CNNs, and the description of a model's input.

- :class:`InputSpec`: what a model expects (clip length, frame size, normalisation), so data
  pipelines and notebooks can prepare clips without reading the paper.
- TensorFlow "SAME" padding (:func:`tf_same_padding`, :class:`SamePadConv3d`,
  :class:`SameMaxPool3d`): DeepMind's I3D was trained in TensorFlow, whose SAME padding is
  computed from the input size at run time and is asymmetric (the extra pixel goes at the
  end). A fixed symmetric ``padding=`` in PyTorch shifts every feature map by half a pixel
  for even sizes and stride 2, so pretrained weights would give different outputs.
- :class:`Unit3D`: conv (no bias) + BatchNorm (eps 1e-3) + ReLU, the ``Unit3D`` module of
  ``deepmind/kinetics-i3d``.
- :func:`cpu_channels_last`: the memory layout hartutor's CNNs compute in on a CPU.
- :func:`conv3d`: ``F.conv3d`` that keeps batch-1 CPU clips on oneDNN (see there).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Conv3d",
    "InputSpec",
    "SameMaxPool3d",
    "SamePadConv3d",
    "TemporalPadding",
    "Unit3D",
    "computes_channels_last",
    "conv3d",
    "cpu_channels_last",
    "fold_batch_norm",
    "is_channels_last_3d",
    "match_weight_layout",
    "tf_same_padding",
    "tf_same_padding_3d",
]


@dataclass(frozen=True)
class InputSpec:
    """What a model expects as input: a clip of ``num_frames`` frames of ``size`` (H, W).

    ``mean``/``std`` are per channel. For RGB they apply to frames scaled to [0, 1]:
    ``x = (frames / 255 - mean) / std``; for optical flow (2 channels) they apply to the
    flow in pixels per frame. For example DeepMind's I3D wants RGB in [-1, 1] (mean 0.5,
    std 0.5) and flow clipped to +-20 px divided by 20 (mean 0, std 20); C3D wants
    mean-subtracted pixels on the 0..255 scale (std 1/255). ``fps`` is the frame rate the
    model was trained on, where the paper says so.
    """

    num_frames: int
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fps: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size must be (height, width) with positive entries, got {self.size}")
        if len(self.mean) != len(self.std):
            raise ValueError(
                f"mean {self.mean} and std {self.std} must have one entry per channel each"
            )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std entries must be positive, got {self.std}")

    @property
    def num_channels(self) -> int:
        """Number of input channels (3 for RGB, 2 for optical flow)."""
        return len(self.mean)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """Shape of one clip as the model wants it: (C, T, H, W)."""
        return (self.num_channels, self.num_frames, *self.size)


def tf_same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis: ``(pad_before, pad_after)``.

    ``pad_total = max((ceil(size / stride) - 1) * stride + effective_kernel - size, 0)``,
    ``pad_before = pad_total // 2``: when the total is odd the extra element goes at the end.
    """
    effective_kernel = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective_kernel - size, 0)
    return total // 2, total - total // 2


def tf_same_padding_3d(
    size: Sequence[int], kernel: Sequence[int], stride: Sequence[int]
) -> tuple[int, int, int, int, int, int]:
    """SAME padding for a (T, H, W) input in :func:`torch.nn.functional.pad` order.

    ``F.pad`` takes the last axis first: ``(w_before, w_after, h_before, h_after,
    t_before, t_after)``.
    """
    pads: list[int] = []
    for n, k, s in reversed(list(zip(size, kernel, stride, strict=True))):
        pads.extend(tf_same_padding(n, k, s))
    return tuple(pads)  # type: ignore[return-value]


def _triple(value: int | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(value, int):
        return (value, value, value)
    t = tuple(int(v) for v in value)
    if len(t) != 3:
        raise ValueError(f"expected an int or 3 ints (T, H, W), got {value!r}")
    return t  # type: ignore[return-value]


TemporalPadding = Literal["zeros", "replicate"]


def _symmetric_padding(pads: Sequence[int]) -> tuple[int, int, int] | None:
    """(T, H, W) padding when the ``F.pad``-ordered ``pads`` are equal on both sides."""
    w0, w1, h0, h1, t0, t1 = pads
    if w0 != w1 or h0 != h1 or t0 != t1:
        return None
    return (t0, h0, w0)


def _zero_pad(x: torch.Tensor, pads: Sequence[int]) -> torch.Tensor:
    """``F.pad(x, pads)`` (zeros; ``pads`` non-negative, in ``F.pad`` order) of the 5D ``x``,
    built channels-last on a CPU (:func:`cpu_channels_last`).

    ``F.pad`` fills the whole output with zeros and then copies ``x`` over it; this zeroes
    only the border and copies ``x`` once, converting its layout in the same pass. Before
    I3D's stem conv (a 3x64x224x224 clip) that saved about 20 of 30 ms here. Autograd
    flows through the copy as through ``F.pad``.
    """
    w0, w1, h0, h1, t0, t1 = pads
    n, c, t, h, w = x.shape
    layout = torch.channels_last_3d if computes_channels_last(x) else torch.contiguous_format
    shape = (n, c, t + t0 + t1, h + h0 + h1, w + w0 + w1)
    out = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=layout)
    for dim, before, after, size in ((2, t0, t1, t), (3, h0, h1, h), (4, w0, w1, w)):
        out.narrow(dim, 0, before).zero_()
        out.narrow(dim, before + size, after).zero_()
    out[:, :, t0 : t0 + t, h0 : h0 + h, w0 : w0 + w] = x
    return out


def _pool_output_size(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool) -> int:
    """Output length of PyTorch's max-pool along one axis (``pooling_output_shape``)."""
    out = (size + 2 * pad - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _native_pool_padding(
    size: Sequence[int], kernel: Sequence[int], stride: Sequence[int], pads: Sequence[int]
) -> tuple[tuple[int, int, int], bool] | None:
    """``(padding, ceil_mode)`` for which ``F.max_pool3d`` equals TF's SAME max-pool, or None.

    PyTorch's pool padding is implicit ``-inf`` (never wins) and windows with ``ceil_mode``
    may run past the end, where cells are ignored: with the TF ``pad_before`` as padding, the
    windows start where TF's do, so the two agree whenever the output lengths agree (and
    PyTorch accepts the padding: at most half the kernel). No padded copy is then made.
    """
    before = (pads[4], pads[2], pads[0])
    if any(2 * p > k for p, k in zip(before, kernel, strict=True)):
        return None
    wanted = [-(-n // s) for n, s in zip(size, stride, strict=True)]
    for ceil_mode in (False, True):
        got = [
            _pool_output_size(n, k, s, p, ceil_mode)
            for n, k, s, p in zip(size, kernel, stride, before, strict=True)
        ]
        if got == wanted:
            return (before[0], before[1], before[2]), ceil_mode
    return None


def computes_channels_last(x: torch.Tensor) -> bool:
    """Whether hartutor computes on ``x`` channels-last: on a CPU (:func:`cpu_channels_last`)."""
    return x.device.type == "cpu"


def cpu_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` (4D or 5D) in channels-last layout when it lives on a CPU; otherwise ``x`` itself.

    Values and shape are unchanged, only the strides: PyTorch's CPU convolutions (oneDNN),
    max-pool and BatchNorm kernels are vectorised over channels in that layout and skip
    per-layer layout conversions. In training this made the tiny Xception, single-frame and
    LRCN presets 1.4-1.9x faster (depthwise and 1x1 convolutions, max-pools). The price:
    channels-last BatchNorm sums batch statistics in float32 (about 1e-5 relative error
    instead of 1e-7), so gradients whose terms nearly cancel lose digits. In a training step
    of the tiny presets the worst parameter's gradient was up to 2e-2 off a float64 run and
    the whole gradient up to 7e-3 (at most 1e-3 in the default layout): far below minibatch
    noise (``tests/test_train.py`` bounds it). GPUs keep PyTorch's default layout.
    """
    if x.ndim not in (4, 5) or not computes_channels_last(x):
        return x
    layout = torch.channels_last if x.ndim == 4 else torch.channels_last_3d
    return x.contiguous(memory_format=layout)


def _is_tracing() -> bool:
    """True while ``torch.compile``/``torch.export`` or TorchScript traces a graph, where the
    eager-only shortcuts of this module stand aside."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def match_weight_layout(module: nn.Module, channels_last: bool) -> None:
    """Store ``module``'s 4D and 5D parameters channels-last (or back in PyTorch's default
    layout) when they are not already, to match the activations it is about to compute on.

    Weights in the default layout beside channels-last activations are reordered by oneDNN
    on every call: with Xception's many small convolutions that made its CPU inference
    1.4-1.8x slower in the runs here (full size and tiny). Values are unchanged;
    the parameters stay the same objects (their ``.data`` is replaced), so optimisers,
    hooks and state dicts keep working. Callers ask for the default layout back whenever
    autograd may accumulate gradients into the weights (``frame.backbone_frames``).
    """
    if _is_tracing():
        return  # a graph being traced keeps the parameters as they are
    for param in module.parameters():
        if param.ndim not in (4, 5):
            continue
        layout = torch.contiguous_format
        if channels_last:
            layout = torch.channels_last if param.ndim == 4 else torch.channels_last_3d
        if not param.is_contiguous(memory_format=layout):
            # Made outside inference mode: an inference tensor as a parameter's data would
            # refuse gradients in every later call (attributions) outside that mode.
            with torch.inference_mode(False):
                param.data = param.data.contiguous(memory_format=layout)


def is_channels_last_3d(x: torch.Tensor) -> bool:
    """True when the 5D ``x`` is stored channels-last (and not also channels-first)."""
    return (
        x.ndim == 5
        and x.is_contiguous(memory_format=torch.channels_last_3d)
        and not x.is_contiguous()
    )


def _is_channels_first(x: torch.Tensor) -> bool:
    """True when ``x`` (N, C, T, H, W) is laid out channels-first, not channels-last-3d."""
    return x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last_3d)


_ONEDNN_BUILT = torch.backends.mkldnn.is_available()


def _uses_onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :func:`conv3d` calls oneDNN itself for ``x`` and ``weight``."""
    if _is_tracing():
        return False  # checked first: torch.compile would break its graph on what follows
    return (
        x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and weight.shape[-3:] != (1, 1, 1)
        and _ONEDNN_BUILT
        and torch.backends.mkldnn.enabled
        and not torch.is_autocast_enabled("cpu")
    )


def _onednn_conv_flops(
    x_shape: Sequence[int], w_shape: Sequence[int], *_args: object, out_shape: Sequence[int]
) -> int:
    """FLOPs of ``aten.mkldnn_convolution`` as ``FlopCounterMode`` counts a convolution: two
    per multiply-add, ``w_shape[1:]`` of them for each output value."""
    return 2 * math.prod(out_shape) * math.prod(w_shape[1:])


def _register_onednn_conv_flops() -> None:
    """Let ``FlopCounterMode`` (:func:`hartutor.params.count_flops`) count :func:`conv3d`'s
    direct oneDNN calls, which it does not know, as the convolutions they are."""
    from torch.utils.flop_counter import register_flop_formula

    # RuntimeError "duplicate registrations": PyTorch (or a module reload) has one already.
    with contextlib.suppress(RuntimeError):
        register_flop_formula(torch.ops.aten.mkldnn_convolution)(_onednn_conv_flops)


_register_onednn_conv_flops()


def conv3d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Sequence[int] = (1, 1, 1),
    padding: Sequence[int] = (0, 0, 0),
) -> torch.Tensor:
    """``F.conv3d`` (no dilation, one group), on oneDNN for every fp32 CPU clip.

    For a batch of one clip whose ``C * T * H`` is at most 20480 (few channels, or a late
    8x7x7 map), PyTorch's CPU dispatch leaves oneDNN for its reference convolution: 2-9x
    slower on the five I3D layer shapes timed (the 16-channel 3x3x3 conv at 32x28x28: 21
    against 195 GFLOP/s). The rule multiplies the first four sizes, all of a 2D image's but
    not of a clip's, whose fifth (width) it ignores. This calls oneDNN directly
    (autograd included; ``FlopCounterMode`` counts it). 1x1x1 kernels, other dtypes and
    devices, autocast, ``torch.backends.mkldnn`` disabled, and tracing for ``torch.compile``,
    ``torch.export`` or TorchScript (whose graphs keep the portable ``aten.convolution``)
    keep PyTorch's own choice.
    """
    if _uses_onednn(x, weight):
        return torch.ops.aten.mkldnn_convolution(
            x, weight, bias, list(padding), list(stride), [1, 1, 1], 1
        )
    return F.conv3d(x, weight, bias, tuple(stride), tuple(padding))


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` whose zero-padded, ungrouped convolutions go through :func:`conv3d`
    (oneDNN for batch-1 CPU clips). Parameters and state-dict keys are ``nn.Conv3d``'s."""

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        if (
            self.padding_mode != "zeros"
            or isinstance(self.padding, str)
            or self.groups != 1
            or tuple(self.dilation) != (1, 1, 1)
        ):
            return super()._conv_forward(input, weight, bias)
        return conv3d(input, weight, bias, self.stride, self.padding)  # type: ignore[arg-type]


class SamePadConv3d(Conv3d):
    """``nn.Conv3d`` with TensorFlow SAME padding computed from each input's size; on a CPU
    it computes channels-last (:func:`cpu_channels_last`), whatever the input's layout.

    Spatial padding is zeros, as TensorFlow. ``temporal_padding="zeros"`` is TensorFlow's
    (and DeepMind's I3D's) behaviour; ``"replicate"`` repeats the first/last frame instead,
    which makes an ImageNet-inflated network give exactly the 2D network's output on a
    "boring" video (one frame repeated) at every time step, edges included. Parameters and
    state-dict keys are those of ``nn.Conv3d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        *,
        bias: bool = False,
        temporal_padding: TemporalPadding = "zeros",
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            _triple(kernel_size),
            stride=_triple(stride),
            padding=0,
            bias=bias,
        )
        if temporal_padding not in ("zeros", "replicate"):
            raise ValueError(
                f"temporal_padding must be 'zeros' or 'replicate', got {temporal_padding!r}"
            )
        self.temporal_padding = temporal_padding

    def forward(
        self,
        x: torch.Tensor,
        weight: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Convolve ``x``; ``weight`` and ``bias`` replace the module's own when given (a
        :class:`Unit3D` passes its BatchNorm folded in)."""
        if weight is None:
            weight, bias = self.weight, self.bias
        pads = tf_same_padding_3d(x.shape[-3:], self.kernel_size, self.stride)
        if self.temporal_padding == "replicate" and (pads[4] or pads[5]):
            x = F.pad(x, (0, 0, 0, 0, pads[4], pads[5]), mode="replicate")
            pads = (*pads[:4], 0, 0)
        symmetric = _symmetric_padding(pads)
        if symmetric is not None:
            # Zeros on both sides: the conv's own padding gives the same sums without
            # materialising a padded copy of the input (every 3x3x3 stride-1 conv of I3D).
            return conv3d(cpu_channels_last(x), weight, bias, self.stride, symmetric)
        if _is_tracing():
            return conv3d(F.pad(x, pads), weight, bias, self.stride)
        return conv3d(_zero_pad(x, pads), weight, bias, self.stride)

    def extra_repr(self) -> str:
        extra = ", temporal_padding='replicate'" if self.temporal_padding == "replicate" else ""
        return super().extra_repr() + ", padding=SAME" + extra


class SameMaxPool3d(nn.MaxPool3d):
    """``nn.MaxPool3d`` with TensorFlow SAME padding; padded cells never win (``-inf``).

    TensorFlow ignores padded positions in max-pooling. Padding with zeros would be wrong
    wherever all real inputs are negative (e.g. a pool that is not preceded by a ReLU);
    padding with ``-inf`` reproduces TensorFlow exactly.
    """

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int]) -> None:
        super().__init__(_triple(kernel_size), stride=_triple(stride), padding=0)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding=SAME"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel: tuple[int, int, int] = self.kernel_size  # type: ignore[assignment]
        stride: tuple[int, int, int] = self.stride  # type: ignore[assignment]
        pads = tf_same_padding_3d(x.shape[-3:], kernel, stride)
        if _separable_pool_pays(x, stride):
            return _separable_max_pool3d(x, kernel, (pads[4], pads[2], pads[0]))
        native = _native_pool_padding(x.shape[-3:], kernel, stride, pads)
        if native is None:
            x = F.pad(x, pads, value=float("-inf"))
            padding, ceil_mode = (0, 0, 0), False
        else:
            padding, ceil_mode = native
        # PyTorch's max-pool kernel for channels-first 3D maps is scalar code; its channels-last
        # kernel is vectorised over channels and several times faster. Max is exact, so the
        # result (and the index each gradient goes to) is the same in either layout.
        to_channels_last = x.ndim == 5 and x.shape[1] > 1 and _is_channels_first(x)
        if to_channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        out = F.max_pool3d(x, kernel, stride, padding, ceil_mode=ceil_mode)
        return out.contiguous() if to_channels_last else out


def _separable_pool_pays(x: torch.Tensor, stride: Sequence[int]) -> bool:
    """Whether :class:`SameMaxPool3d` pools ``x`` one axis at a time
    (:func:`_separable_max_pool3d`): stride-1 pools of channels-last CPU maps, outside
    autograd and tracing."""
    return (
        not _is_tracing()
        and all(s == 1 for s in stride)
        and computes_channels_last(x)
        and is_channels_last_3d(x)
        and not (x.requires_grad and torch.is_grad_enabled())
    )


def _separable_max_pool3d(
    x: torch.Tensor, kernel: Sequence[int], pad_before: Sequence[int]
) -> torch.Tensor:
    """Stride-1 SAME max-pool of the channels-last ``x`` as three 1D max passes (T, H, W).

    A max over a box is the max over its rows of the max along each row, so this equals
    ``F.max_pool3d`` value for value (NaN included); cells past an edge are skipped, as TF's
    padding never wins. Each pass is an elementwise ``torch.maximum`` of shifted slices,
    contiguous along channels. On I3D's Inception branch pools (3x3x3, 192-832 channels) it
    ran 2-4x faster than PyTorch's kernel, which also writes an int64 index per output for
    a backward pass that inference never runs; so autograd keeps PyTorch's kernel.
    """
    source = x
    for dim, (size, before) in enumerate(zip(kernel, pad_before, strict=True), start=2):
        if size == 1:
            continue
        pooled = source.clone()
        length = source.shape[dim]
        for offset in range(-before, size - before):
            overlap = length - abs(offset)
            if offset == 0 or overlap <= 0:
                continue
            # pooled[i] = max(pooled[i], source[i + offset]) wherever i + offset is in the map
            target = pooled.narrow(dim, max(0, -offset), overlap)
            torch.maximum(target, source.narrow(dim, max(0, offset), overlap), out=target)
        source = pooled
    return x.clone() if source is x else source  # always a new tensor, as F.max_pool3d


def fold_batch_norm(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.modules.batchnorm._BatchNorm
) -> tuple[torch.Tensor, torch.Tensor]:
    """A conv's ``(weight, bias)`` with the eval-mode BatchNorm ``bn`` that follows it folded
    in: ``w * g / sqrt(var + eps)`` and ``beta + (b - mean) * g / sqrt(var + eps)``."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("only a BatchNorm with running statistics folds into a conv")
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean if bias is None else bias - bn.running_mean
    shift = shift * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return weight * scale.view(-1, *[1] * (weight.ndim - 1)), shift


class Unit3D(nn.Module):
    """Conv3d (SAME padding) + optional BatchNorm3d + optional ReLU: I3D's ``Unit3D``.

    Submodules are named ``conv3d`` and ``bn`` as in piergiaj/pytorch-i3d, so that its
    state-dict keys (``Conv3d_1a_7x7.conv3d.weight``, ``...bn.running_mean``) and DeepMind's
    TF names (``conv_3d/w``, ``batch_norm/moving_mean``) map onto ours by renaming alone.
    BatchNorm follows TF's I3D: eps 1e-3, TF decay 0.999 = torch momentum 0.001.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 1,
        stride: int | Sequence[int] = 1,
        *,
        use_batch_norm: bool = True,
        use_bias: bool = False,
        activation: bool = True,
        bn_eps: float = 1e-3,
        bn_momentum: float = 1e-3,
        temporal_padding: TemporalPadding = "zeros",
    ) -> None:
        super().__init__()
        self.conv3d = SamePadConv3d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            bias=use_bias,
            temporal_padding=temporal_padding,
        )
        self.bn = (
            nn.BatchNorm3d(out_channels, eps=bn_eps, momentum=bn_momentum)
            if use_batch_norm
            else None
        )
        self.activation = activation

    def _folding_pays(self, x: torch.Tensor, bn: nn.BatchNorm3d) -> bool:
        """Whether this call folds ``bn`` into the conv (see :meth:`forward`)."""
        if bn.training or bn.running_mean is None or bn.running_var is None:
            return False
        stride: tuple[int, int, int] = self.conv3d.stride  # type: ignore[assignment]
        # Per clip, not per batch: the choice must not depend on the batch size, which
        # torch.export may leave symbolic.
        outputs_per_clip = self.conv3d.out_channels
        for size, step in zip(x.shape[-3:], stride, strict=True):
            outputs_per_clip *= -(-size // step)  # SAME padding: ceil(size / stride)
        return self.conv3d.weight.numel() < outputs_per_clip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Conv, BatchNorm, ReLU. An eval-mode BatchNorm is an affine map per channel, so it
        is folded into the conv's weights and bias whenever that costs less than a pass
        over the output (large maps; the same function up to float rounding): 7 % of the
        full-size I3D's CPU time was BatchNorm. Gradients flow through the fold exactly."""
        bn = self.bn
        if bn is not None and self._folding_pays(x, bn):
            weight, bias = fold_batch_norm(self.conv3d.weight, self.conv3d.bias, bn)
            x = self.conv3d(x, weight, bias)
        else:
            x = self.conv3d(x)
            if bn is not None:
                x = bn(x)
        if self.activation:
            x = F.relu(x, inplace=True)
        return x
