"""Pictures of videos and optical flow: the flow colour code, contact sheets, saving figures.

Figures are built with matplotlib's object API (:class:`matplotlib.figure.Figure`), never the
pyplot state machine, so they work headless (CI, ``hartutor show``). In an IPython kernel they
display as PNG pictures with any backend: ``import hartutor`` registers the display formatter
(:mod:`hartutor._display`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hartutor._fileio import atomic_path

if TYPE_CHECKING:
    from matplotlib.animation import FuncAnimation
    from matplotlib.figure import Figure


def _make_colorwheel() -> np.ndarray:
    """The Middlebury flow colour wheel: 55 hues, uint8 ``(55, 3)``.

    From Baker et al., "A Database and Evaluation Methodology for Optical Flow" (IJCV 2011) and
    their ``colorcode.cpp``: the hue circle is split into red-yellow (15 steps), yellow-green (6),
    green-cyan (4), cyan-blue (11), blue-magenta (13) and magenta-red (6), spacing perceptually
    similar colours evenly.
    """
    segments = ((15, (255, None, 0)), (6, (None, 255, 0)), (4, (0, 255, None)))
    segments += ((11, (0, None, 255)), (13, (None, 0, 255)), (6, (255, 0, None)))
    wheel = []
    rising = True
    for steps, pattern in segments:
        ramp = np.floor(255 * np.arange(steps) / steps)
        ramp = ramp if rising else 255 - ramp
        block = np.empty((steps, 3))
        for channel, value in enumerate(pattern):
            block[:, channel] = ramp if value is None else value
        wheel.append(block)
        rising = not rising
    return np.concatenate(wheel).astype(np.uint8)


#: The 55-colour Middlebury wheel used by :func:`flow_to_color`.
COLORWHEEL = _make_colorwheel()


def flow_to_color(flow: np.ndarray, *, max_flow: float | None = None) -> np.ndarray:
    """Colour-code optical flow with the standard Middlebury wheel: ``(2, [T,] H, W)`` ->
    uint8 ``([T,] H, W, 3)``.

    Hue is the direction of motion (right = red, down = yellow-green... as in the Middlebury
    benchmark's pictures, y pointing down) and saturation the speed: white is still, full
    colour is ``max_flow`` pixels per frame (default: the largest speed in ``flow``, as in the
    reference code), faster than that is shown full colour and darkened by 25%. Non-finite
    vectors are shown black.

    Why not ``torchvision.utils.flow_to_image``: it draws the same Middlebury wheel (on test
    flows the two agree pixel for pixel, up to one level of float32 rounding; see
    ``tests/test_viz.py``), but it always scales by the largest speed of its input, so it
    cannot put several frames or flow methods on one speed scale (``max_flow``, as notebooks
    00 and 03 and :func:`contact_sheet` do), does not mark speeds beyond that scale, takes
    only float32 ``(2, H, W)``/``(N, 2, H, W)`` tensors and has no answer for NaN vectors.
    """
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim not in (3, 4) or flow.shape[0] != 2:
        raise ValueError(f"flow must be shaped (2, H, W) or (2, T, H, W), got {flow.shape}")
    u, v = flow[0], flow[1]
    finite = np.isfinite(u) & np.isfinite(v)
    u = np.where(finite, u, 0.0)
    v = np.where(finite, v, 0.0)
    radius = np.hypot(u, v)
    if max_flow is None:
        max_flow = float(radius.max()) if radius.size else 0.0
    elif not max_flow > 0:
        raise ValueError(f"max_flow must be positive, got {max_flow}")
    scale = 1.0 / (max_flow + 1e-5)
    u, v, radius = u * scale, v * scale, radius * scale
    num_colors = len(COLORWHEEL)
    angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]
    position = (angle + 1) / 2 * (num_colors - 1)
    k0 = np.floor(position).astype(np.int64)
    k1 = (k0 + 1) % num_colors
    frac = (position - k0)[..., None]
    wheel = COLORWHEEL.astype(np.float64) / 255.0
    color = (1 - frac) * wheel[k0] + frac * wheel[k1]
    inside = (radius <= 1)[..., None]
    color = np.where(inside, 1 - radius[..., None] * (1 - color), color * 0.75)
    color = np.where(finite[..., None], color, 0.0)
    return np.floor(255 * color).astype(np.uint8)


def _as_frames(frames: object) -> np.ndarray:
    """uint8 ``(T, H, W, 3)`` numpy frames from an array or tensor (grey becomes RGB)."""
    if hasattr(frames, "detach"):
        frames = frames.detach().cpu().numpy()  # type: ignore[union-attr]
    array = np.asarray(frames)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise ValueError(f"frames must be shaped (T, H, W, 3) or (T, H, W), got {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(
            f"frames must be uint8 (decoded video), got {array.dtype}; for float frames in "
            "[0, 1] pass (frames * 255).round().astype('uint8')"
        )
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if len(array) == 0:
        raise ValueError("no frames to show")
    return array


def contact_sheet(
    frames: object,
    *,
    flow: np.ndarray | None = None,
    num_columns: int = 8,
    titles: Sequence[str] | None = None,
    title: str | None = None,
    max_frames: int = 32,
    cell_inches: float = 1.4,
) -> Figure:
    """A grid of frames, each row followed by the colour-coded flow of those frames.

    ``frames``: uint8 ``(T, H, W, 3)`` (array or tensor). Up to ``max_frames`` frames are shown,
    sampled uniformly in time when there are more; ``titles`` (one per input frame, default
    ``t=<index>``) label them. ``flow``: ``(2, T-1, H, W)`` forward flow; the cell under frame
    ``t`` shows the flow from ``t`` to ``t+1`` (the last frame has none), every cell on one
    scale, with a colour-wheel key. Returns a :class:`matplotlib.figure.Figure`.
    """
    from matplotlib.figure import Figure

    array = _as_frames(frames)
    total = len(array)
    if num_columns < 1 or max_frames < 1:
        raise ValueError("num_columns and max_frames must be at least 1")
    if titles is not None and len(titles) != total:
        raise ValueError(f"titles has {len(titles)} entries for {total} frames")
    if flow is not None:
        flow = np.asarray(flow, dtype=np.float32)
        if flow.ndim != 4 or flow.shape[0] != 2 or flow.shape[1] != total - 1:
            raise ValueError(
                f"flow must be shaped (2, T-1, H, W) = (2, {total - 1}, H, W) for {total} "
                f"frames, got {flow.shape}"
            )
    count = min(total, max_frames)
    indices = np.unique(np.round(np.linspace(0, total - 1, count)).astype(int))
    columns = min(num_columns, len(indices))
    frame_rows = math.ceil(len(indices) / columns)
    rows_per_block = 2 if flow is not None else 1
    height, width = array.shape[1:3]
    aspect = height / width
    extra = 1 if flow is not None else 0  # a column for the colour-wheel key
    fig = Figure(
        figsize=(
            cell_inches * (columns + extra),
            cell_inches * aspect * frame_rows * rows_per_block + (0.5 if title else 0.1),
        ),
        layout="constrained",
    )
    grid = fig.add_gridspec(frame_rows * rows_per_block, columns + extra)
    max_speed = 0.0
    colors = None
    if flow is not None:
        speed = np.hypot(flow[0], flow[1])
        max_speed = float(speed.max()) if speed.size else 0.0
        colors = flow_to_color(flow, max_flow=max_speed if max_speed > 0 else 1.0)
    for k, index in enumerate(indices):
        row, col = divmod(k, columns)
        ax = fig.add_subplot(grid[row * rows_per_block, col])
        ax.imshow(array[index], interpolation="nearest")
        ax.set_title(titles[index] if titles is not None else f"t={index}", fontsize=8)
        ax.set_axis_off()
        if colors is not None:
            ax = fig.add_subplot(grid[row * rows_per_block + 1, col])
            ax.set_axis_off()
            if index < total - 1:
                ax.imshow(colors[index], interpolation="nearest")
                ax.set_title(f"flow {index}→{index + 1}", fontsize=7)
    if colors is not None:
        ax = fig.add_subplot(grid[1, columns])
        ax.imshow(_wheel_key(64), interpolation="bilinear")
        ax.set_title(f"key: {max_speed:.2g} px/frame", fontsize=7)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _wheel_key(size: int) -> np.ndarray:
    """A disc showing the colour of every flow vector up to the key's rim (white outside)."""
    coords = np.linspace(-1.0, 1.0, size)
    u, v = np.meshgrid(coords, coords)
    key = flow_to_color(np.stack([u, v]), max_flow=1.0)
    key[np.hypot(u, v) > 1.0] = 255
    return key


def save_figure(
    fig: Figure, path: str | os.PathLike[str], *, dpi: int = 120, **savefig_kwargs: object
) -> Path:
    """Save ``fig`` to ``path`` atomically (format from the suffix: .png, .pdf, .svg, ...)."""
    from hartutor.validation import FIGURE_PATH

    path = Path(path)
    if not path.suffix:
        raise ValueError(f"cannot tell the image format of {path}: add a suffix such as .png")
    FIGURE_PATH(path, "figure file")  # the rule of the CLI's --out, before any drawing is lost
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".").lower(), **savefig_kwargs)
    return path


