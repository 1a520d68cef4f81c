"""Drop-in faster twins of hartutor's model layers, swapped in by :func:`hartutor.accel.optimize`.

Each class here subclasses one class of :mod:`hartutor.models` and overrides only how it
computes (its ``forward`` or one small method), never its parameters, buffers, submodules or
state-dict keys. It keeps its parent's name, so a model's ``repr`` and error messages do not
change. :func:`~hartutor.accel.optimize` swaps a module's class to its faster twin in place
(``module.__class__ = ...``), and :func:`~hartutor.accel.restore` swaps it back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hartutor.accel import ops
from hartutor.models import frame, i3d, layers

__all__ = [
    "LRCN",
    "Conv3d",
    "FrameClassifier",
    "InceptionModule",
    "SameMaxPool3d",
    "SamePadConv3d",
    "Unit3D",
]


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` computing channels-last on a CPU, its zero-padded, ungrouped
    convolutions through :func:`~hartutor.accel.ops.conv3d` (oneDNN for batch-1 CPU clips).
    Parameters and state-dict keys are ``nn.Conv3d``'s."""

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        input = ops.cpu_channels_last(input)
        if (
            self.padding_mode != "zeros"
            or isinstance(self.padding, str)
            or self.groups != 1
            or tuple(self.dilation) != (1, 1, 1)
        ):
            return super()._conv_forward(input, weight, bias)
        return ops.conv3d(input, weight, bias, self.stride, self.padding)  # type: ignore[arg-type]


class SamePadConv3d(layers.SamePadConv3d):
    """:class:`hartutor.models.layers.SamePadConv3d`, computing channels-last on a CPU.

    Symmetric SAME padding is left to the convolution itself (no padded copy: every 3x3x3
    stride-1 conv of I3D); asymmetric padding pads once, straight into channels-last
    (:func:`~hartutor.accel.ops.zero_pad`); the convolution runs through
    :func:`~hartutor.accel.ops.conv3d`.
    """

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
        pads = layers.tf_same_padding_3d(x.shape[-3:], self.kernel_size, self.stride)
        if self.temporal_padding == "replicate" and (pads[4] or pads[5]):
            x = F.pad(x, (0, 0, 0, 0, pads[4], pads[5]), mode="replicate")
            pads = (*pads[:4], 0, 0)
        symmetric = ops.symmetric_padding(pads)
        if symmetric is not None:
            return ops.conv3d(ops.cpu_channels_last(x), weight, bias, self.stride, symmetric)
        if ops.is_tracing():
            return ops.conv3d(F.pad(x, pads), weight, bias, self.stride)
        return ops.conv3d(ops.zero_pad(x, pads), weight, bias, self.stride)


class SameMaxPool3d(layers.SameMaxPool3d):
    """:class:`hartutor.models.layers.SameMaxPool3d` without a padded copy where PyTorch's own
    padding gives TF's windows (:func:`~hartutor.accel.ops.native_pool_padding`), in
    channels-last, and one axis at a time for stride-1 pools outside autograd
    (:func:`~hartutor.accel.ops.separable_max_pool3d`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel: tuple[int, int, int] = self.kernel_size  # type: ignore[assignment]
        stride: tuple[int, int, int] = self.stride  # type: ignore[assignment]
        pads = layers.tf_same_padding_3d(x.shape[-3:], kernel, stride)
        if ops.separable_pool_pays(x, stride):
            return ops.separable_max_pool3d(x, kernel, (pads[4], pads[2], pads[0]))
        native = ops.native_pool_padding(x.shape[-3:], kernel, stride, pads)
        if native is None:
            x = F.pad(x, pads, value=float("-inf"))
            padding, ceil_mode = (0, 0, 0), False
        else:
            padding, ceil_mode = native
        # PyTorch's max-pool kernel for channels-first 3D maps is scalar code; its channels-last
        # kernel is vectorised over channels. Max is exact, so the result (and the index each
        # gradient goes to) is the same in either layout.
        to_channels_last = x.ndim == 5 and x.shape[1] > 1 and ops.is_channels_first(x)
        if to_channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        out = F.max_pool3d(x, kernel, stride, padding, ceil_mode=ceil_mode)
        return out.contiguous() if to_channels_last else out


class Unit3D(layers.Unit3D):
    """:class:`hartutor.models.layers.Unit3D` whose eval-mode BatchNorm is folded into the
    conv's weights and bias whenever that costs less than a pass over the output."""

    def folding_pays(self, x: torch.Tensor, bn: nn.BatchNorm3d) -> bool:
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
        is folded into the conv (large maps; the same function up to float rounding), which
        saves a pass over every output. Gradients flow through the fold exactly."""
        bn = self.bn
        conv = self.conv3d
        if bn is not None and isinstance(conv, SamePadConv3d) and self.folding_pays(x, bn):
            weight, bias = ops.fold_batch_norm(conv.weight, conv.bias, bn)
            x = conv(x, weight, bias)
        else:
            x = conv(x)
            if bn is not None:
                x = bn(x)
        if self.activation:
            x = F.relu(x, inplace=True)
        return x


class InceptionModule(i3d.InceptionModule):
    """:class:`hartutor.models.i3d.InceptionModule` that keeps a channels-last map
    channels-last through the concatenation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))]
        if ops.is_channels_last_3d(x):
            # PyTorch's fallback conv (batch-1 1x1x1 convs with few channels, non-float32
            # input: see ops.conv3d) answers channels-first; one channels-first branch would
            # make the concatenation, and every layer after it, channels-first again.
            branches = [b.contiguous(memory_format=torch.channels_last_3d) for b in branches]
        return torch.cat(branches, dim=1)


class FrameClassifier(frame.FrameClassifier):
    """:class:`hartutor.models.frame.FrameClassifier` feeding its backbone channels-last
    frames on a CPU, with the backbone's weights in the same layout
    (:func:`~hartutor.accel.ops.backbone_frames`)."""

    def to_frames(self, x: torch.Tensor) -> torch.Tensor:
        return ops.backbone_frames(x, self.backbone)


class LRCN(frame.LRCN):
    """:class:`hartutor.models.frame.LRCN` feeding its backbone channels-last frames on a CPU
    (:func:`~hartutor.accel.ops.backbone_frames`)."""

    def to_frames(self, x: torch.Tensor) -> torch.Tensor:
        return ops.backbone_frames(x, self.backbone)
