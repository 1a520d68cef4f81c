"""Optical flow for real videos: OpenCV estimators, the papers' encoding, a disk cache, EPE.

Two-stream networks and I3D's flow stream read dense optical flow. The two-stream paper
(Simonyan & Zisserman 2014) computed it with Brox et al. (2004); I3D (Carreira & Zisserman 2017)
with TV-L1 (Zach et al. 2007), stored clipped to +-20 pixels and rescaled to [-1, 1]. This module
does the same with OpenCV (``cv2.optflow`` from opencv-contrib for TV-L1; Farneback and DIS from
core OpenCV as faster alternatives), caches results on disk so each video is processed once, and
measures estimators against the synthetic dataset's exact flow (end-point error).

Flow arrays are ``float32 (2, T-1, H, W)``: x then y displacement in pixels per frame, from frame
``t`` to ``t+1``.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hartutor._fileio import atomic_write_bytes
from hartutor.config import cache_dir

Method = Literal["tvl1", "farneback", "dis", "zero"]

#: The papers' clipping bound in pixels (Carreira & Zisserman 2017; Simonyan & Zisserman 2014).
FLOW_BOUND = 20.0


def available_methods() -> list[str]:
    """Estimators usable in this installation (TV-L1 needs opencv-contrib)."""
    import cv2

    methods = ["farneback", "dis"]
    if hasattr(cv2, "optflow") and hasattr(cv2.optflow, "DualTVL1OpticalFlow_create"):
        methods.insert(0, "tvl1")
    return methods


def _estimator(method: Method) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    import cv2

    if method == "tvl1":
        if "tvl1" not in available_methods():
            raise RuntimeError(
                "TV-L1 flow needs OpenCV's contrib modules: "
                "pip install opencv-contrib-python-headless"
            )
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        return lambda a, b: tvl1.calc(a, b, None)
    if method == "farneback":
        # OpenCV's documented example parameters: pyramid 0.5, 3 levels, window 15.
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda a, b: dis.calc(a, b, None)
    if method == "zero":  # the baseline every estimator must beat: "nothing moves"
        return lambda a, b: np.zeros((*a.shape, 2), dtype=np.float32)
    raise ValueError(f"unknown flow method {method!r}; choose from {available_methods()}")


def to_gray(frames: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) RGB frames to uint8 (T, H, W) luminance (ITU-R 601, as OpenCV)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(frames.astype(np.float32) @ weights + 0.5, 0, 255).astype(np.uint8)


def estimate_flow(frames: np.ndarray, method: Method = "tvl1") -> np.ndarray:
    """Dense flow between consecutive frames: uint8 (T, H, W, 3) -> float32 (2, T-1, H, W)."""
    gray = to_gray(np.asarray(frames))
    if len(gray) < 2:
        raise ValueError(f"flow needs at least 2 frames, got {len(gray)}")
    calc = _estimator(method)
    out = np.empty((2, len(gray) - 1, *gray.shape[1:]), dtype=np.float32)
    for t in range(len(gray) - 1):
        flow = calc(gray[t], gray[t + 1])
        out[0, t], out[1, t] = flow[..., 0], flow[..., 1]
    return out


def estimated_flow_transform(dataset: Any, method: Method) -> Callable[[dict], dict]:
    """A ``batch_transform`` (:func:`hartutor.train.evaluate`) that feeds estimated flow.

    Each synthetic clip of the batch is rendered again from its ``action`` and ``seed`` with
    ``dataset``'s settings (a :class:`hartutor.synth.SyntheticActions`), its flow estimated
    from its frames with ``method``, and the batch's exact ``flow`` replaced by it: what a
    temporal stream trained on exact flow meets when it is given an estimator's output.
    """
    import torch

    from hartutor.synth import render_clip

    def transform(batch: dict) -> dict:
        fields = []
        for action, seed in zip(batch["action"], batch["seed"], strict=True):
            clip = render_clip(
                str(action),
                int(seed),
                num_frames=dataset.num_frames,
                size=dataset.size,
                fps=dataset.fps,
                noise=dataset.noise,
            )
            fields.append(torch.from_numpy(estimate_flow(clip.frames, method)))
        flow = torch.stack(fields).to(batch["flow"].dtype)
        if flow.shape != batch["flow"].shape:
            raise ValueError(f"estimated flow {tuple(flow.shape)} != {tuple(batch['flow'].shape)}")
        return {**batch, "flow": flow}

    return transform


def encode_flow(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """The papers' network input: clip to [-bound, bound] pixels and rescale to [-1, 1]."""
    return np.clip(flow, -bound, bound) / bound