def show(
    target: str,
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    num_frames: int = 16,
    size: int = 64,
) -> Path:
    """Save a contact sheet of ``target`` to ``out`` and return its path.

    ``target`` is a synthetic class name (``sit_down`` or ``SitDown``): a clip of it is rendered
    with ``seed`` at ``size`` pixels and shown with its exact flow. Otherwise it is a video file,
    read with :func:`hartutor.video.read_video` (``num_frames`` frames spread over the video).
    """
    from hartutor.errors import VideoDecodeError
    from hartutor.synth import CLASS_NAMES, get_action, render_clip

    try:
        action = get_action(target)
    except ValueError:
        action = None
    if action is not None and not Path(target).is_file():
        clip = render_clip(action.name, seed, num_frames=num_frames, size=size, with_flow=True)
        fig = contact_sheet(
            clip.frames,
            flow=clip.flow,
            title=f"{action.name} (label {clip.label}, seed {seed}): frames and true flow",
        )
        return save_figure(fig, out)
    path = Path(target)
    if not path.exists():
        raise VideoDecodeError(
            path,
            "no such file, and not a synthetic class name either "
            f"(classes: {', '.join(CLASS_NAMES)})",
        )
    from hartutor.video import probe_video, read_video

    # Decode at the size drawn (a cell is ~170 px), not the file's: a 1080p clip would take
    # hundreds of MB at full size; libswscale scales while converting each frame.
    probed = probe_video(path)
    short_side = min(probed.height, probed.width, SHEET_FRAME_PIXELS)
    video = read_video(path, num_frames=num_frames, on_short="pad", size=short_side)
    info = video.info
    frames = video.frames.numpy()
    titles = None
    # VideoInfo names the returned frames' indices ``indices`` (``frame_indices`` in drafts).
    indices = getattr(info, "indices", None) or getattr(info, "frame_indices", ())
    if indices:  # a short video was padded by repeating its last frame: show it once
        keep = np.unique(np.asarray(indices), return_index=True)[1]
        frames = frames[np.sort(keep)]
        if info.timestamps:
            titles = [f"{info.timestamps[k]:.2f}s" for k in np.sort(keep)]
    fig = contact_sheet(
        frames,
        titles=titles,
        title=f"{path.name}: {info.num_frames} frames, {info.fps:.3g} fps, "
        f"{probed.width}x{probed.height}",
    )
    return save_figure(fig, out)


