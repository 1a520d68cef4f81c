"""The tensor-level shortcuts behind :func:`hartutor.accel.optimize`.

Each function computes what a plain PyTorch call computes (same values, same gradients up to
float rounding), faster on a CPU. The modules of :mod:`hartutor.accel.modules` call them; the
model files of :mod:`hartutor.models` never do. Measured effects are in
``docs/benchmarks.md`` ("Where the CPU speed comes from").

- Layout: :func:`cpu_channels_last`, :func:`match_weight_layout`, :func:`backbone_frames`.
- Convolution: :func:`conv3d` keeps batch-1 CPU clips on oneDNN; :func:`zero_pad` pads once,
  into channels-last; :func:`symmetric_padding` lets the conv pad by itself.
- Max-pool: :func:`native_pool_padding` (no padded copy), :func:`separable_max_pool3d`.
- BatchNorm: :func:`fold_batch_norm` into the preceding conv.
- Shortcuts stand aside while a graph is traced (:func:`is_tracing`): ``torch.compile``,
  ``torch.export`` and TorchScript then see portable ``aten`` ops.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "backbone_frames",
    "computes_channels_last",
    "conv3d",
    "cpu_channels_last",
    "fold_batch_norm",
    "is_channels_first",
    "is_channels_last_3d",
    "is_tracing",
    "match_weight_layout",
    "native_pool_padding",
    "register_flop_formulas",
    "separable_max_pool3d",
    "separable_pool_pays",
    "symmetric_padding",
    "uses_onednn",
    "zero_pad",
]


def is_tracing() -> bool:
    """True while ``torch.compile``/``torch.export`` or TorchScript traces a graph, where the
    eager-only shortcuts stand aside."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


# --------------------------------------------------------------------------- memory layout


def computes_channels_last(x: torch.Tensor) -> bool:
    """Whether an optimised model computes on ``x`` channels-last: on a CPU."""
    return x.device.type == "cpu"