def decode_flow(encoded: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Inverse of :func:`encode_flow` (exact for flow within the bound)."""
    return np.asarray(encoded, dtype=np.float32) * bound


def end_point_error(
    estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """Mean Euclidean distance between two flows (2, ...), over ``mask`` if given."""
    if estimate.shape != truth.shape:
        raise ValueError(f"flow shapes differ: {estimate.shape} vs {truth.shape}")
    error = np.sqrt(((estimate - truth) ** 2).sum(axis=0))
    if mask is not None:
        error = error[np.broadcast_to(mask, error.shape)]
    return float(error.mean()) if error.size else float("nan")


def _cache_key(video: Path, method: str, num_frames: int | None, size: int | None) -> str:
    digest = hashlib.sha256()
    with open(video, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    params = json.dumps({"m": method, "n": num_frames, "s": size, "v": 1}, sort_keys=True)
    digest.update(params.encode())
    return digest.hexdigest()[:32]


def flow_for_video(
    path: str | Path,
    *,
    method: Method = "tvl1",
    num_frames: int | None = None,
    size: int | None = None,
    cache: bool = True,
    cache_root: Path | None = None,
) -> np.ndarray:
    """Flow of a video file, computed once and cached (float16 on disk, float32 returned).

    The cache key is the file's sha256 plus the parameters, so an edited video or other settings
    never reuse a stale result.
    """
    from hartutor.video import read_video

    path = Path(path)
    frames = None
    target = None
    if cache:
        key = _cache_key(path, method, num_frames, size)
        target = (cache_root or cache_dir() / "flow") / f"{key}.npy"
        if target.is_file():
            try:
                return np.load(target, allow_pickle=False).astype(np.float32)
            except (ValueError, OSError):
                target.unlink(missing_ok=True)  # corrupt cache entry: recompute
    frames = read_video(path, num_frames=num_frames, size=size).frames.numpy()
    flow = estimate_flow(frames, method)
    if target is not None:
        buffer = io.BytesIO()
        np.save(buffer, flow.astype(np.float16), allow_pickle=False)
        atomic_write_bytes(target, buffer.getvalue())
    return flow


@dataclass
class FlowScore:
    """How one estimator does against the synthetic set's exact flow."""

    method: str
    epe: float  # mean end-point error over all pixels (px)
    epe_figure: float  # mean end-point error on the figure's pixels (px)
    frames_per_second: float  # flow fields estimated per second (one field per frame pair)
    pairs: int


def compare_to_truth(
    methods: Sequence[str] | None = None,
    *,
    num_clips: int = 6,
    size: int = 64,
    num_frames: int = 16,
    seed: int = 0,
) -> list[FlowScore]:
    """Estimate flow on synthetic clips and score it against their exact flow (EPE, speed).

    Noise-free clips of every class in turn; camera motion included. The figure mask is the
    rendered body-part map of each frame ``t`` (the flow is defined from ``t`` to ``t+1``).
    ``methods`` may include ``"zero"`` (no motion anywhere), the baseline that shows what an
    estimator adds.
    """
    from hartutor.synth import CLASS_NAMES, render_clip

    methods = list(methods) if methods is not None else available_methods()
    clips = [
        render_clip(
            CLASS_NAMES[i % len(CLASS_NAMES)],
            seed + i,
            num_frames=num_frames,
            size=size,
            with_flow=True,
            noise=False,
        )
        for i in range(num_clips)
    ]
    scores = []
    for method in methods:
        errors, figure_errors, elapsed = [], [], 0.0
        for clip in clips:
            start = time.perf_counter()
            estimate = estimate_flow(clip.frames, method)  # type: ignore[arg-type]
            elapsed += time.perf_counter() - start
            errors.append(end_point_error(estimate, clip.flow))
            figure_errors.append(end_point_error(estimate, clip.flow, clip.parts[:-1] >= 0))
        pairs = num_clips * (num_frames - 1)
        scores.append(
            FlowScore(
                method,
                float(np.mean(errors)),
                float(np.mean(figure_errors)),
                pairs / elapsed if elapsed else float("inf"),
                pairs,
            )
        )
    return scores


def scores_markdown(scores: Sequence[FlowScore]) -> str:
    """A markdown table of :func:`compare_to_truth`'s rows."""
    from hartutor._markdown import markdown_table

    header = ("method", "EPE, all pixels (px)", "EPE, figure (px)", "flow fields/s")
    rows = [
        (
            s.method + (" (no motion: the baseline)" if s.method == "zero" else ""),
            f"{s.epe:.3f}",
            f"{s.epe_figure:.3f}",
            "" if s.method == "zero" else f"{s.frames_per_second:.0f}",
        )
        for s in scores
    ]
    return markdown_table(header, rows)


# --------------------------------------------------------------------------- cost of flow


def _frame_pair_source(size: tuple[int, int], count: int, seed: int) -> np.ndarray:
    """``count + 1`` uint8 gray frames of ``size`` (H, W): a synthetic clip, centre-cropped."""
    from hartutor.synth import CLASS_NAMES, render_clip

    height, width = size
    clip = render_clip(
        CLASS_NAMES[seed % len(CLASS_NAMES)],
        seed,
        num_frames=count + 1,
        size=max(height, width),
        noise=False,
    )
    gray = to_gray(clip.frames)
    top = (gray.shape[1] - height) // 2
    left = (gray.shape[2] - width) // 2
    return np.ascontiguousarray(gray[:, top : top + height, left : left + width])


def measure_flow_rate(method: str, size: tuple[int, int], pairs: int = 8) -> float:
    """Flow fields per second ``method`` computes on this CPU, one thread, at ``size`` (H, W).

    What a flow stream costs before the network runs: the estimator is timed on ``pairs``
    consecutive frame pairs of a synthetic clip rendered at that size (one more pair first,
    untimed, to allocate). OpenCV runs on one thread during the measurement, as the course's
    figures are per core. ``"tvl1"`` is OpenCV's Dual TV-L1 with its default settings.
    """
    import cv2

    if len(size) != 2 or min(size) < 8:
        raise ValueError(f"size must be (H, W) with sides >= 8, got {size}")
    if pairs < 1:
        raise ValueError(f"pairs must be >= 1, got {pairs}")
    calc = _estimator(method)  # type: ignore[arg-type]
    frames = _frame_pair_source((int(size[0]), int(size[1])), pairs + 1, seed=0)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        calc(frames[0], frames[1])
        start = time.perf_counter()
        for t in range(1, pairs + 1):
            calc(frames[t], frames[t + 1])
        elapsed = time.perf_counter() - start
    finally:
        cv2.setNumThreads(threads)
    return pairs / elapsed if elapsed > 0 else float("inf")


@dataclass
class FlowRate:
    """One estimator's speed at one frame size."""

    method: str
    size: tuple[int, int]
    fields_per_second: float
    pairs: int

    def seconds_per_video_second(self, fps: float = 25.0) -> float:
        """Seconds of computation per second of video at ``fps`` (one field per frame)."""
        return fps / self.fields_per_second


def flow_cost(
    methods: Sequence[str] | None = None,
    sizes: Sequence[tuple[int, int]] = ((224, 224), (64, 64)),
    *,
    pairs: int | Mapping[str, int] = 8,
) -> list[FlowRate]:
    """:func:`measure_flow_rate` of every method (default: all available) at every size.

    ``pairs`` may differ per method (TV-L1 is slow: fewer pairs keep the measurement short).
    """
    methods = list(methods) if methods is not None else available_methods()
    rates = []
    for method in methods:
        count = pairs[method] if isinstance(pairs, Mapping) else pairs
        for size in sizes:
            size = (int(size[0]), int(size[1]))
            rate = measure_flow_rate(method, size, count)
            rates.append(FlowRate(method, size, rate, count))
    return rates


def flow_cost_markdown(rates: Sequence[FlowRate], fps: float = 25.0) -> str:
    """A markdown table of :func:`flow_cost`'s rows, with the time per second of video."""
    from hartutor._markdown import markdown_table

    header = ("method", "frame size", "flow fields/s (one core)", f"s per s of {fps:g} fps video")
    rows = [
        (
            r.method,
            f"{r.size[0]}x{r.size[1]}",
            f"{r.fields_per_second:.1f}",
            f"{r.seconds_per_video_second(fps):.2f}",
        )
        for r in rates
    ]
    return markdown_table(header, rows)


def flow_cost_figure(rates: Sequence[FlowRate], *, fps: float = 25.0) -> Any:
    """Bars of fields per second (log scale) per method and size, against real time."""
    from matplotlib.figure import Figure

    if not rates:
        raise ValueError("flow_cost_figure needs at least one measurement")
    methods = list(dict.fromkeys(r.method for r in rates))
    sizes = list(dict.fromkeys(r.size for r in rates))
    fig = Figure(figsize=(6.4, 0.9 + 0.5 * len(methods) * len(sizes)), layout="constrained")
    ax = fig.add_subplot()
    height = 0.8 / len(sizes)
    for j, size in enumerate(sizes):
        by_method = {r.method: r.fields_per_second for r in rates if r.size == size}
        y = [
            len(methods) - 1 - i + (j - (len(sizes) - 1) / 2) * height for i in range(len(methods))
        ]
        values = [by_method.get(m, float("nan")) for m in methods]
        bars = ax.barh(y, values, height=height, color=f"C{j}", label=f"{size[0]}x{size[1]}")
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=8, padding=2)
    ax.axvline(fps, color="k", linestyle="--", linewidth=1, label=f"real time, {fps:g} fps")
    ax.set_xscale("log")
    ax.set_yticks(range(len(methods))[::-1], methods)
    ax.set_xlabel("flow fields per second, one CPU core (log scale)")
    ax.set_title("The cost of optical flow, before any network runs", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_xlim(right=ax.get_xlim()[1] * 3)
    return fig