#: Short side, in pixels, at which :func:`show` decodes a video's frames (never upscaled).
SHEET_FRAME_PIXELS = 256


#: One row of :func:`prediction_figure`: (clip name, frames uint8 (T,H,W,3), true label or
#: None, [(scorer, top labels, their probabilities), ...]).
PredictionRow = tuple[
    str, np.ndarray, "str | None", Sequence[tuple[str, Sequence[str], Sequence[float]]]
]


def prediction_figure(
    rows: Sequence[PredictionRow],
    *,
    num_frames: int = 4,
    title: str | None = None,
    notes: Sequence[Sequence[str]] | None = None,
) -> Figure:
    """Frames of each clip beside horizontal bars of every scorer's top classes.

    One row per clip: ``num_frames`` thumbnails, then one bar panel per scorer (each stream and
    the fused score). A bar naming the true class is green, others grey; where the true class
    is known, each panel says whether its top-1 is right (green) or wrong (red). ``title``
    (for example how the clips were chosen) goes above the panels; ``notes[row][scorer]``, a
    line above that panel (for example the scorer's accuracy on more clips than the one shown).
    """
    from matplotlib.figure import Figure

    if not rows:
        raise ValueError("prediction_figure needs at least one clip")
    if notes is not None and len(notes) != len(rows):
        raise ValueError(f"{len(notes)} rows of notes for {len(rows)} clips")
    num_scorers = max(len(r[3]) for r in rows)
    title_lines = title.count("\n") + 1 if title else 0
    header = 0.45 + 0.25 * title_lines  # inches above the panels: titles, legend line
    row_height = 1.5 + (0.2 if notes else 0.0)  # a note line above each panel
    height = row_height * len(rows) + header
    fig = Figure(figsize=(1.1 * num_frames + 3.2 * num_scorers, height), dpi=100)
    # frames close together on the left; bar charts spaced for their class-name tick labels
    outer = fig.add_gridspec(
        1,
        2,
        width_ratios=[1.1 * num_frames, 3.2 * num_scorers],
        wspace=0.22,
        top=1 - header / height,
        left=0.08,
        right=0.98,
    )
    frame_grid = outer[0].subgridspec(len(rows), num_frames, wspace=0.05)
    score_grid = outer[1].subgridspec(
        len(rows), num_scorers, wspace=1.1, hspace=0.5 if notes else None
    )
    for r, (name, frames, truth, scorers) in enumerate(rows):
        frames = _as_frames(frames)
        picks = np.linspace(0, len(frames) - 1, num_frames).round().astype(int)
        for c, t in enumerate(picks):
            ax = fig.add_subplot(frame_grid[r, c])
            ax.imshow(frames[t])
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
        for s, (scorer, labels, probs) in enumerate(scorers):
            ax = fig.add_subplot(score_grid[r, s])
            colours = ["tab:green" if label == truth else "0.6" for label in labels]
            y = np.arange(len(labels))[::-1]
            ax.barh(y, probs, color=colours)
            ax.set_yticks(y, [str(label) for label in labels], fontsize=7)
            ax.set_xlim(0, 1)
            ax.tick_params(axis="x", labelsize=6)
            note = notes[r][s] if notes is not None and s < len(notes[r]) else ""
            if r == 0:
                ax.set_title(scorer, fontsize=9, pad=14 if note else None)
            if note:
                ax.text(0.5, 1.03, note, transform=ax.transAxes, ha="center", fontsize=7.5)
            if truth is not None and len(labels):
                right = labels[0] == truth
                ax.text(
                    0.98,
                    0.04,
                    "top-1 right" if right else "top-1 wrong",
                    transform=ax.transAxes,
                    ha="right",
                    va="bottom",
                    fontsize=8,
                    fontweight="bold",
                    color="tab:green" if right else "tab:red",
                )
    lines = [title] if title else []
    if any(r[2] is not None for r in rows):
        lines.append("green bar: the true class; each panel: is its top-1 the true class")
    if lines:
        fig.suptitle("\n".join(lines), fontsize=9, y=1 - 0.08 / height, va="top")
    return fig


