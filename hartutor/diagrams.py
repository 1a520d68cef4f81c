"""Pictures of an architecture's idea, drawn from the modules themselves (not typed in).

- :func:`residual_block_figure`: one 3D ResNet basic block (Res3D, torchvision's ``r3d_18``)
  beside the plain two-convolution path of C3D: the same 3x3x3 convolutions, plus the
  shortcut that adds the block's input to its output.
- :func:`temporal_transition_figure`: T3D's Temporal Transition Layer as the frames each
  branch's kernel covers: parallel temporal depths, concatenated, then pooled.

Labels (kernel sizes, channels, strides, depths) are read from the module passed in, so the
picture is of the network that was built. Figures use matplotlib's object API, as
:mod:`hartutor.viz`.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["residual_block_figure", "temporal_transition_figure"]


def _conv_label(conv: nn.Module) -> str:
    if not isinstance(conv, nn.Conv3d):
        raise TypeError(f"expected an nn.Conv3d, got {type(conv).__name__}")
    kernel = "x".join(map(str, conv.kernel_size))
    text = f"{kernel} conv, {conv.in_channels}->{conv.out_channels}"
    if any(s != 1 for s in conv.stride):
        text += f", stride {'x'.join(map(str, conv.stride))}"
    return text


def _box(ax: Axes, x: float, y: float, text: str, color: str, width: float = 4.4) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - 0.3),
            width,
            0.6,
            boxstyle="round,pad=0.05",
            facecolor=color,
            edgecolor="0.3",
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=7.5)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], **kw: object) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "0.3", **kw})


def _first_conv(seq: nn.Module) -> nn.Conv3d:
    for module in seq.modules():
        if isinstance(module, nn.Conv3d):
            return module
    raise TypeError(f"no Conv3d in {type(seq).__name__}")


def residual_block_figure(block: nn.Module, *, title: str = "") -> Figure:
    """A 3D ResNet basic block (``conv1``, ``conv2``, optional ``downsample``; e.g.
    ``model.layer2[0]`` of :func:`hartutor.models.res3d.res3d`) beside C3D's plain path
    through the same two convolutions."""
    from matplotlib.figure import Figure

    if not all(hasattr(block, name) for name in ("conv1", "conv2", "downsample")):
        raise TypeError(
            f"expected a ResNet basic block (conv1, conv2, downsample), got {type(block).__name__}"
        )
    conv1, conv2 = _first_conv(block.conv1), _first_conv(block.conv2)
    fig = Figure(figsize=(8.0, 3.6), layout="constrained")
    plain, residual = fig.subplots(1, 2)
    for ax, name in ((plain, "plain stack (as C3D)"), (residual, "Res3D: residual block")):
        ax.set_xlim(-2.6, 2.6) if ax is plain else ax.set_xlim(-3.0, 4.2)
        ax.set_ylim(-0.6, 4.6)
        ax.axis("off")
        ax.set_title(name, fontsize=10)
    # Plain: conv-ReLU, conv-ReLU, nothing else.
    ys = [4.0, 2.8, 1.6, 0.2]
    _box(plain, 0, ys[0], "input x", "white")
    _box(plain, 0, ys[1], _conv_label(conv1) + ", ReLU", "#cfe2f3")
    _box(plain, 0, ys[2], _conv_label(conv2) + ", ReLU", "#cfe2f3")
    _box(plain, 0, ys[3], "output: F(x)", "white")
    for a, b in itertools.pairwise(ys):
        _arrow(plain, (0, a - 0.32), (0, b + 0.32))
    # Residual: the same convs (with BatchNorm), then + shortcut, then ReLU.
    x0 = -0.6
    _box(residual, x0, ys[0], "input x", "white")
    _box(residual, x0, ys[1], _conv_label(conv1) + ", BN, ReLU", "#cfe2f3")
    _box(residual, x0, ys[2], _conv_label(conv2) + ", BN", "#cfe2f3")
    _box(residual, x0, ys[3], "ReLU(F(x) + shortcut(x))", "#fce5cd")
    for a, b in itertools.pairwise(ys):
        _arrow(residual, (x0, a - 0.32), (x0, b + 0.32))
    if block.downsample is None:
        shortcut = "identity"
    else:
        shortcut = _conv_label(_first_conv(block.downsample)) + " + BN"
    edge = x0 + 2.3
    _arrow(residual, (edge, ys[0]), (edge, ys[3] + 0.05), connectionstyle="arc3,rad=-0.4")
    residual.text(
        3.25,
        2.2,
        "shortcut:\n" + shortcut.replace(", ", ",\n"),
        fontsize=7.5,
        ha="center",
        va="center",
        color="C1",
    )
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def temporal_transition_figure(ttl: nn.Module, *, num_frames: int = 8, title: str = "") -> Figure:
    """The frames each branch of a Temporal Transition Layer
    (:class:`hartutor.models.t3d.TemporalTransition`) sees for one output frame of a
    ``num_frames``-frame map, its output channels, and the pooling that follows."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    branches = getattr(ttl, "branches", None)
    depths = getattr(ttl, "temporal_depths", None)
    if branches is None or depths is None:
        raise TypeError(f"expected a TemporalTransition, got {type(ttl).__name__}")
    if num_frames < max(depths):
        raise ValueError(f"num_frames must be >= the deepest kernel ({max(depths)})")
    centre = num_frames // 2
    rows = len(branches)
    fig = Figure(figsize=(8.0, 1.2 + 0.7 * rows), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlim(-0.5, num_frames + 5.5)
    ax.set_ylim(-0.8, rows + 0.9)
    ax.axis("off")
    top = rows + 0.2
    for t in range(num_frames):
        ax.add_patch(Rectangle((t, top), 0.85, 0.5, facecolor="0.85", edgecolor="0.4"))
        ax.text(t + 0.42, top + 0.25, str(t), ha="center", va="center", fontsize=7)
    ax.text(-0.4, top + 0.25, "frames", ha="right", va="center", fontsize=8)
    total = 0
    for row, (conv, depth) in enumerate(zip(branches, depths, strict=True)):
        y = rows - 1 - row
        before = (depth - 1) // 2
        start = centre - before
        ax.add_patch(
            Rectangle(
                (start, y), depth - 0.15, 0.55, facecolor=f"C{row}", alpha=0.7, edgecolor="0.3"
            )
        )
        ax.add_patch(Rectangle((centre, y + 0.55), 0.85, 0.12, facecolor="k"))
        ax.text(-0.4, y + 0.27, f"depth {depth}", ha="right", va="center", fontsize=8)
        kernel = "x".join(map(str, conv.kernel_size))
        ax.text(
            num_frames + 0.3,
            y + 0.27,
            f"{kernel} conv -> {conv.out_channels} ch",
            va="center",
            fontsize=8,
        )
        total += conv.out_channels
    ax.text(
        num_frames + 3.0,
        -0.55,
        f"concatenate: {total} ch\nthen 2x2x2 average pool:\n"
        f"{num_frames} -> {num_frames // 2} frames",
        ha="center",
        va="center",
        fontsize=8,
    )
    ax.text(
        centre + 0.42,
        -0.55,
        f"the frames each branch mixes for output frame {centre} (black)",
        ha="center",
        va="center",
        fontsize=8,
    )
    if title:
        ax.set_title(title, fontsize=10)
    return fig
