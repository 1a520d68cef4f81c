"""Pictures of the two-stream chapter's later ideas: TSN's segments, convolutional fusion.

Drawn from the library's own numbers (the sampler's frame indices, a network's first-layer
weights, parameter counts of built models), so a picture cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch

from hartutor.models.tsn import cross_modality_weight, segment_starts

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["conv_fusion_figure", "tsn_figure"]


def _box(ax: Axes, x: float, y: float, text: str, *, color: str = "0.9", w: float = 0.16) -> None:
    ax.text(
        x,
        y,
        text,
        ha="center",
        va="center",
        fontsize=7.5,
        transform=ax.transAxes,
        bbox={"boxstyle": "round,pad=0.3", "facecolor": color, "edgecolor": "0.4"},
        wrap=True,
    )


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        xycoords="axes fraction",
        arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 1.0},
    )


def tsn_figure(
    *,
    num_frames: int = 16,
    num_segments: int = 3,
    rgb_weight: torch.Tensor | None = None,
    flow_channels: int = 10,
    seed: int = 0,
) -> Figure:
    """TSN in one picture: segments and snippets, the shared ConvNet and the consensus, and
    cross-modality initialisation of one first-layer filter.

    The snippets drawn are :func:`~hartutor.models.tsn.segment_starts`' own (two training steps
    drawn with ``seed``, then the test-time centres); ``rgb_weight`` is a first conv's weight
    ``(out, 3, k, k)`` (its filter 0 is shown; default: a random one).
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    if num_segments < 1 or num_frames < num_segments:
        raise ValueError(f"need 1 <= num_segments <= num_frames, got {num_segments}, {num_frames}")
    fig = Figure(figsize=(9.0, 5.4), layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[1.0, 1.15], width_ratios=[1.35, 1.0])
    # --- segments and snippets
    ax = fig.add_subplot(grid[0, :])
    generator = torch.Generator().manual_seed(seed)
    rows = [
        (
            f"training, step {i + 1}",
            segment_starts(num_frames, num_segments, training=True, generator=generator),
        )
        for i in range(2)
    ]
    rows.append(("testing", segment_starts(num_frames, num_segments)))
    bounds = np.linspace(0, num_frames, num_segments + 1)
    for k in range(num_segments):
        ax.axvspan(bounds[k], bounds[k + 1], color=f"C{k}", alpha=0.12, lw=0)
        ax.text(
            (bounds[k] + bounds[k + 1]) / 2,
            len(rows) + 0.05,
            f"segment {k + 1}",
            ha="center",
            fontsize=8,
        )
    for r, (label, starts) in enumerate(rows):
        y = len(rows) - 1 - r
        chosen = set(starts.tolist())
        for t in range(num_frames):
            k = min(int(t * num_segments / num_frames), num_segments - 1)
            filled = t in chosen
            ax.add_patch(
                Rectangle(
                    (t + 0.1, y + 0.15),
                    0.8,
                    0.6,
                    facecolor=f"C{k}" if filled else "white",
                    edgecolor="0.3",
                    lw=0.8,
                )
            )
        ax.text(-0.4, y + 0.45, label, ha="right", va="center", fontsize=8)
        ax.text(num_frames + 0.3, y + 0.45, f"frames {sorted(chosen)}", va="center", fontsize=8)
    ax.set_xlim(-5.5, num_frames + 6)
    ax.set_ylim(-0.1, len(rows) + 0.5)
    ax.axis("off")
    ax.set_title(
        f"Segment sampling: {num_segments} segments of a {num_frames}-frame clip, one snippet "
        "each (random in training, the centre in testing)",
        fontsize=9,
    )
    # --- shared ConvNet and consensus
    ax = fig.add_subplot(grid[1, 0])
    ax.axis("off")
    for k in range(num_segments):
        y = 0.85 - k * 0.7 / max(num_segments - 1, 1)
        _box(ax, 0.1, y, f"snippet {k + 1}", color=f"C{k}")
        _box(ax, 0.42, y, "ConvNet\n(shared weights)")
        _box(ax, 0.68, y, "class scores")
        _arrow(ax, (0.18, y), (0.32, y))
        _arrow(ax, (0.52, y), (0.6, y))
        _arrow(ax, (0.76, y), (0.84, 0.5))
    _box(ax, 0.9, 0.5, "consensus\n(average)\n-> softmax,\nloss", color="0.8")
    ax.set_title("Consensus before the loss: every snippet gets the video's gradient", fontsize=9)
    # --- cross-modality initialisation
    if rgb_weight is None:
        rgb_weight = torch.randn(1, 3, 5, 5, generator=torch.Generator().manual_seed(seed))
    rgb = rgb_weight[0].detach().float().cpu()
    flow = cross_modality_weight(rgb_weight[:1].detach().float().cpu(), flow_channels)[0]
    shown = min(flow_channels, 6)
    sub = grid[1, 1].subgridspec(2, shown)
    limit = float(rgb.abs().max())
    for c in range(3):
        a = fig.add_subplot(sub[0, c])
        a.imshow(rgb[c].numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        a.set_title("RGB"[c], fontsize=8)
        a.set_xticks([]), a.set_yticks([])
    title_ax = fig.add_subplot(sub[0, 3:]) if shown > 3 else None
    if title_ax is not None:
        title_ax.axis("off")
        title_ax.text(
            0.5,
            0.5,
            "an RGB filter of conv1\n-> mean over R, G, B\n-> copied to all 2L\nflow channels",
            ha="center",
            va="center",
            fontsize=8,
        )
    for c in range(shown):
        a = fig.add_subplot(sub[1, c])
        a.imshow(flow[c].numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        label = ("x", "y")[c % 2] + str(c // 2 + 1)
        a.set_title(
            label + (" ..." if c == shown - 1 and shown < flow_channels else ""), fontsize=8
        )
        a.set_xticks([]), a.set_yticks([])
    return fig


def conv_fusion_figure(params: Mapping[str, int] | None = None) -> Figure:
    """Late fusion against convolutional fusion at conv5, drawn as two pairs of towers.

    ``params``: parameter counts by method (``"late"``, ``"sum"``, ``"concat"``, ``"conv3d"``)
    to print under each drawing, e.g. from :func:`hartutor.params.count_parameters` on built
    models.
    """
    from matplotlib.figure import Figure

    params = dict(params or {})
    fig = Figure(figsize=(9.0, 4.6), layout="constrained")
    late_ax, conv_ax = fig.subplots(1, 2)
    convs = ["conv1", "conv2", "conv3", "conv4", "conv5"]
    fcs = ["pool5", "fc6", "fc7", "fc8"]
    step = 0.085

    def tower(ax: Axes, x: float, names: list[str], top: float, color: str) -> float:
        for i, name in enumerate(names):
            y = top - i * step
            _box(ax, x, y, name, color=color)
            if i:
                _arrow(ax, (x, y + step - 0.03), (x, y + 0.03))
        return top - (len(names) - 1) * step

    for ax in (late_ax, conv_ax):
        ax.axis("off")
        ax.text(0.25, 0.98, "spatial (RGB frame)", ha="center", fontsize=8, transform=ax.transAxes)
        ax.text(
            0.75, 0.98, "temporal (flow stack)", ha="center", fontsize=8, transform=ax.transAxes
        )
    # late: two whole towers, scores averaged
    for x, color in ((0.25, "#cfe3f5"), (0.75, "#f8dcc4")):
        bottom = tower(late_ax, x, convs + fcs, 0.92, color)
        _arrow(late_ax, (x, bottom - 0.03), (0.5, 0.08))
    _box(late_ax, 0.5, 0.05, "average the softmax scores", color="0.8", w=0.3)
    late_ax.set_title("Late fusion (two-stream, 2014): fused at the scores", fontsize=9)
    # conv: fused at conv5, one tower from there
    for x, color in ((0.25, "#cfe3f5"), (0.75, "#f8dcc4")):
        bottom = tower(conv_ax, x, convs, 0.92, color)
        _arrow(conv_ax, (x, bottom - 0.03), (0.5, bottom - step + 0.03))
    fused_y = 0.92 - 5 * step
    _box(
        conv_ax,
        0.5,
        fused_y,
        "fuse at conv5: sum | concat + 1x1 conv |\n3D conv + 3D pool over time",
        color="#d8ecd0",
    )
    tower(conv_ax, 0.5, fcs, fused_y - step, "#e8e8e8")
    conv_ax.set_title("Convolutional fusion (2016): fused where pixels still align", fontsize=9)
    if params:
        late = params.get("late")
        if late is not None:
            late_ax.text(
                0.5,
                -0.04,
                f"{late:,} parameters",
                ha="center",
                fontsize=8,
                transform=late_ax.transAxes,
            )
        text = ", ".join(f"{m} {n:,}" for m, n in params.items() if m != "late")
        if text:
            conv_ax.text(0.5, -0.04, text, ha="center", fontsize=8, transform=conv_ax.transAxes)
    return fig