# --------------------------------------------------------------------------- attributions


def _as_heat(heat: object, frames: np.ndarray) -> np.ndarray:
    """``(T, H, W)`` float heat in [0, 1], resized (bilinear) to ``frames``' size."""
    if hasattr(heat, "detach"):
        heat = heat.detach().cpu().numpy()  # type: ignore[union-attr]
    array = np.asarray(heat, dtype=np.float32)
    if array.ndim == 4:  # (C, T, H, W) attribution: magnitude over channels
        array = np.abs(array).sum(0)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or len(array) != len(frames):
        raise ValueError(
            f"heat must be (T, H, W) with T={len(frames)} like the frames, got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError("heat has NaN or infinite values")
    if array.shape[1:] != frames.shape[1:3]:
        import torch
        import torch.nn.functional as F

        resized = F.interpolate(
            torch.from_numpy(array)[:, None],
            size=frames.shape[1:3],
            mode="bilinear",
            align_corners=False,
        )
        array = resized[:, 0].numpy()
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 1:  # not already in [0, 1]: scale by the clip's largest value
        array = np.abs(array)
        top = float(array.max())
        array = array / top if top > 0 else np.zeros_like(array)
    return array


def overlay(frames: object, heat: object, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a heatmap over frames: uint8 ``(T, H, W, 3)``.

    ``frames``: uint8 ``(T, H, W, 3)``. ``heat``: ``(T, H, W)`` in [0, 1] (any other range, or a
    ``(C, T, H, W)`` attribution, is turned into magnitudes scaled by the clip's maximum, so
    frames stay comparable), resized to the frames. Each pixel gets ``alpha * heat`` of the
    colour map's colour, so cold regions keep the frame as it is.
    """
    from matplotlib import colormaps

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    array = _as_frames(frames)
    weights = _as_heat(heat, array)
    colours = colormaps[cmap](weights)[..., :3]  # (T, H, W, 3) in [0, 1]
    mix = (alpha * weights)[..., None]
    blended = (1.0 - mix) * (array / 255.0) + mix * colours
    return np.clip(np.round(blended * 255.0), 0, 255).astype(np.uint8)


def attribution_strip(
    frames: object,
    heat: object,
    *,
    num_frames: int = 8,
    alpha: float = 0.5,
    cmap: str = "jet",
    titles: Sequence[str] | None = None,
    title: str | None = None,
    cell_inches: float = 1.3,
    heat_label: str = "attribution (1 = the clip's scale)",
) -> Figure:
    """Frames (top row) and the same frames with the heatmap over them (bottom row).

    Up to ``num_frames`` frames, evenly spaced; ``titles`` label every input frame (default
    ``t=<index>``). The heat is scaled over the whole clip (see :func:`overlay`), and a
    colourbar labelled ``heat_label`` gives the scale, so a reader can tell hot from cold.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    array = _as_frames(frames)
    blended = overlay(array, heat, alpha=alpha, cmap=cmap)
    if titles is not None and len(titles) != len(array):
        raise ValueError(f"titles has {len(titles)} entries for {len(array)} frames")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    picks = np.unique(np.linspace(0, len(array) - 1, min(num_frames, len(array))).round())
    picks = picks.astype(int)
    aspect = array.shape[1] / array.shape[2]
    fig = Figure(
        figsize=(
            cell_inches * len(picks) + 0.9,
            2 * cell_inches * aspect + (0.4 if title else 0.1),
        ),
        layout="constrained",
    )
    grid = fig.add_gridspec(2, len(picks))
    heat_axes = []
    for col, t in enumerate(picks):
        for row, image in enumerate((array[t], blended[t])):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(image, interpolation="nearest")
            ax.set_axis_off()
            if row == 0:
                ax.set_title(titles[t] if titles is not None else f"t={t}", fontsize=8)
            else:
                heat_axes.append(ax)
    scale = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap)
    bar = fig.colorbar(scale, ax=heat_axes, shrink=0.9, aspect=12, pad=0.02)
    bar.set_label(heat_label, fontsize=7)
    bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def temporal_importance_plot(
    curves: Mapping[str, object],
    marker: float | Sequence[float] | None = None,
    *,
    title: str = "Which frames matter",
    xlabel: str = "frame of the clip",
    relative: bool = True,
) -> Figure:
    """One line per stream of its per-frame importance, on one shared scale.

    ``curves``: stream -> values ``(T,)`` (at frames 0..T-1) or ``(positions, values)``, e.g.
    :meth:`hartutor.explain.Attribution.temporal_curve`, so a stream that sees 8 of 64 frames
    is drawn at those frames. ``marker``: frame(s) to mark with a dashed line (an event).

    ``relative`` (default): each curve is divided by its own mean (:func:`relative_importance`),
    so 1 means "an even share" whatever the number of frames a stream saw. Shares that sum to 1
    over 8 frames are twice those over 16, and would make the 8-frame stream look twice as
    important; ``relative=False`` plots the values as given.
    """
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("temporal_importance_plot needs at least one curve")
    fig = Figure(figsize=(6.4, 3.0), layout="constrained")
    ax = fig.add_subplot()
    for name, curve in curves.items():
        if isinstance(curve, tuple) and len(curve) == 2:
            x, y = (np.asarray(c, dtype=float) for c in curve)
        else:
            y = np.asarray(curve, dtype=float)
            x = np.arange(len(y), dtype=float)
        if y.ndim != 1 or x.shape != y.shape:
            raise ValueError(f"curve {name!r}: positions {x.shape} and values {y.shape} differ")
        ax.plot(x, relative_importance(y) if relative else y, marker="o", markersize=3, label=name)
    if marker is not None:
        for position in np.atleast_1d(np.asarray(marker, dtype=float)):
            ax.axvline(position, color="0.3", linestyle="--", linewidth=1)
    if relative:
        ax.axhline(1.0, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("importance / its mean (1 = even)" if relative else "share of |attribution|")
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def relative_importance(values: object) -> np.ndarray:
    """Per-frame values divided by their mean: 1 everywhere for an even spread.

    Makes curves over different numbers of frames comparable (a stream that saw 8 frames and
    one that saw 16 both read 1 where a frame gets its fair share); all zeros stay zeros.
    """
    array = np.asarray(values, dtype=float)
    mean = float(array.mean()) if array.size else 0.0
    return array / mean if mean > 0 else np.zeros_like(array)


def training_curves(history: Sequence[Any], *, title: str = "Training") -> Figure:
    """Loss and top-1 accuracy per epoch, on the training set and (when measured) validation.

    ``history``: :attr:`hartutor.train.FitResult.history` (records with ``epoch``,
    ``train_loss``, ``train_top1`` and a ``val`` dict holding ``loss`` and ``top1``).
    """
    from matplotlib.figure import Figure

    if not history:
        raise ValueError("training_curves needs at least one epoch of history")
    epochs = [int(r.epoch) for r in history]
    fig = Figure(figsize=(7.2, 2.8), layout="constrained")
    loss_ax, top1_ax = fig.subplots(1, 2)
    for ax, train_key, val_key, label in (
        (loss_ax, "train_loss", "loss", "cross-entropy loss"),
        (top1_ax, "train_top1", "top1", "top-1 accuracy"),
    ):
        ax.plot(epochs, [float(getattr(r, train_key)) for r in history], "o-", label="train")
        val = [getattr(r, "val", {}).get(val_key) for r in history]
        if any(v is not None for v in val):
            points = [(e, float(v)) for e, v in zip(epochs, val, strict=True) if v is not None]
            ax.plot(*zip(*points, strict=True), "s--", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    top1_ax.set_ylim(0, 1)
    fig.suptitle(title, fontsize=10)
    return fig


def stream_share_figure(
    shares: Mapping[str, float], *, title: str = "Share of the fused score"
) -> Figure:
    """Horizontal bars of each stream's share of the fused score (percent, summing to 100)."""
    from matplotlib.figure import Figure

    if not shares:
        raise ValueError("stream_share_figure needs at least one stream")
    names = list(shares)
    values = np.array([float(shares[n]) for n in names])
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError(f"shares must be finite and >= 0, got {dict(shares)}")
    fig = Figure(figsize=(5.0, 0.5 + 0.45 * len(names)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(names))[::-1]
    bars = ax.barh(y, 100 * values, color=[f"C{i}" for i in range(len(names))])
    ax.bar_label(bars, labels=[f"{100 * v:.0f}%" for v in values], fontsize=8, padding=2)
    ax.set_yticks(y, names)
    ax.set_xlim(0, 110)
    ax.set_xlabel("% of the fused score")
    ax.set_title(title, fontsize=10)
    return fig


def confusion_figure(
    confusion: object,
    class_names: Sequence[str],
    normalize: bool = True,
    *,
    title: str | None = None,
) -> Figure:
    """The confusion matrix (rows: true class, columns: predicted) as a heatmap.

    ``normalize``: each row divided by its count (recall on the diagonal); rows with no
    samples stay empty. Cells are annotated when there are at most 20 classes.
    """
    from matplotlib.figure import Figure

    if hasattr(confusion, "detach"):
        confusion = confusion.detach().cpu().numpy()  # type: ignore[union-attr]
    counts = np.asarray(confusion, dtype=float)
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f"confusion must be ({k}, {k}) for {k} class names, got {counts.shape}")
    values = counts
    if normalize:
        totals = counts.sum(1, keepdims=True)
        values = np.divide(counts, totals, out=np.full_like(counts, np.nan), where=totals > 0)
    side = max(3.5, 0.45 * k + 1.5)
    fig = Figure(figsize=(side + 0.8, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(
        image, ax=ax, shrink=0.8, label="fraction of the true class" if normalize else "clips"
    )
    ax.set_xticks(range(k), class_names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 20:
        top = np.nanmax(values) if np.isfinite(values).any() else 1.0
        for i in range(k):
            for j in range(k):
                if counts[i, j] == 0:
                    continue
                text = f"{values[i, j]:.2f}" if normalize else f"{int(counts[i, j])}"
                colour = "white" if values[i, j] > 0.6 * top else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=6, color=colour)
    ax.set_title(title or ("Confusion (row-normalised)" if normalize else "Confusion"), fontsize=10)
    return fig


def params_accuracy_figure(
    rows: Sequence[object],
    accuracies: Mapping[str, float] | None = None,
    *,
    title: str = "Parameters and accuracy",
) -> Figure:
    """Each model's parameter count (log scale) against its top-1 accuracy.

    ``rows``: :class:`hartutor.params.ModelRow` (``label``, ``params``, ``poster_top1``).
    ``accuracies``: label (or model name) -> top-1 in [0, 1] or percent, e.g. measured on the
    synthetic set; otherwise a row's poster claim with a number is used. Models without
    either are drawn as ticks on the x axis, so every model's size is still shown.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    if not rows:
        raise ValueError("params_accuracy_figure needs at least one row")
    accuracies = dict(accuracies or {})
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    unknown: list[tuple[str, float]] = []
    shown = 0
    for row in rows:
        label = str(getattr(row, "label", row))
        params = getattr(row, "params", None)
        if params is None:
            continue
        accuracy = accuracies.get(label, accuracies.get(str(getattr(row, "model", ""))))
        claim = getattr(row, "poster_top1", None)
        if accuracy is None and claim is not None and claim.number is not None:
            accuracy = claim.number
        if accuracy is None:
            unknown.append((label, float(params)))
            continue
        accuracy = float(accuracy) * (100.0 if float(accuracy) <= 1.0 else 1.0)
        ax.scatter(params, accuracy, s=30, zorder=3)
        ax.annotate(
            label, (params, accuracy), textcoords="offset points", xytext=(5, 4), fontsize=8
        )
        shown += 1
    for label, params in unknown:
        ax.axvline(params, color="0.75", linewidth=1, zorder=1)
        ax.annotate(
            label,
            (params, 0.02),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=7,
            color="0.4",
            ha="right",
            va="bottom",
        )
    ax.set_xscale("log")
    millions = FuncFormatter(lambda value, _pos: f"{value / 1e6:g}M")
    ax.xaxis.set_major_formatter(millions)
    ax.xaxis.set_minor_formatter(millions)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.margins(x=0.15, y=0.1)
    ax.set_xlabel("parameters")
    ax.set_ylabel("top-1 accuracy (%)")
    if shown == 0:
        ax.set_ylim(0, 100)
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title, fontsize=10)
    return fig


def temporal_fusion_figure(
    views: Mapping[str, Mapping[str, Sequence[Sequence[int]]]],
    *,
    num_frames: int | None = None,
    title: str = "Which frames each layer sees",
) -> Figure:
    """Where each network fuses time: per network, per layer, the frames each unit sees.

    ``views``: network name -> layer name -> one list of frame indices per time step of that
    layer, bottom layer first, as :meth:`hartutor.models.karpathy.KarpathyNet.temporal_views`
    returns. Each unit is a row of squares on the frames it sees (units of one layer in
    alternating shades, offset when they overlap); frames no unit of a layer sees stay empty.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if not views:
        raise ValueError("temporal_fusion_figure needs at least one network")
    if num_frames is None:
        num_frames = 1 + max(
            f for layers in views.values() for u in layers.values() for s in u for f in s
        )
    fig = Figure(figsize=(3.0 * len(views), 3.2), layout="constrained")
    axes = fig.subplots(1, len(views), sharey=False, squeeze=False)[0]
    palette = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    for ax, (name, layers) in zip(axes, views.items(), strict=True):
        names = list(layers)
        for row, layer in enumerate(names):
            units = layers[layer]
            ax.axhspan(row - 0.45, row + 0.45, color="0.95", zorder=0)
            lanes = 1 if all(len(u) == 1 for u in units) else min(len(units), 3)
            for j, frames in enumerate(units):
                lane = (j % lanes) - (lanes - 1) / 2
                y = row + 0.25 * lane
                color = palette[j % len(palette)] if len(units) > 1 else "tab:purple"
                ax.scatter(list(frames), [y] * len(frames), marker="s", s=16, color=color, zorder=3)
                if len(frames) > 1:
                    ax.plot([min(frames), max(frames)], [y, y], color=color, linewidth=1, zorder=2)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlim(-0.7, num_frames - 0.3)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.set_xlabel("frame", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def animate(
    frames: object,
    heat: object | None = None,
    fps: float = 8,
    *,
    alpha: float = 0.5,
    cmap: str = "jet",
    title: str | None = None,
    inches: float = 3.0,
) -> FuncAnimation:
    """An animation of a clip (with its heatmap blended in, if given) for notebooks.

    Built on a :class:`matplotlib.figure.Figure`, so it works headless (Agg); show it in
    Jupyter with :func:`to_jshtml` (or ``anim.to_html5_video()`` where ffmpeg exists).
    """
    from matplotlib.animation import FuncAnimation
    from matplotlib.figure import Figure

    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    array = _as_frames(frames)
    if heat is not None:
        array = overlay(array, heat, alpha=alpha, cmap=cmap)
    aspect = array.shape[1] / array.shape[2]
    fig = Figure(figsize=(inches, inches * aspect + (0.3 if title else 0.0)))
    ax = fig.add_axes((0, 0, 1, 0.9 if title else 1))
    ax.set_axis_off()
    image = ax.imshow(array[0], interpolation="nearest")
    label = fig.suptitle(f"{title or ''} t=0".strip(), fontsize=9) if title else None

    def update(t: int) -> list:
        image.set_data(array[t])
        if label is not None:
            label.set_text(f"{title} t={t}")
        return [image]

    return FuncAnimation(fig, update, frames=len(array), interval=1000.0 / fps, blit=False)


def to_jshtml(anim: FuncAnimation, *, loop: bool = True) -> str:
    """The animation as self-contained HTML + JavaScript (no ffmpeg needed); display it with
    ``IPython.display.HTML(to_jshtml(anim))``."""
    return anim.to_jshtml(default_mode="loop" if loop else "once")
