"""Two Jupyter apps of the course, built on ipywidgets: an inference app and a saliency explorer.

:class:`InferenceApp` runs a model on a clip and shows each stream's and the fused top-5 as
bars (:func:`hartutor.viz.prediction_figure`) with a plain-text line such as
``fused: sit_down (87%)``. The clip is a synthetic class (:func:`hartutor.synth.render_clip`), a
sample clip from the course's fixtures (:func:`hartutor.course.fixtures_dir`), an uploaded
video (written to a temporary file and read with :func:`hartutor.video.read_video`, at most
:data:`MAX_UPLOAD_BYTES`, and in practice :data:`JUPYTER_MESSAGE_LIMIT_BYTES`: see
:func:`upload_note`) or a video file on the kernel's machine, of any size (decoding is
bounded). The model is a checkpoint shipped in ``hartutor/assets/checkpoints`` (the tiny I3D +
Xception fusion first), any checkpoint file written by :func:`hartutor.train.fit`, or, when their
weights are in the cache, the full-size pretrained streams (:func:`hartutor.demo.run_full`).

:class:`SaliencyExplorer` attributes a class score with :func:`hartutor.explain.explain`
(method, target class, stream or fused score) and shows the heatmap over the frame picked by a
slider, which a :class:`ipywidgets.Play` drives (linked in the browser with ``jslink``), beside
the temporal-importance curve (:func:`hartutor.viz.temporal_importance_plot`) with a marker at
that frame.

The apps never raise into the kernel: a bad upload, a missing checkpoint or an impossible
request (Grad-CAM of the fused score) is shown as a message in the app's error area. Their work
is done by the plain functions of this module (:func:`synthetic_clip`, :func:`upload_clip`,
:func:`load_model`, :func:`predict`, :func:`prediction_line`, :func:`frame_picture`...), which
tests and notebooks call directly; the callbacks only wire them to the widgets.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import ipywidgets as widgets
import numpy as np
import torch

from hartutor.demo import Prediction
from hartutor.errors import HartutorError, VideoDecodeError, WeightsError

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch import nn

    from hartutor.explain import Attribution

__all__ = [
    "DEFAULT_MODEL",
    "JUPYTER_MESSAGE_LIMIT_BYTES",
    "MAX_UPLOAD_BYTES",
    "VIDEO_SUFFIXES",
    "Clip",
    "InferenceApp",
    "LoadedModel",
    "ModelOption",
    "SaliencyExplorer",
    "attribution_key",
    "clip_inputs",
    "curve_picture",
    "display_heat",
    "figure_png",
    "file_clip",
    "fit_frames",
    "frame_picture",
    "inference_app",
    "load_model",
    "model_options",
    "png_bytes",
    "predict",
    "prediction_line",
    "predictions_figure",
    "saliency_explorer",
    "sample_clips",
    "synthetic_clip",
    "upload_clip",
    "upload_note",
]

#: Largest upload the inference app accepts, in bytes (the bytes travel through the kernel's
#: websocket and are held in memory; UCF101's clips are 0.1-2 MB).
MAX_UPLOAD_BYTES = 50 * 2**20
#: Largest websocket message a Jupyter server or Voila accepts unless configured otherwise
#: (tornado's default ``websocket_max_message_size``). An upload travels as one message: a
#: larger one closes the connection before the kernel sees it, so the app cannot report it.
JUPYTER_MESSAGE_LIMIT_BYTES = 10 * 2**20
#: File suffixes offered as sample clips and accepted by the upload button.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".gif", ".mov", ".m4v", ".mpg", ".mpeg")
#: The shipped checkpoint both apps start with: the poster's fusion in miniature.
DEFAULT_MODEL = "i3d_xception_fusion_tiny.pt"
#: Longest video the apps decode from a file, in seconds (reads stay quick on a laptop).
MAX_CLIP_SECONDS = 600.0
#: Height of the pictures the explorer shows, in pixels (64x64 frames are scaled up).
DISPLAY_HEIGHT = 256


# --------------------------------------------------------------------------- clips


@dataclass
class Clip:
    """A clip for the apps: uint8 ``frames (T, H, W, 3)``, its true class if known, and its exact
    optical flow ``(2, T-1, H, W)`` when it was rendered (synthetic clips)."""

    name: str
    frames: np.ndarray = field(repr=False)
    label: str | None = None
    flow: np.ndarray | None = field(default=None, repr=False)


def synthetic_clip(action: str, seed: int = 0, *, num_frames: int = 16, size: int = 64) -> Clip:
    """A rendered synthetic clip of ``action`` with its exact flow."""
    from hartutor.synth import render_clip

    clip = render_clip(action, seed, num_frames=num_frames, size=size, with_flow=True)
    return Clip(f"{clip.action} (seed {seed})", clip.frames, clip.action, clip.flow)


def file_clip(
    path: str | os.PathLike[str],
    *,
    num_frames: int = 16,
    size: tuple[int, int] = (64, 64),
    name: str | None = None,
) -> Clip:
    """``num_frames`` frames spread over a video file, resized and centre-cropped to ``size``.

    Decoding is bounded (:func:`hartutor.video.read_video`'s limits and
    :data:`MAX_CLIP_SECONDS`); a short video is looped. Errors are
    :class:`~hartutor.errors.VideoDecodeError` naming the file and the reason.
    """
    from hartutor.video import read_video

    path = Path(path)
    video = read_video(
        path,
        num_frames=num_frames,
        size=max(size),
        on_short="loop",
        max_duration=MAX_CLIP_SECONDS,
    )
    frames = fit_frames(video.frames.numpy(), num_frames, size)
    return Clip(name or path.name, frames)


def _human(size: int) -> str:
    """A byte count for people: ``812 bytes``, ``23.4 kB``, ``50.0 MB``."""
    if size < 1000:
        return f"{size} bytes"
    return f"{size / 1e3:.1f} kB" if size < 1e6 else f"{size / 1e6:.1f} MB"


def upload_note(max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """What the app says beside its upload button: the size that can really arrive, and the
    route for larger videos (a file on the kernel's machine, which has no such limit)."""
    if max_bytes < JUPYTER_MESSAGE_LIMIT_BYTES:
        limit = _human(max_bytes)
    else:  # the file shares its message with a little JSON
        limit = f"just under {_human(JUPYTER_MESSAGE_LIMIT_BYTES)}"
    return (
        f"Uploads up to {limit}: they travel to the kernel through Jupyter's websocket, which "
        "refuses larger messages unless the server raises <code>websocket_max_message_size</code>"
        " (the connection then drops with no message here). For a larger video, put it on the "
        "kernel's machine (in JupyterLab, the file browser's upload button has no such limit) "
        "and choose <b>video file</b>."
    )


def upload_clip(
    upload: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    num_frames: int = 16,
    size: tuple[int, int] = (64, 64),
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> Clip:
    """Read a :class:`ipywidgets.FileUpload` entry (``name``, ``content``; or its ``value``).

    Refuses empty and oversized uploads before touching them, then writes the bytes to a
    temporary file (keeping the suffix, so FFmpeg can tell the format) and reads it with
    :func:`file_clip`; the file is removed afterwards.
    """
    if not isinstance(upload, Mapping):
        entries = list(upload)
        if not entries:
            raise VideoDecodeError(
                "(upload)",
                "nothing has arrived from the upload button: choose a video file first. If you "
                f"did, it was probably over the {_human(JUPYTER_MESSAGE_LIMIT_BYTES)} one "
                "Jupyter message carries and was dropped on the way; choose 'video file' and "
                "type its path instead",
            )
        upload = entries[0]
    name = str(upload.get("name") or "upload")
    content = upload.get("content")
    size_bytes = int(upload.get("size") or (len(content) if content is not None else 0))
    too_big = (
        "the file is {}, over the app's limit of {}; cut a shorter or smaller clip "
        "(e.g. ffmpeg -i in.mp4 -t 10 -vf scale=320:-2 out.mp4) and upload that"
    )
    if size_bytes > max_bytes:
        raise VideoDecodeError(name, too_big.format(_human(size_bytes), _human(max_bytes)))
    if content is None:
        raise VideoDecodeError(name, "the upload carries no data: upload the file again")
    data = bytes(content)
    if len(data) > max_bytes:
        raise VideoDecodeError(name, too_big.format(_human(len(data)), _human(max_bytes)))
    if not data:
        raise VideoDecodeError(name, "the file is empty")
    suffix = Path(name).suffix.lower()
    suffix = suffix if suffix in VIDEO_SUFFIXES else ".bin"
    handle, temp = tempfile.mkstemp(prefix="hartutor-upload-", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        try:
            return file_clip(temp, num_frames=num_frames, size=size, name=name)
        except VideoDecodeError as err:  # name the user's file, not the temporary copy
            raise VideoDecodeError(name, err.reason) from None
    finally:
        Path(temp).unlink(missing_ok=True)


def sample_clips(root: Path | None = None) -> list[Path]:
    """Video files in the course's fixtures (``<fixtures>/videos``); empty if none are here."""
    from hartutor.course import fixtures_dir

    root = root if root is not None else fixtures_dir()
    if root is None or not (root / "videos").is_dir():
        return []
    return sorted(
        path
        for path in (root / "videos").iterdir()
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES
    )


def fit_frames(frames: np.ndarray, num_frames: int, size: tuple[int, int]) -> np.ndarray:
    """uint8 ``(T, H, W, 3)`` -> ``num_frames`` frames (uniform in time) of ``size``: centre
    crop to the target aspect, then bilinear resize (antialiased when shrinking)."""
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8 or len(array) == 0:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {array.dtype} {array.shape}")
    height, width = int(size[0]), int(size[1])
    if len(array) != num_frames:
        array = array[np.linspace(0, len(array) - 1, num_frames).round().astype(int)]
    h, w = array.shape[1:3]
    if (h, w) == (height, width):
        return np.ascontiguousarray(array)
    if h * width > w * height:  # too tall for the target aspect: crop rows
        keep = max(1, round(w * height / width))
        top = (h - keep) // 2
        array = array[:, top : top + keep]
    elif h * width < w * height:  # too wide: crop columns
        keep = max(1, round(h * width / height))
        left = (w - keep) // 2
        array = array[:, :, left : left + keep]
    video = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float()
    shrink = video.shape[-2] > height or video.shape[-1] > width
    video = torch.nn.functional.interpolate(
        video, size=(height, width), mode="bilinear", align_corners=False, antialias=shrink
    )
    return video.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelOption:
    """A model the inference app offers: a checkpoint file, or the cached pretrained streams."""

    label: str
    kind: Literal["checkpoint", "pretrained"]
    path: Path | None = None
    i3d_weights: str | None = None
    xception: bool = False


def _shipped_dir() -> Path:
    return Path(str(resources.files("hartutor") / "assets" / "checkpoints"))


def model_options(*, pretrained: bool = True) -> list[ModelOption]:
    """The shipped checkpoints (:data:`DEFAULT_MODEL` first), then the full-size pretrained
    streams when their weights are in the cache (``pretrained=False`` skips the cache look)."""
    paths = sorted(_shipped_dir().glob("*.pt"), key=lambda p: (p.name != DEFAULT_MODEL, p.name))
    options = [ModelOption(f"{p.stem} (shipped)", "checkpoint", path=p) for p in paths]
    if pretrained:
        from hartutor.demo import FULL_XCEPTION_WEIGHTS, full_weights_available

        i3d, xception = full_weights_available()
        if i3d or xception:
            names = [n for n in (i3d, FULL_XCEPTION_WEIGHTS if xception else None) if n]
            options.append(
                ModelOption(
                    f"pretrained: {' + '.join(names)}",
                    "pretrained",
                    i3d_weights=i3d,
                    xception=xception,
                )
            )
    return options


@dataclass
class LoadedModel:
    """A checkpoint's model in eval mode, its class names and where it came from."""

    model: nn.Module
    class_names: list[str]
    path: Path

    @property
    def streams(self) -> list[str]:
        """The fusion's stream names (empty for a single model)."""
        streams = getattr(self.model, "streams", None)
        return list(streams) if streams is not None else []


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Load a hartutor checkpoint (:func:`hartutor.train.load_checkpoint`, ``weights_only``),
    made fast on a CPU (:func:`hartutor.accel.optimize`).

    A missing or unreadable file raises :class:`~hartutor.errors.WeightsError` saying so.
    """
    from hartutor.accel import optimize
    from hartutor.train import load_checkpoint

    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"checkpoint {path} does not exist: pick a shipped model, or give the path of a "
            "file written by 'hartutor train' or 'hartutor fuse'"
        )
    model, meta = load_checkpoint(path)
    optimize(model)  # CPU speed for the live widgets: same scores (hartutor.accel)
    count = int(getattr(model, "num_classes", 0) or 0)
    names = list(meta.get("class_names") or [str(i) for i in range(count)])
    return LoadedModel(model, names, path)


def clip_inputs(model: nn.Module, clip: Clip) -> dict[str, torch.Tensor]:
    """The clip as ``model`` takes it: ``{"video": (C, T, H, W)}`` normalised by its
    ``input_spec``, plus ``"flow"`` (pixels/frame) for flow streams: the clip's exact flow when
    it fits, else estimated with Farneback (:func:`hartutor.flow.estimate_flow`)."""
    from hartutor.data import model_transform

    spec = model.input_spec
    frames = fit_frames(clip.frames, spec.num_frames, tuple(spec.size))
    sample: dict[str, torch.Tensor] = {
        "video": torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 255
    }
    if "flow" in tuple(getattr(model, "input_keys", ("video",))):
        flow = clip.flow
        if flow is None or flow.shape[1:] != (len(frames) - 1, *frames.shape[1:3]):
            from hartutor.flow import estimate_flow

            flow = estimate_flow(frames, "farneback")
        sample["flow"] = torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32))
    return model_transform(model)(sample)


def _top(probabilities: torch.Tensor, names: Sequence[str], k: int, scorer: str) -> Prediction:
    values, indices = probabilities.float().topk(min(k, len(names)))
    return Prediction(scorer, [names[int(i)] for i in indices], [float(v) for v in values])


def predict(loaded: LoadedModel, clip: Clip, *, top: int = 5) -> list[Prediction]:
    """Top-``top`` classes of each stream and of the fused score (a single model: one row,
    named after its checkpoint)."""
    from hartutor.train import model_inputs, scores_of

    inputs = clip_inputs(loaded.model, clip)
    batch = {key: value[None] for key, value in inputs.items()}
    with torch.inference_mode():
        output = loaded.model(model_inputs(loaded.model, batch, torch.device("cpu")))
    names = loaded.class_names
    predictions = []
    for name, logits in getattr(output, "streams", {}).items():
        predictions.append(_top(torch.softmax(logits[0].float(), -1), names, top, name))
    scorer = "fused" if hasattr(output, "fused") else loaded.path.stem
    # scores_of gives logits or fused log-probabilities; softmax turns either into probabilities
    predictions.append(_top(torch.softmax(scores_of(output)[0].float(), -1), names, top, scorer))
    return predictions


def predict_pretrained(option: ModelOption, clip: Clip, *, top: int = 5) -> list[Prediction]:
    """The full-size pretrained streams (:func:`hartutor.demo.run_full`) on the clip, each in
    its own label set; a rendered clip is written to a temporary MP4 first."""
    from hartutor.demo import run_full
    from hartutor.video import write_video

    with tempfile.TemporaryDirectory(prefix="hartutor-app-") as folder:
        path = Path(folder) / "clip.mp4"
        write_video(path, clip.frames, fps=25)
        results, _ = run_full(path, option.i3d_weights, option.xception, top=top)
    return results[0].predictions


def prediction_line(predictions: Sequence[Prediction], truth: str | None = None) -> str:
    """One line of text: ``fused: sit_down (87%) | i3d: sit_down (95%) | ...``, the fused score
    first, then ``| true: <class>`` when the true class is known."""
    ordered = sorted(predictions, key=lambda p: p.scorer != "fused")
    parts = [f"{p.scorer}: {p.labels[0]} ({p.probabilities[0]:.0%})" for p in ordered if p.labels]
    if truth is not None:
        parts.append(f"true: {truth}")
    return " | ".join(parts)


def predictions_figure(clip: Clip, predictions: Sequence[Prediction]) -> Figure:
    """The clip's thumbnails and a bar panel per scorer (:func:`hartutor.viz.prediction_figure`)."""
    from hartutor.viz import prediction_figure

    scorers = [(p.scorer, p.labels, p.probabilities) for p in predictions]
    return prediction_figure([(clip.name, clip.frames, clip.label, scorers)])


# --------------------------------------------------------------------------- pictures


def png_bytes(image: np.ndarray, *, height: int | None = None) -> bytes:
    """uint8 ``(H, W, 3)`` as PNG, scaled up by a whole factor (nearest) to about ``height``."""
    from PIL import Image

    array = np.ascontiguousarray(image)
    if height is not None and array.shape[0] < height:
        factor = max(1, height // array.shape[0])
        array = array.repeat(factor, axis=0).repeat(factor, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def figure_png(fig: Figure, *, dpi: int = 100, tight: bool = False) -> bytes:
    """A matplotlib figure as PNG bytes (for :class:`ipywidgets.Image`); ``tight`` crops the
    empty margins."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return buffer.getvalue()


def attribution_key(attribution: Attribution) -> str:
    """The input to show: ``"video"`` when attributed, else the only one (``"flow"``)."""
    return "video" if "video" in attribution.maps else next(iter(attribution.maps))


def display_heat(
    attribution: Attribution, key: str | None = None, *, outlier_perc: float = 2.0
) -> np.ndarray:
    """``(T, H, W)`` heat in [0, 1] for overlays, one scale for the whole clip.

    Captum's visualisation rule (``visualize_image_attr``'s ``outlier_perc``): divide
    ``|attribution|`` by the value below which ``100 - outlier_perc`` % of its total mass lies,
    then clip to 1, so that a few extreme pixels do not leave the rest of the map invisible.
    """
    heat = attribution.reduced(key or attribution_key(attribution)).astype(np.float64)
    values = np.sort(heat.ravel())
    if not 0 <= outlier_perc < 100:
        raise ValueError(f"outlier_perc must be in [0, 100), got {outlier_perc}")
    if values.size == 0 or values[-1] <= 0:
        return np.zeros_like(heat, dtype=np.float32)
    sums = np.cumsum(values)
    threshold = values[int(np.searchsorted(sums, sums[-1] * (1 - outlier_perc / 100)))]
    threshold = threshold if threshold > 0 else values[-1]
    return np.clip(heat / threshold, 0, 1).astype(np.float32)


def frame_picture(
    attribution: Attribution, t: int, *, key: str | None = None, alpha: float = 0.6
) -> np.ndarray:
    """Frame ``t`` of the attributed input beside the same frame with the heatmap over it
    (:func:`display_heat`, :func:`hartutor.viz.overlay`): uint8 ``(H, 2W + 4, 3)``."""
    from hartutor.viz import overlay

    key = key or attribution_key(attribution)
    frames = attribution.frames(key)
    if not 0 <= t < len(frames):
        raise ValueError(f"frame {t} is outside the attributed input's {len(frames)} frames")
    blended = overlay(frames, display_heat(attribution, key), alpha=alpha)
    gap = np.full((frames.shape[1], 4, 3), 255, dtype=np.uint8)
    return np.concatenate([frames[t], gap, blended[t]], axis=1)


def colourbar_picture(
    *,
    cmap: str = "jet",
    height_inches: float = 2.0,
    label: str = "attribution (1 = the clip's scale)",
) -> Figure:
    """A vertical colourbar for :func:`frame_picture`'s heatmap: the colours of ``cmap`` from 0
    (no attribution) to 1 (:func:`display_heat`'s level holding 98% of the mass), so that the
    explorer's heat can be read as in :func:`hartutor.viz.attribution_strip`."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.0, height_inches), layout="constrained")
    ax = fig.add_subplot()
    bar = fig.colorbar(ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap), cax=ax)
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(labelsize=7)
    return fig


def curve_picture(attribution: Attribution, t: int, *, key: str | None = None) -> Figure:
    """The temporal-importance curve of the attribution with a marker at input frame ``t``
    (drawn at its position in the shared clip)."""
    from hartutor.viz import temporal_importance_plot

    key = key or attribution_key(attribution)
    positions, values = attribution.temporal_curve(key)
    if not 0 <= t < len(positions):
        raise ValueError(f"frame {t} is outside the attributed input's {len(positions)} frames")
    name = attribution.stream or "fused"
    return temporal_importance_plot(
        {name: (positions, values)},
        marker=float(positions[t]),
        title=f"Which frames matter to {name} ({attribution.method})",
    )


# --------------------------------------------------------------------------- widget helpers


def _message(err: BaseException) -> str:
    """A readable message for the app's error area."""
    if isinstance(err, (HartutorError, ValueError, OSError)):
        return str(err)
    return f"{type(err).__name__}: {err}"


def _error_html(text: str) -> str:
    import html

    return f"<div style='color:#a00;white-space:pre-wrap'><b>Error:</b> {html.escape(text)}</div>"


class _Steps:
    """Drive an :class:`ipywidgets.IntProgress` and a status label through named steps."""

    def __init__(self, bar: widgets.IntProgress, status: widgets.Label, total: int) -> None:
        self.bar, self.status = bar, status
        bar.max, bar.value, bar.bar_style = total, 0, "info"

    def __call__(self, text: str) -> None:
        self.status.value = text
        self.bar.value = min(self.bar.value + 1, self.bar.max)

    def done(self, text: str) -> None:
        self.bar.value, self.bar.bar_style = self.bar.max, "success"
        self.status.value = text

    def failed(self) -> None:
        self.bar.bar_style = "danger"
        self.status.value = "failed"


# --------------------------------------------------------------------------- inference app


class InferenceApp(widgets.VBox):
    """Run a model on a synthetic, sample, uploaded or file clip; show each stream's top-5 and the
    fused top-5 (see the module docstring). ``run()`` is what the Run button calls."""

    def __init__(
        self,
        *,
        models: Sequence[ModelOption] | None = None,
        samples: Sequence[Path] | None = None,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        top: int = 5,
        action: str = "sit_down",
    ) -> None:
        from hartutor.synth import CLASS_NAMES

        self.max_upload_bytes = int(max_upload_bytes)
        self.top = int(top)
        self._models: dict[tuple[str, int, int], LoadedModel] = {}
        options = list(models) if models is not None else model_options()
        samples = list(samples) if samples is not None else sample_clips()
        self.source = widgets.ToggleButtons(
            options=[
                ("synthetic class", "synthetic"),
                ("sample clip", "sample"),
                ("upload", "upload"),
                ("video file", "file"),
            ],
            value="synthetic",
            description="clip",
        )
        self.action = widgets.Dropdown(options=list(CLASS_NAMES), value=action, description="class")
        self.seed = widgets.BoundedIntText(value=0, min=0, max=10**6, description="seed")
        self.sample = widgets.Dropdown(
            options=[(p.name, str(p)) for p in samples],
            value=str(samples[0]) if samples else None,
            description="sample",
            disabled=not samples,
        )
        self.upload = widgets.FileUpload(
            accept=",".join(("video/*", *VIDEO_SUFFIXES)), multiple=False, description="video"
        )
        self.upload_note = widgets.HTML(upload_note(self.max_upload_bytes))
        self.video_path = widgets.Text(
            placeholder="path of a video on the kernel's machine (any size)",
            description="file",
            layout=widgets.Layout(width="60%"),
        )
        self.model = widgets.Dropdown(
            options=[(o.label, o) for o in options],
            value=options[0] if options else None,
            description="model",
            layout=widgets.Layout(width="max-content"),
        )
        self.checkpoint = widgets.Text(
            placeholder="or the path of a checkpoint (.pt)", description="weights"
        )
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.progress = widgets.IntProgress(min=0, max=4, value=0)
        self.status = widgets.Label("")
        self.prediction = widgets.Label("")
        self.error = widgets.HTML("")
        # hidden while empty: browsers draw an empty image as a broken-image icon
        self.plot = widgets.Image(
            format="png", layout=widgets.Layout(max_width="100%", display="none")
        )
        self.clip: Clip | None = None
        self.predictions: list[Prediction] = []
        self.figure: Figure | None = None
        self.loaded: LoadedModel | None = None

        for widget, name in (
            (self.action, "class"),
            (self.seed, "seed"),
            (self.sample, "sample"),
            (self.upload, "upload"),
            (self.upload_note, "upload-note"),
            (self.video_path, "video-path"),
            (self.model, "model"),
            (self.checkpoint, "checkpoint"),
            (self.run_button, "run"),
            (self.prediction, "prediction"),
            (self.error, "error"),
            (self.status, "status"),
        ):
            widget.add_class(f"hartutor-{name}")
        self.run_button.on_click(lambda _button: self.run())
        self.upload.observe(self._uploaded, names="value")
        self.sample.observe(self._sample_picked, names="value")
        self._synthetic_box = widgets.HBox([self.action, self.seed])
        self.source.observe(self._source_changed, names="value")
        notes = []
        if not samples:
            notes.append("no sample clips here (set HARTUTOR_FIXTURES to the course's fixtures)")
        super().__init__(
            [
                widgets.HTML("<b>Inference</b>: pick a clip and a model, then Run."),
                self.source,
                self._synthetic_box,
                self.sample,
                self.upload,
                self.upload_note,
                self.video_path,
                widgets.HBox([self.model, self.checkpoint]),
                widgets.HBox([self.run_button, self.progress, self.status]),
                self.prediction,
                self.error,
                self.plot,
                *[widgets.Label(note) for note in notes],
            ]
        )
        self.add_class("hartutor-inference-app")
        self._source_changed()

    def _source_changed(self, _change: object = None) -> None:
        """Show only the controls of the chosen clip source."""
        shown: dict[str, tuple[widgets.Widget, ...]] = {
            "synthetic": (self._synthetic_box,),
            "sample": (self.sample,),
            "upload": (self.upload, self.upload_note),
            "file": (self.video_path,),
        }
        for source, boxes in shown.items():
            for box in boxes:
                box.layout.display = None if source == self.source.value else "none"

    def _uploaded(self, change: Mapping[str, Any]) -> None:
        if change["new"]:
            self.source.value = "upload"

    def _sample_picked(self, change: Mapping[str, Any]) -> None:
        if change["new"]:
            self.source.value = "sample"

    def selected_model(self) -> ModelOption | Path:
        """The checkpoint path typed in (if any), else the model picked in the list."""
        typed = self.checkpoint.value.strip()
        if typed:
            return Path(typed).expanduser()
        if self.model.value is None:
            raise WeightsError("no model to run: no checkpoint is shipped or cached here")
        return self.model.value

    def current_clip(self, *, num_frames: int = 16, size: tuple[int, int] = (64, 64)) -> Clip:
        """The clip the controls describe (``num_frames`` of ``size`` for files and uploads)."""
        if self.source.value == "synthetic":
            return synthetic_clip(self.action.value, int(self.seed.value), size=min(size))
        if self.source.value == "sample":
            if not self.sample.value:
                raise VideoDecodeError(
                    "(sample clip)",
                    "no sample clips are available here; set HARTUTOR_FIXTURES to the course's "
                    "shared/fixtures folder, or pick a synthetic class or upload a video",
                )
            return file_clip(self.sample.value, num_frames=num_frames, size=size)
        if self.source.value == "file":
            typed = self.video_path.value.strip()
            if not typed:
                raise VideoDecodeError("(video file)", "type the path of a video file first")
            return file_clip(Path(typed).expanduser(), num_frames=num_frames, size=size)
        return upload_clip(
            self.upload.value, num_frames=num_frames, size=size, max_bytes=self.max_upload_bytes
        )

    def _load(self, path: Path) -> LoadedModel:
        """:func:`load_model`, remembered for this app while the file stays the same."""
        path = path.expanduser()
        stat = path.stat() if path.is_file() else None
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size) if stat else None
        if key is None or key not in self._models:
            loaded = load_model(path)
            if key is not None:
                self._models = {key: loaded}  # one model at a time: memory stays bounded
            return loaded
        return self._models[key]

    def run(self) -> list[Prediction]:
        """Read the clip, load the model, predict, draw; any error is shown in the app."""
        self.error.value = ""
        self.prediction.value = ""
        steps = _Steps(self.progress, self.status, 4)
        try:
            steps("loading the model")
            choice = self.selected_model()
            loaded = None
            if isinstance(choice, Path) or choice.kind == "checkpoint":
                path = choice if isinstance(choice, Path) else choice.path
                assert path is not None
                loaded = self._load(path)
                spec = loaded.model.input_spec
                num_frames, size = spec.num_frames, tuple(spec.size)
            else:
                num_frames, size = 16, (224, 224)
            steps("reading the clip")
            clip = self.current_clip(num_frames=num_frames, size=size)
            steps("running the model")
            if loaded is not None:
                predictions = predict(loaded, clip, top=self.top)
            else:
                predictions = predict_pretrained(choice, clip, top=self.top)  # type: ignore[arg-type]
            steps("drawing")
            figure = predictions_figure(clip, predictions)
            self.plot.value = figure_png(figure, tight=True)
        except Exception as err:  # shown in the app, never raised into the kernel
            steps.failed()
            self.error.value = _error_html(_message(err))
            self.plot.layout.display = "none"  # an older clip's bars would read as this run's
            return []
        self.plot.layout.display = None
        self.clip, self.loaded, self.predictions, self.figure = clip, loaded, predictions, figure
        self.prediction.value = prediction_line(predictions, clip.label)
        steps.done(f"done: {clip.name}")
        return predictions

    def explorer(self) -> SaliencyExplorer:
        """A :class:`SaliencyExplorer` on the last clip and checkpoint model that ran."""
        if self.loaded is None or self.clip is None:
            raise HartutorError("run a shipped or checkpoint model first, then open the explorer")
        return SaliencyExplorer(self.loaded, clip=self.clip)


def inference_app(**options: Any) -> InferenceApp:
    """:class:`InferenceApp` with the shipped models, the sample clips and the cached weights."""
    return InferenceApp(**options)


# --------------------------------------------------------------------------- saliency explorer


_METHOD_LABELS = {
    "saliency": "Saliency",
    "integrated_gradients": "Integrated Gradients",
    "grad_cam": "Grad-CAM",
    "guided_grad_cam": "Guided Grad-CAM",
    "occlusion": "Occlusion",
}


class SaliencyExplorer(widgets.VBox):
    """Captum attributions of one clip, frame by frame (see the module docstring).

    ``model``: a :class:`LoadedModel` or a checkpoint path (default: the shipped tiny fusion).
    ``clip``: what to explain (default: a synthetic ``sit_down``); the class and seed controls
    render another synthetic clip. ``explain()`` is what the Explain button calls.
    """

    def __init__(
        self,
        model: LoadedModel | str | os.PathLike[str] | None = None,
        *,
        clip: Clip | None = None,
        method: str = "integrated_gradients",
        stream: str | None = None,
        options: Mapping[str, Any] | None = None,
        interval_ms: int = 400,
    ) -> None:
        from hartutor.explain import METHODS
        from hartutor.synth import CLASS_NAMES

        self.loaded = (
            model
            if isinstance(model, LoadedModel)
            else load_model(model if model is not None else _shipped_dir() / DEFAULT_MODEL)
        )
        self.options = dict(options or {})
        names = self.loaded.class_names
        self.clip = clip if clip is not None else synthetic_clip("sit_down", 0)
        self.attribution: Attribution | None = None
        self._pictures: dict[int, bytes] = {}
        self._curves: dict[int, bytes] = {}
        streams = self.loaded.streams
        stream_options = [*streams, "fused"] if streams else ["model"]
        self.method = widgets.Dropdown(
            options=[(_METHOD_LABELS.get(m, m), m) for m in METHODS],
            value=method,
            description="method",
        )
        self.stream = widgets.Dropdown(
            options=stream_options,
            value=stream if stream is not None else stream_options[0],
            description="stream",
        )
        target = self.clip.label if self.clip.label in names else names[0]
        self.target = widgets.Dropdown(
            options=[(name, i) for i, name in enumerate(names)],
            value=names.index(target),
            description="target",
        )
        self.action = widgets.Dropdown(
            options=list(CLASS_NAMES),
            value=self.clip.label if self.clip.label in CLASS_NAMES else CLASS_NAMES[0],
            description="class",
        )
        self.seed = widgets.BoundedIntText(value=0, min=0, max=10**6, description="seed")
        self.new_clip = widgets.Button(description="New clip", icon="film")
        self.explain_button = widgets.Button(
            description="Explain", button_style="primary", icon="search"
        )
        self.progress = widgets.IntProgress(min=0, max=3, value=0)
        self.status = widgets.Label("")
        self.error = widgets.HTML("")
        self.frame = widgets.IntSlider(value=0, min=0, max=0, description="frame")
        self.play = widgets.Play(value=0, min=0, max=0, interval=interval_ms, description="play")
        self.link = widgets.jslink((self.play, "value"), (self.frame, "value"))
        self.position = widgets.Label("")
        self.image = widgets.Image(format="png")
        # the heat's scale, beside the frames (the same for every attribution: display_heat)
        self.colourbar = widgets.Image(
            value=figure_png(colourbar_picture(height_inches=DISPLAY_HEIGHT / 80), dpi=80),
            format="png",
        )
        self.curve = widgets.Image(format="png")
        self.clip_label = widgets.Label(f"clip: {self.clip.name}")
        for widget, name in (
            (self.method, "method"),
            (self.stream, "stream"),
            (self.target, "target"),
            (self.explain_button, "explain"),
            (self.frame, "frame"),
            (self.play, "play"),
            (self.position, "position"),
            (self.error, "error"),
            (self.status, "status"),
        ):
            widget.add_class(f"hartutor-{name}")
        self.explain_button.on_click(lambda _button: self.explain())
        self.new_clip.on_click(lambda _button: self.use_synthetic())
        self.frame.observe(self._frame_changed, names="value")
        for control in (self.method, self.stream, self.target):
            control.observe(self._settings_changed, names="value")
        super().__init__(
            [
                widgets.HTML("<b>Saliency explorer</b>: what in the clip drives a class score?"),
                widgets.HBox([self.action, self.seed, self.new_clip, self.clip_label]),
                widgets.HBox([self.method, self.stream, self.target]),
                widgets.HBox([self.explain_button, self.progress, self.status]),
                self.error,
                widgets.HBox([self.play, self.frame, self.position]),
                widgets.HBox([self.image, self.colourbar, self.curve]),
            ]
        )
        self.add_class("hartutor-saliency-explorer")

    def set_clip(self, clip: Clip) -> None:
        """Explain another clip (its true class becomes the target when the model knows it)."""
        self.clip = clip
        self.clip_label.value = f"clip: {clip.name}"
        if clip.label in self.loaded.class_names:
            self.target.value = self.loaded.class_names.index(clip.label)
        self._settings_changed()

    def use_synthetic(self) -> None:
        """Render the synthetic clip the class and seed controls describe."""
        self.error.value = ""
        try:
            self.set_clip(synthetic_clip(self.action.value, int(self.seed.value)))
        except Exception as err:  # shown in the app, never raised into the kernel
            self.error.value = _error_html(_message(err))

    def _settings_changed(self, _change: object = None) -> None:
        if self.attribution is not None:
            self.status.value = "settings changed: press Explain"

    def explain(self) -> Attribution | None:
        """Attribute the target's score with the chosen method and stream; show frame 0."""
        from hartutor.explain import explain

        self.error.value = ""
        steps = _Steps(self.progress, self.status, 3)
        try:
            steps("preparing the clip")
            inputs = clip_inputs(self.loaded.model, self.clip)
            steps(f"{_METHOD_LABELS.get(self.method.value, self.method.value)}...")
            stream = self.stream.value if self.stream.value not in ("fused", "model") else None
            attribution = explain(
                self.loaded.model,
                inputs,
                target=int(self.target.value),
                method=self.method.value,
                stream=stream,
                **self.options,
            )
            steps("drawing")
            self._show(attribution)
        except Exception as err:  # shown in the app, never raised into the kernel
            steps.failed()
            self.error.value = _error_html(_message(err))
            return None
        steps.done(self.describe(attribution))
        return attribution

    def describe(self, attribution: Attribution) -> str:
        """One line: what was explained, its probability, the stream's share of the fused score."""
        names = self.loaded.class_names
        who = attribution.stream or ("fused score" if self.loaded.streams else "model")
        text = (
            f"{_METHOD_LABELS.get(attribution.method, attribution.method)} of {who} for "
            f"{names[attribution.target]}: p={attribution.probability:.0%}"
        )
        if attribution.share is not None:
            text += f", {attribution.share:.0%} of the fused score"
        return text

    def _show(self, attribution: Attribution) -> None:
        key = attribution_key(attribution)
        count = int(attribution.inputs[key].shape[1])
        self.attribution = attribution
        self._pictures.clear()
        self._curves.clear()
        self.play.value = 0
        self.frame.value = 0
        self.frame.max = self.play.max = count - 1
        self._frame_changed()

    def _frame_changed(self, _change: object = None) -> None:
        attribution = self.attribution
        if attribution is None:
            return
        t = int(self.frame.value)
        try:
            if t not in self._pictures:
                self._pictures[t] = png_bytes(frame_picture(attribution, t), height=DISPLAY_HEIGHT)
                self._curves[t] = figure_png(curve_picture(attribution, t), dpi=80)
            self.image.value = self._pictures[t]
            self.curve.value = self._curves[t]
            positions, _ = attribution.temporal_curve(attribution_key(attribution))
            self.position.value = (
                f"input frame {t + 1} of {len(positions)} (clip frame {int(positions[t])})"
            )
        except Exception as err:  # shown in the app, never raised into the kernel
            self.error.value = _error_html(_message(err))


def saliency_explorer(
    model: LoadedModel | str | os.PathLike[str] | None = None, **options: Any
) -> SaliencyExplorer:
    """:class:`SaliencyExplorer` on the shipped tiny fusion (or ``model``)."""
    return SaliencyExplorer(model, **options)