def cpu_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` (4D or 5D) in channels-last layout when it lives on a CPU; otherwise ``x`` itself.

    Values and shape are unchanged, only the strides: PyTorch's CPU convolutions (oneDNN),
    max-pool and BatchNorm kernels are vectorised over channels in that layout and skip
    per-layer layout conversions. The price: channels-last BatchNorm sums batch statistics
    in float32 (about 1e-5 relative error instead of 1e-7), so gradients whose terms nearly
    cancel lose digits; ``tests/test_accel.py`` bounds a training step's gradient error,
    which stays far below minibatch noise. GPUs keep PyTorch's default layout.
    """
    if x.ndim not in (4, 5) or not computes_channels_last(x):
        return x
    layout = torch.channels_last if x.ndim == 4 else torch.channels_last_3d
    return x.contiguous(memory_format=layout)


def is_channels_last_3d(x: torch.Tensor) -> bool:
    """True when the 5D ``x`` is stored channels-last (and not also channels-first)."""
    return (
        x.ndim == 5
        and x.is_contiguous(memory_format=torch.channels_last_3d)
        and not x.is_contiguous()
    )


def is_channels_first(x: torch.Tensor) -> bool:
    """True when ``x`` (N, C, T, H, W) is laid out channels-first, not channels-last-3d."""
    return x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last_3d)


def match_weight_layout(module: nn.Module, channels_last: bool) -> None:
    """Store ``module``'s 4D and 5D parameters channels-last (or back in PyTorch's default
    layout) when they are not already, to match the activations it is about to compute on.

    Weights in the default layout beside channels-last activations are reordered by oneDNN
    on every call, which slows networks of many small convolutions (Xception) markedly.
    Values are unchanged; the parameters stay the same objects (their ``.data`` is
    replaced), so optimisers, hooks and state dicts keep working. Callers ask for the
    default layout back whenever autograd may accumulate gradients into the weights
    (:func:`backbone_frames`).
    """
    if is_tracing():
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


def backbone_frames(x: torch.Tensor, backbone: nn.Module) -> torch.Tensor:
    """Clips ``(N, C, T, H, W)`` as the frames ``backbone`` computes on: channels-last on a
    CPU (:func:`cpu_channels_last`), with its weights stored in the same layout
    (:func:`match_weight_layout`) unless autograd may accumulate gradients into them (their
    gradients would come in the default layout)."""
    from hartutor.models.frame import clip_to_frames

    channels_last = computes_channels_last(x)
    may_accumulate = torch.is_grad_enabled() and any(p.requires_grad for p in backbone.parameters())
    match_weight_layout(backbone, channels_last and not may_accumulate)
    return clip_to_frames(x, channels_last=channels_last)


# --------------------------------------------------------------------------- convolution

_ONEDNN_BUILT = torch.backends.mkldnn.is_available()


def uses_onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :func:`conv3d` calls oneDNN itself for ``x`` and ``weight``."""
    if is_tracing():
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


def register_flop_formulas() -> None:
    """Let ``FlopCounterMode`` (:func:`hartutor.params.count_flops`) count :func:`conv3d`'s
    direct oneDNN calls, which it does not know, as the convolutions they are. Idempotent;
    run when :mod:`hartutor.accel` is imported."""
    from torch.utils.flop_counter import register_flop_formula

    # RuntimeError "duplicate registrations": PyTorch (or an earlier call) has one already.
    with contextlib.suppress(RuntimeError):
        register_flop_formula(torch.ops.aten.mkldnn_convolution)(_onednn_conv_flops)


def conv3d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Sequence[int] = (1, 1, 1),
    padding: Sequence[int] = (0, 0, 0),
) -> torch.Tensor:
    """``F.conv3d`` (no dilation, one group), on oneDNN for every fp32 CPU clip.

    For a batch of one clip whose ``C * T * H`` is at most 20480 (few channels, or a late
    8x7x7 map), PyTorch's CPU dispatch leaves oneDNN for its much slower reference
    convolution. The rule multiplies the first four sizes, all of a 2D image's but not of a
    clip's, whose fifth (width) it ignores. This calls oneDNN directly (autograd included;
    ``FlopCounterMode`` counts it). 1x1x1 kernels, other dtypes and devices, autocast,
    ``torch.backends.mkldnn`` disabled, and tracing for ``torch.compile``, ``torch.export``
    or TorchScript (whose graphs keep the portable ``aten.convolution``) keep PyTorch's own
    choice.
    """
    if uses_onednn(x, weight):
        return torch.ops.aten.mkldnn_convolution(
            x, weight, bias, list(padding), list(stride), [1, 1, 1], 1
        )
    return F.conv3d(x, weight, bias, tuple(stride), tuple(padding))


def symmetric_padding(pads: Sequence[int]) -> tuple[int, int, int] | None:
    """(T, H, W) padding when the ``F.pad``-ordered ``pads`` are equal on both sides."""
    w0, w1, h0, h1, t0, t1 = pads
    if w0 != w1 or h0 != h1 or t0 != t1:
        return None
    return (t0, h0, w0)


def zero_pad(x: torch.Tensor, pads: Sequence[int]) -> torch.Tensor:
    """``F.pad(x, pads)`` (zeros; ``pads`` non-negative, in ``F.pad`` order) of the 5D ``x``,
    built channels-last on a CPU (:func:`cpu_channels_last`).

    ``F.pad`` fills the whole output with zeros and then copies ``x`` over it; this zeroes
    only the border and copies ``x`` once, converting its layout in the same pass (it pays
    most before I3D's stem conv, on the whole clip). Autograd flows through the copy as
    through ``F.pad``.
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


# --------------------------------------------------------------------------- max-pool


def _pool_output_size(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool) -> int:
    """Output length of PyTorch's max-pool along one axis (``pooling_output_shape``)."""
    out = (size + 2 * pad - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def native_pool_padding(
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


def separable_pool_pays(x: torch.Tensor, stride: Sequence[int]) -> bool:
    """Whether an optimised SAME max-pool pools ``x`` one axis at a time
    (:func:`separable_max_pool3d`): stride-1 pools of channels-last CPU maps, outside
    autograd and tracing."""
    return (
        not is_tracing()
        and all(s == 1 for s in stride)
        and computes_channels_last(x)
        and is_channels_last_3d(x)
        and not (x.requires_grad and torch.is_grad_enabled())
    )


def separable_max_pool3d(
    x: torch.Tensor, kernel: Sequence[int], pad_before: Sequence[int]
) -> torch.Tensor:
    """Stride-1 SAME max-pool of the channels-last ``x`` as three 1D max passes (T, H, W).

    A max over a box is the max over its rows of the max along each row, so this equals
    ``F.max_pool3d`` value for value (NaN included); cells past an edge are skipped, as TF's
    padding never wins. Each pass is an elementwise ``torch.maximum`` of shifted slices,
    contiguous along channels: faster than PyTorch's kernel on I3D's Inception branch pools
    (3x3x3, 192-832 channels), which also writes an int64 index per output for a backward
    pass that inference never runs; so autograd keeps PyTorch's kernel.
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


# --------------------------------------------------------------------------- BatchNorm


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
