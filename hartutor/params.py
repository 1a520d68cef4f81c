"""The poster's Table 2, side by side with hartutor's own parameter counts and FLOPs.

:func:`parameter_table` builds every model of the timeline at its paper input and measures
it; :func:`format_table` prints the rows as Markdown or plain text (``hartutor params``).

Conventions:

- **Parameters**: every parameter of the model as built for ``num_classes`` classes
  (default 101, UCF101), trainable or not; buffers (BatchNorm statistics) excluded.
- **GFLOPs per clip**: ``torch.utils.flop_counter.FlopCounterMode`` on one clip (batch 1)
  in eval mode, counting **2 FLOPs per multiply-add** (GFLOPs = 2 x GMACs) over
  convolutions, linear layers, matrix products and LSTM cells. Element-wise work
  (ReLU, BatchNorm, pooling, LRN, softmax) is not counted, as in most papers. Many papers
  report multiply-adds and call them FLOPs: divide our figure by 2 to compare.
- Models are built on PyTorch's ``meta`` device: shapes only, no memory, no arithmetic, so
  the full-size table takes seconds on a laptop. On ``meta`` an LSTM decomposes into the
  matrix products that are counted; run on a real CPU, PyTorch's fused LSTM kernel is
  invisible to the counter and LRCN's LSTM would count as 0.

Poster figures are data (:data:`POSTER_CLAIMS`), each with its source; a cell the poster
does not give is shown as "—". Where hartutor's count and the poster's differ, both are
shown (and the difference is noted).

For the lessons on C3D, I3D and Xception (notebooks 04-06), the same conventions one level
down: :func:`layer_cost` (one layer), :func:`parameter_breakdown` (per layer or per group of
layers, e.g. Xception's flows from :func:`xception_flows`), :func:`inflation_table` (2D
networks against their inflated 3D twins) and :func:`match_tf_checkpoint` (DeepMind's I3D
checkpoint index against hartutor's I3D, variable by variable).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn

from hartutor._markdown import markdown_table
from hartutor.errors import HartutorError
from hartutor.models.layers import InputSpec

__all__ = [
    "EXTRA_ROWS",
    "POSTER_CLAIMS",
    "POSTER_SOURCE",
    "POSTER_TABLE2",
    "POSTER_TITLE",
    "TABLE_MODELS",
    "Claim",
    "FlowRate",
    "InflationRow",
    "LayerCost",
    "ModelRow",
    "PaperFigure",
    "PosterRow",
    "RowSpec",
    "Table2Row",
    "breakdown_figure",
    "breakdown_markdown",
    "count_flops",
    "count_parameters",
    "example_inputs",
    "flow_rate",
    "format_table",
    "inflation_markdown",
    "inflation_table",
    "layer_cost",
    "measure_row",
    "parameter_breakdown",
    "parameter_table",
    "poster_table2",
    "record_command",
    "table2_markdown",
    "xception_flows",
]

MISSING = "—"
#: The poster the course follows, by author and title (quoted wherever one of its figures is).
POSTER_TITLE = (
    "A general overview of SpatioTemporal Fusion Techniques for Human Activity Recognition"
)
POSTER_SOURCE = f'S. Bose (University of Calcutta), "{POSTER_TITLE}", research poster'


@dataclass(frozen=True)
class Claim:
    """A figure stated by a source, kept verbatim; ``number`` is its value for comparisons."""

    text: str
    source: str = POSTER_SOURCE
    number: float | None = None

    def __str__(self) -> str:
        return self.text


# What the poster states in its text, by hartutor model name; its Table 2 row by row is
# :data:`POSTER_TABLE2`.
POSTER_CLAIMS: dict[str, dict[str, Claim]] = {
    "i3d_xception_fusion": {
        "params": Claim("~31M", number=31e6),
        "top1": Claim("87.5% (UCF101)"),
        "note": Claim("edge friendly"),
    },
    "i3d": {
        "note": Claim("inflating a 2D network into 3D takes it from 5M to 33M parameters"),
    },
}


@dataclass(frozen=True)
class RowSpec:
    """One row to measure: a label and how to build the model."""

    label: str
    model: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""  # of the paper preset


TABLE_MODELS: tuple[RowSpec, ...] = (
    RowSpec("Single-frame CNN", "single_frame", {}, "ResNet-50 per frame, scores averaged"),
    RowSpec("LRCN", "lrcn", {}, "CaffeNet-style fc6 into a 256-unit LSTM"),
    RowSpec("Two-stream", "two_stream", {}, "CNN-M-2048 x 2, RGB frame + 10 flow fields"),
    RowSpec("C3D", "c3d", {}, "3D convolutions 3x3x3 throughout"),
    RowSpec("I3D", "i3d", {}, "Inception-v1 inflated to 3D"),
    RowSpec("Xception", "xception", {}, "per-frame 2D, depthwise-separable convolutions"),
    RowSpec("I3D + Xception fusion", "i3d_xception_fusion", {}, "late fusion of softmax scores"),
)


@dataclass(frozen=True)
class ModelRow:
    """One measured row of the table (``None``: could not be measured, see ``error``)."""

    label: str
    model: str
    input: str
    params: int | None
    gflops: float | None
    poster_params: Claim | None = None
    poster_top1: Claim | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None
    seconds: float = 0.0
    #: optical flow fields one clip needs (0: the model takes no flow) and their size (H, W)
    flow_fields: int = 0
    flow_size: tuple[int, int] | None = None

    @property
    def gmacs(self) -> float | None:
        """Multiply-adds (what many papers call FLOPs): half of :attr:`gflops`."""
        return None if self.gflops is None else self.gflops / 2


class TableError(HartutorError, RuntimeError):
    """A model of the table cannot be built or measured."""


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (works on ``meta`` models: no memory needed)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _spec_of(model: nn.Module) -> InputSpec:
    spec = getattr(model, "input_spec", None)
    if not isinstance(spec, InputSpec):
        raise TableError(
            f"{type(model).__name__} has no input_spec; pass inputs to count_flops yourself"
        )
    return spec


def example_inputs(
    model: nn.Module, *, batch_size: int = 1, device: torch.device | str = "meta"
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Zero inputs shaped as ``model.input_spec`` says, for each of its ``input_keys``.

    ``"video"``: ``(N, C, T, H, W)``; ``"flow"``: ``(N, 2, T-1, H, W)`` (flow between
    consecutive frames of the same clip), as ``hartutor.train`` batches them.
    """
    spec = _spec_of(model)
    t, (h, w) = spec.num_frames, spec.size
    shapes = {"video": (batch_size, spec.num_channels, t, h, w)}
    keys = tuple(getattr(model, "input_keys", ("video",)))
    if "flow" in keys:
        shapes["flow"] = (batch_size, 2, t - 1, h, w)
    unknown = [k for k in keys if k not in shapes]
    if unknown:
        raise TableError(f"cannot make example inputs for keys {unknown} of {type(model).__name__}")
    inputs = {k: torch.zeros(shapes[k], device=device) for k in keys}
    return inputs[keys[0]] if len(keys) == 1 else inputs


def count_flops(
    model: nn.Module, inputs: torch.Tensor | Mapping[str, torch.Tensor]
) -> tuple[int, dict[str, int]]:
    """FLOPs of one forward pass (2 per multiply-add), total and per module.

    Runs in eval mode without gradients; with ``meta`` inputs and model nothing is computed.
    The per-module dict maps a module's qualified name (``""``: the whole model) to its FLOPs.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(inputs)
    finally:
        model.train(was_training)
    root = type(model).__name__
    per_module: dict[str, int] = {}
    for name, ops in counter.get_flop_counts().items():
        key = "" if name in (root, "Global") else name.removeprefix(f"{root}.")
        per_module[key] = int(sum(ops.values()))  # "Global" and the root are both the total
    return int(counter.get_total_flops()), per_module


def _describe_input(model: nn.Module, inputs: torch.Tensor | Mapping[str, torch.Tensor]) -> str:
    tensors = {"video": inputs} if isinstance(inputs, torch.Tensor) else dict(inputs)
    parts = []
    for key, x in tensors.items():
        _, c, t, h, w = x.shape
        what = "RGB" if key == "video" and c == 3 else key
        parts.append(f"{t}x{h}x{w} {what}")
    return " + ".join(parts)


def _build(name: str, kwargs: Mapping[str, Any], device: str) -> nn.Module:
    from hartutor.models import build_model

    with torch.device(device):
        return build_model(name, **kwargs)


def _stream_notes(model: nn.Module, per_module: Mapping[str, int]) -> list[str]:
    """Per-stream parameters and FLOPs of a fusion (``streams.<name>`` submodules)."""
    streams = getattr(model, "streams", None)
    if not isinstance(streams, nn.ModuleDict):
        return []
    parts = []
    for name, stream in streams.items():
        flops = per_module.get(f"streams.{name}")
        gf = f", {flops / 1e9:.1f} GFLOPs" if flops is not None else ""
        parts.append(f"{name} {count_parameters(stream) / 1e6:.1f}M{gf}")
    return ["streams: " + "; ".join(parts)]


def _per_frame_note(model: nn.Module, flops: int, device: str) -> list[str]:
    """For frame-level models: FLOPs of one frame x the number of frames scored."""
    from hartutor.models.frame import FrameClassifier

    if not isinstance(model, FrameClassifier) or model.input_spec is None:
        return []
    spec = model.input_spec
    one = torch.zeros(1, spec.num_channels, 1, *spec.size, device=device)
    per_frame, _ = count_flops(model, one)
    indices = model.eval_frame_indices(spec.num_frames)
    frames = spec.num_frames if indices is None else len(indices)
    return [f"{per_frame / 1e9:.2f} GFLOPs per frame x {frames} frames"]


def measure_row(
    spec: RowSpec,
    *,
    preset: Literal["paper", "tiny"] = "paper",
    num_classes: int = 101,
    device: str = "meta",
) -> ModelRow:
    """Build one model and measure it; a model that cannot be built gives a row of "—"."""
    start = time.perf_counter()
    claims = POSTER_CLAIMS.get(spec.model, {})
    notes = [spec.description] if spec.description and preset == "paper" else []
    if "note" in claims:
        notes.append(f"poster: {claims['note']}")
    row = ModelRow(
        label=spec.label,
        model=spec.model,
        input=MISSING,
        params=None,
        gflops=None,
        poster_params=claims.get("params"),
        poster_top1=claims.get("top1"),
    )
    try:
        kwargs = {"preset": preset, "num_classes": num_classes, **spec.kwargs}
        model = _build(spec.model, kwargs, device)
        inputs = example_inputs(model, device=device)
        params = count_parameters(model)
        flops, per_module = count_flops(model, inputs)
        flow = inputs.get("flow") if isinstance(inputs, Mapping) else None
        if flow is None and tuple(getattr(model, "input_keys", ())) == ("flow",):
            flow = inputs
        notes += _per_frame_note(model, flops, device) + _stream_notes(model, per_module)
    except (KeyError, HartutorError, RuntimeError, ValueError, TypeError) as err:
        notes.append(f"not measured: {type(err).__name__}: {err}")
        return replace(row, notes=tuple(notes), error=str(err), seconds=time.perf_counter() - start)
    claim = row.poster_params
    if claim is not None and claim.number and preset == "paper":
        diff = (params - claim.number) / claim.number
        if abs(diff) > 0.05:
            notes.append(
                f"hartutor counts {params / 1e6:.1f}M vs the poster's {claim.text} "
                f"({diff:+.0%}, {num_classes} classes)"
            )
    return replace(
        row,
        input=_describe_input(model, inputs),
        params=params,
        gflops=flops / 1e9,
        notes=tuple(notes),
        seconds=time.perf_counter() - start,
        flow_fields=0 if flow is None else int(flow.shape[2]),
        flow_size=None if flow is None else (int(flow.shape[3]), int(flow.shape[4])),
    )


def parameter_table(
    *,
    preset: Literal["paper", "tiny"] = "paper",
    num_classes: int = 101,
    models: Sequence[RowSpec] = TABLE_MODELS,
    device: str = "meta",
) -> list[ModelRow]:
    """Measure every model of the timeline (``preset="tiny"``: the teaching versions)."""
    if preset not in ("paper", "tiny"):
        raise TableError(f"preset={preset!r} is not supported; use 'paper' or 'tiny'")
    from hartutor.validation import NUM_CLASSES

    NUM_CLASSES(num_classes, "num_classes")  # the rule `hartutor params --classes` applies
    return [
        measure_row(spec, preset=preset, num_classes=num_classes, device=device) for spec in models
    ]


def _format_params(n: int | None) -> str:
    if n is None:
        return MISSING
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}K"


def _format_gflops(g: float | None) -> str:
    if g is None:
        return MISSING
    return f"{g:.1f}" if g >= 1 else f"{g:.3f}"


def format_table(rows: Sequence[ModelRow], fmt: Literal["markdown", "text"] = "markdown") -> str:
    """The rows as a Markdown table or aligned plain text, notes and sources underneath."""
    if fmt not in ("markdown", "text"):
        raise TableError(f"fmt={fmt!r} is not supported; use 'markdown' or 'text'")
    header = [
        "Model",
        "Input per clip",
        "Params (hartutor)",
        "GFLOPs/clip (hartutor)",
        "Params (poster)",
        "UCF101 top-1 (poster)",
    ]
    body = [
        [
            r.label,
            r.input,
            _format_params(r.params),
            _format_gflops(r.gflops),
            str(r.poster_params) if r.poster_params else MISSING,
            str(r.poster_top1) if r.poster_top1 else MISSING,
        ]
        for r in rows
    ]
    if fmt == "markdown":
        lines = markdown_table(header, body).splitlines()
    else:
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
        lines.append("  ".join("-" * w for w in widths))
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
            for cells in body
        ]
    bullet = "- " if fmt == "markdown" else "  "
    lines.append("")
    for r in rows:
        if r.notes:
            lines.append(f"{bullet}{r.label}: " + "; ".join(r.notes))
    lines.append("")
    lines.append(
        "GFLOPs = 2 x multiply-adds (conv, linear, matmul, LSTM), batch 1, eval mode; "
        "params exclude buffers."
    )
    sources = sorted(
        {c.source for r in rows for c in (r.poster_params, r.poster_top1) if c is not None}
        | {c.source for claims in POSTER_CLAIMS.values() for c in claims.values()}
    )
    lines += [f"Poster figures: {s}." for s in sources]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the poster's Table 2
# Every row of the poster's Table 2 in its order, with what the poster prints, what the original
# paper published, what hartutor counts for its paper-size build, what its tiny preset measured on
# the synthetic set (a result record), and for flow models what the optical flow costs.


@dataclass(frozen=True)
class PaperFigure:
    """An original paper's own published UCF101 top-1, with its setting and where it was read.

    ``text`` is ``"not confirmed"`` when no source could be read to check a figure: the course
    does not quote a number it could not check.
    """

    text: str
    setting: str
    citation: str
    checked_at: str = ""  # where the figure was read (a URL), empty when not confirmed

    @property
    def confirmed(self) -> bool:
        return bool(self.checked_at) and self.text != NOT_CONFIRMED


NOT_CONFIRMED = "not confirmed"


@dataclass(frozen=True)
class PosterRow:
    """One row of the poster's Table 2, as printed, and the hartutor model that builds it."""

    number: int
    name: str  # the poster's name for the model
    params: Claim
    top1: Claim
    model: str  # hartutor registry name
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    record: str = ""  # result record of the tiny preset (hartutor/assets/results/<record>.json)
    paper: PaperFigure | None = None
    note: str = ""  # where the poster and the paper disagree, and the likely explanation


def _poster(text: str, number: float | None = None) -> Claim:
    return Claim(text, source=f"{POSTER_SOURCE}, Table 2", number=number)


_I3D_TABLE1 = (
    "the figure matches, to our reading, the parameter column of Carreira & Zisserman 2017 "
    "(Quo Vadis), Table 1, which counts their own re-implementations of the earlier "
    "architectures (not checked against the paper's text from here)"
)

#: The poster's Table 2, its eight rows in its order (the top-1 cells keep its asterisks, which
#: the poster does not explain).
POSTER_TABLE2: tuple[PosterRow, ...] = (
    PosterRow(
        1,
        "LSTM",
        _poster("9 Million", 9e6),
        _poster("68.2%*"),
        "lrcn",
        record="lrcn_tiny",
        paper=PaperFigure(
            NOT_CONFIRMED,
            "LRCN (CaffeNet features into an LSTM), RGB frames, ImageNet-pretrained CNN",
            "Donahue et al. 2015, Long-term Recurrent Convolutional Networks (CVPR)",
        ),
        note=(
            "LRCN's CaffeNet + LSTM is far larger than 9M (hartutor counts its paper build "
            "above); likely explanation: " + _I3D_TABLE1 + ", an LSTM on Inception-v1 features, "
            "while the top-1 is quoted from LRCN"
        ),
    ),
    PosterRow(
        2,
        "3D CNN",
        _poster("79 Million", 79e6),
        _poster("65.4%"),
        "karpathy",
        {"fusion": "slow"},
        record="karpathy_slow_tiny",
        paper=PaperFigure(
            "65.4%",
            "slow fusion pretrained on Sports-1M, top three layers retrained on UCF101, RGB "
            "only, mean of the three splits (its transfer table; 41.3% trained on UCF101 alone; "
            "the abstract rounds the comparison differently: 63.3% up from 43.9%)",
            "Karpathy et al. 2014, Large-scale Video Classification with CNNs (CVPR)",
            "https://cs.stanford.edu/people/karpathy/deepvideo/",
        ),
        note=(
            "the poster's 65.4% is the paper's own transfer result (41.3% to 65.4% is confirmed "
            "by a summary of the paper; the table itself was not read from here); 79M: "
            + _I3D_TABLE1
            + ", whose 3D-ConvNet is a C3D-style network, not Karpathy's (hartutor's slow "
            "fusion counts about 60M, notebook 01)"
        ),
    ),
    PosterRow(
        3,
        "Two Stream",
        _poster("12 Million", 12e6),
        _poster("86.9%*^"),
        "two_stream",
        record="two_stream_tiny",
        paper=PaperFigure(
            "88.0%",
            "two-stream (RGB + 10 stacked optical flow fields), ImageNet-pretrained spatial "
            "stream, scores fused by an SVM, mean of the 3 splits (fusion by averaging: "
            "not confirmed here)",
            "Simonyan & Zisserman 2014, Two-Stream Convolutional Networks (NeurIPS)",
            "https://beta.hyper.ai/en/papers/1406.2199",
        ),
        note=(
            "each CNN-M-2048 stream alone is about 90M parameters (hartutor counts both "
            "above); 12M is an Inception-v1-sized two-stream: " + _I3D_TABLE1 + ". It is not "
            "RGB only, as the column's title says: its flow stream needs optical flow"
        ),
    ),
    PosterRow(
        4,
        "C3D",
        _poster("73 Million", 73e6),
        _poster("82.3%"),
        "c3d",
        record="c3d_tiny",
        paper=PaperFigure(
            "85.2%",
            "RGB only, fc6 features of 3 C3D nets + linear SVM, Sports-1M pretrained "
            "(one net fine-tuned from Sports-1M: about 82%, as Tran et al. 2017 recall it)",
            "Tran et al. 2015, Learning Spatiotemporal Features with 3D ConvNets (ICCV), Table 1",
            "https://www.scribd.com/document/486343302 (Table 1); the 82%: "
            "https://docobook.com/convnet-architecture-search-for-spatiotemporal-feature-learn.html",
        ),
        note=(
            "the poster's 82.3% is a single-network figure, about the 82% Tran et al. 2017 "
            "quote; the parameter count depends on the classifier (487 Sports-1M classes or "
            "101) and on whether fc6/fc7 are counted"
        ),
    ),
    PosterRow(
        5,
        "Res3D",
        _poster("33 Million", 33e6),
        _poster("85.8%"),
        "res3d",
        record="res3d_tiny",
        paper=PaperFigure(
            "85.8%",
            "Res3D (3D ResNet-18) pretrained on Sports-1M, UCF101 test (split as listed by "
            "the benchmark page; not confirmed against the paper's table)",
            "Tran et al. 2017, ConvNet Architecture Search for Spatiotemporal Feature Learning",
            "https://www.wizwand.com/paper/68fa639c1e209131ce9ffa5d",
        ),
        note="33M is torchvision's r3d_18 at 101 classes (33,218,085)",
    ),
    PosterRow(
        6,
        "T3D",
        _poster("25 Million**", 25e6),
        _poster("71.4%"),
        "t3d",
        record="t3d_tiny",
        paper=PaperFigure(
            NOT_CONFIRMED,
            "T3D (3D DenseNet-121 + temporal transition layers), 32 RGB frames at 224x224; "
            "trained from scratch on UCF101, or transferred from a 2D ImageNet network and "
            "Kinetics",
            "Diba et al. 2017, Temporal 3D ConvNets (arXiv:1711.08200)",
        ),
        note=(
            "the poster's double asterisk is not explained on the poster; 71.4% would fit a "
            "network trained from scratch on UCF101 rather than T3D's pretrained results "
            "(not confirmed); 25M: hartutor's T3D counts 29.4M with temporal transition "
            "depths 1, 3, 6 and 25.3M with 1, 3, 4, the depths of the authors' own code "
            "(notebook 04), so the poster's figure likely counts the latter"
        ),
    ),
    PosterRow(
        7,
        "I3D",
        _poster("25 Million", 25e6),
        _poster("88.8%*^^"),
        "i3d",
        record="i3d_tiny",
        paper=PaperFigure(
            "98.0%",
            "Two-Stream I3D (RGB + optical flow), pretrained on ImageNet then Kinetics, "
            "fine-tuned (the abstract's figure; RGB-only figures not confirmed here)",
            "Carreira & Zisserman 2017, Quo Vadis, Action Recognition? (CVPR)",
            "https://www.arxiv-vanity.com/papers/1705.07750/",
        ),
        note=(
            "one I3D stream is about 12.4M parameters; 25M is two of them, RGB and flow "
            "(the Two-Stream I3D), while the poster's column is titled RGB and its fusion uses "
            "the RGB stream alone"
        ),
    ),
    PosterRow(
        8,
        "Ours",
        _poster("31 Million", 31e6),
        _poster("87.5%"),
        "i3d_xception_fusion",
        record="i3d_xception_fusion_tiny",
        paper=PaperFigure(
            "87.5%",
            "the poster's own result: Kinetics-600 I3D + ImageNet Xception, softmax mean",
            "the poster itself (no separate paper)",
            "the poster's Table 2",
        ),
        note=(
            "I3D (12.4M) + Xception (21.0M) is 33.4M at 101 classes; no usual way of counting "
            "gives 31M (notebook 07)"
        ),
    ),
)

#: hartutor's models after the poster's eight rows (a model not in this installation's registry
#: shows a row of dashes that says so).
EXTRA_ROWS: tuple[RowSpec, ...] = (
    *(spec for spec in TABLE_MODELS if spec.model in ("single_frame", "xception")),
    RowSpec("TSN", "tsn", {}, "Wang et al. 2016: segment sampling and consensus"),
    RowSpec("Conv. two-stream fusion", "conv_fusion", {}, "Feichtenhofer et al. 2016"),
)


@dataclass(frozen=True)
class FlowRate:
    """A measured optical-flow speed: ``fields_per_second`` flow fields of ``size`` (H, W)."""

    method: str
    size: tuple[int, int]
    fields_per_second: float

    def __post_init__(self) -> None:
        if not (self.fields_per_second > 0 and math.isfinite(self.fields_per_second)):
            raise TableError(f"fields_per_second must be a positive number, got {self}")

    def cost_note(self, fields: int, size: tuple[int, int] | None) -> str:
        """What ``fields`` flow fields of one clip cost at this rate, in words."""
        seconds = fields / self.fields_per_second
        scale = ""
        if size is not None and tuple(size) != tuple(self.size):
            scale = (
                f" (measured at {self.size[0]}x{self.size[1]}, the clip's are {size[0]}x{size[1]})"
            )
        return (
            f"{fields} {self.method} flow fields per clip at {self.fields_per_second:.3g} fields/s "
            f"measured = {seconds:.3g} s of flow per clip, at most {1 / seconds:.3g} clips/s "
            f"before the network runs{scale}"
        )


def flow_rate(method: str = "tvl1", size: tuple[int, int] = (224, 224), pairs: int = 4) -> FlowRate:
    """Measure optical flow's speed here with :func:`hartutor.flow.measure_flow_rate`."""
    from hartutor.flow import measure_flow_rate

    size = (int(size[0]), int(size[1]))
    return FlowRate(method, size, float(measure_flow_rate(method, size, pairs)))


@dataclass(frozen=True)
class Table2Row:
    """One row of Table 2: the poster's figures, the paper's, hartutor's measurements."""

    measured: ModelRow
    poster: PosterRow | None = None  # None: one of hartutor's extra models
    tiny: Any = None  # hartutor.records.EvaluationRecord of the tiny preset, or None
    tiny_note: str = ""
    flow_note: str = ""

    @property
    def name(self) -> str:
        return self.poster.name if self.poster is not None else self.measured.label


def record_command(record: str) -> str:
    """The command that writes the result record ``record`` from its shipped checkpoint."""
    return (
        f"hartutor --threads 1 evaluate hartutor/assets/checkpoints/{record}.pt --clips 520 "
        f"--diagnostics --json hartutor/assets/results/{record}.json --quiet"
    )


def _tiny(record: str, model: str, records: Mapping[str, Any]) -> tuple[Any, str]:
    found = records.get(record)
    if found is None:
        return None, f"no result record {record}.json: `{record_command(record)}` makes it"
    if found.model != model:
        return None, f"record {record}.json is of model {found.model!r}, not {model!r}"
    return found, f"{found.clips} synthetic clips, seed {found.seed}, {found.measured}"


def poster_table2(
    *,
    num_classes: int = 101,
    flow_rate: FlowRate | None = None,
    records: Mapping[str, Any] | None = None,
    extras: Sequence[RowSpec] = EXTRA_ROWS,
    device: str = "meta",
) -> list[Table2Row]:
    """The poster's Table 2 completed: its eight rows in order, then ``extras``.

    Each model is built at its paper size on ``device`` and measured (:func:`measure_row`);
    ``records`` (default :func:`hartutor.records.read_records`) give the tiny presets' top-1 on
    the synthetic set; ``flow_rate`` (measured optical-flow speed) prices the flow of every row
    whose model takes flow. A model missing from the registry gives a row of dashes that says so.
    """
    from hartutor.validation import NUM_CLASSES

    NUM_CLASSES(num_classes, "num_classes")
    if records is None:
        from hartutor.records import read_records

        records = read_records()
    rows: list[Table2Row] = []
    specs = [(p, RowSpec(p.name, p.model, p.kwargs)) for p in POSTER_TABLE2]
    specs += [(None, spec) for spec in extras]
    from hartutor.models import list_models

    known = set(list_models())
    for poster, spec in specs:
        if spec.model in known:
            measured = measure_row(spec, num_classes=num_classes, device=device)
        else:  # another branch of the course brings it; the row says so and waits
            error = f"model {spec.model!r} is not in this installation's registry"
            measured = ModelRow(spec.label, spec.model, MISSING, None, None, error=error)
        if poster is not None:
            measured = replace(measured, poster_params=poster.params, poster_top1=poster.top1)
        record = poster.record if poster is not None else f"{spec.model}_tiny"
        tiny, tiny_note = _tiny(record, spec.model, records)
        flow_note = ""
        if measured.flow_fields:
            flow_note = (
                flow_rate.cost_note(measured.flow_fields, measured.flow_size)
                if flow_rate is not None
                else f"{measured.flow_fields} optical flow fields per clip (speed not measured: "
                "pass flow_rate)"
            )
        rows.append(Table2Row(measured, poster, tiny, tiny_note, flow_note))
    return rows


def _paper_cell(paper: PaperFigure | None, ref: int) -> str:
    if paper is None:
        return MISSING
    return f"{paper.text} [{ref}]"


def table2_markdown(rows: Sequence[Table2Row]) -> str:
    """Table 2 as Markdown, with the papers' settings and citations, the disagreements, the
    flow costs and the measurement notes underneath."""
    header = [
        "#",
        "Model (poster)",
        "hartutor model",
        "Params (poster)",
        "UCF101 top-1 (poster)",
        "UCF101 top-1 (paper)",
        "Params (hartutor, paper size)",
        "GFLOPs/clip",
        "Top-1, tiny preset (synthetic)",
    ]
    body, notes = [], []
    for i, row in enumerate(rows, 1):
        m, p = row.measured, row.poster
        tiny = f"{row.tiny.top1:.1%}" if row.tiny is not None else MISSING
        body.append(
            [
                str(p.number) if p is not None else "+",
                row.name,
                m.model + ("" if m.error is None else " (not built)"),
                str(p.params) if p is not None else MISSING,
                str(p.top1) if p is not None else MISSING,
                _paper_cell(p.paper if p is not None else None, i),
                _format_params(m.params),
                _format_gflops(m.gflops),
                tiny,
            ]
        )
        parts = []
        if p is not None and p.paper is not None:
            where = f"read at {p.paper.checked_at}" if p.paper.checked_at else "no source read"
            parts.append(f"[{i}] {p.paper.citation}: {p.paper.setting} ({where})")
        if m.error is not None:
            parts.append(f"not measured: {m.error}")
        if p is not None and p.note:
            parts.append(f"poster vs paper: {p.note}")
        if m.params is not None and p is not None and p.params.number:
            diff = (m.params - p.params.number) / p.params.number
            parts.append(
                f"hartutor counts {m.params / 1e6:.1f}M against the poster's {p.params} "
                f"({diff:+.0%}, {m.input})"
            )
        if row.flow_note:
            parts.append(f"optical flow: {row.flow_note}")
        parts.append(f"tiny preset: {row.tiny_note}")
        notes.append(f"- **{row.name}**: " + "; ".join(parts))
    lines = [markdown_table(header, body), "", *notes, ""]
    lines.append(
        f"Poster columns: {POSTER_SOURCE}, Table 2, as printed (its asterisks are not explained "
        "there). Paper column: the original paper's own figure, with its setting; "
        f"'{NOT_CONFIRMED}' where no source could be read to check one. hartutor columns: "
        "parameters and GFLOPs (2 x multiply-adds, batch 1) of the paper-size build counted on "
        "PyTorch's meta device; tiny top-1 from the result records in hartutor/assets/results "
        "(13 synthetic classes: not comparable with UCF101)."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- lessons 04-06
# Where the parameters and FLOPs of one network sit: single layers, per-layer and per-block
# breakdowns, 2D networks against their inflated 3D twins, a TF checkpoint against a model.


@dataclass(frozen=True)
class LayerCost:
    """Parameters, FLOPs (2 per multiply-add) and output shape of one layer or group."""

    name: str
    params: int
    flops: int
    output_shape: tuple[int, ...] | None = None
    members: tuple[str, ...] = ()

    @property
    def gflops(self) -> float:
        return self.flops / 1e9


def _device_of(module: nn.Module) -> torch.device:
    tensor = next(module.parameters(), None)
    if tensor is None:
        tensor = next(module.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def layer_cost(layer: nn.Module, input_shape: Sequence[int], *, name: str = "") -> LayerCost:
    """Parameters, FLOPs and output shape of ``layer`` on one input of ``input_shape``.

    ``input_shape`` includes the batch dimension, e.g. ``(1, 64, 16, 56, 56)`` for a Conv3d.
    The input is zeros on the layer's device: build the layer under ``torch.device("meta")``
    to count a full-size layer without memory or arithmetic.
    """
    x = torch.zeros(tuple(int(n) for n in input_shape), device=_device_of(layer))
    shapes: list[tuple[int, ...]] = []
    handle = layer.register_forward_hook(lambda m, a, out: shapes.append(tuple(out.shape)))
    try:
        flops, _ = count_flops(layer, x)
    finally:
        handle.remove()
    return LayerCost(
        name or type(layer).__name__,
        count_parameters(layer),
        flops,
        shapes[-1],
        (name,) if name else (),
    )


def _unique_params(modules: Sequence[nn.Module]) -> int:
    seen: dict[int, int] = {}
    for module in modules:
        for p in module.parameters():
            seen[id(p)] = p.numel()
    return sum(seen.values())


def parameter_breakdown(
    model: nn.Module,
    inputs: torch.Tensor | Mapping[str, torch.Tensor] | None = None,
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> list[LayerCost]:
    """Parameters, FLOPs and output shape per layer (or per named group of layers), in the
    order the forward pass calls them.

    Without ``groups``: one row per direct child of ``model`` called exactly once (shared
    activation or dropout modules, called several times and without parameters, are left
    out). With ``groups``: one row per ``{label: [qualified module names]}`` entry; its
    output shape is that of the member called last. ``inputs`` default to
    :func:`example_inputs` (``model.input_spec``) on the model's device. Parameters of
    ``model`` that no row holds are reported in a final ``"(other)"`` row, so the rows
    always add up to :func:`count_parameters`.
    """
    if inputs is None:
        inputs = example_inputs(model, device=_device_of(model))
    if groups is None:
        candidates = dict(model.named_children())
    else:
        candidates = {}
        for label, names in groups.items():
            for qualified in names:
                try:
                    candidates[qualified] = model.get_submodule(qualified)
                except AttributeError as err:
                    raise TableError(
                        f"group {label!r}: {type(model).__name__} has no submodule {qualified!r}"
                    ) from err
    calls: dict[str, list[tuple[int, ...] | None]] = {name: [] for name in candidates}
    order: list[str] = []

    def hook(name: str) -> Callable[[nn.Module, Any, Any], None]:
        def record(module: nn.Module, args: Any, output: Any) -> None:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
            calls[name].append(shape)
            order.append(name)

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in candidates.items()]
    try:
        _, per_module = count_flops(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    rows: list[LayerCost] = []
    if groups is None:
        for name in dict.fromkeys(order):
            if len(calls[name]) != 1:
                continue
            rows.append(
                LayerCost(
                    name,
                    count_parameters(candidates[name]),
                    per_module.get(name, 0),
                    calls[name][0],
                    (name,),
                )
            )
    else:
        position = {name: i for i, name in enumerate(order)}  # last call of each module
        for label, names in groups.items():
            called = [n for n in names if n in position]
            last = max(called, key=position.__getitem__) if called else None
            rows.append(
                LayerCost(
                    label,
                    _unique_params([candidates[n] for n in names]),
                    sum(per_module.get(n, 0) for n in names),
                    calls[last][-1] if last is not None else None,
                    tuple(names),
                )
            )
    held = _unique_params([candidates[n] for row in rows for n in row.members])
    other = count_parameters(model) - held
    if other:
        rows.append(LayerCost("(other)", other, 0, None, ()))
    return rows


def breakdown_markdown(rows: Sequence[LayerCost], *, title: str = "layer") -> str:
    """A Markdown table of :func:`parameter_breakdown` or :func:`layer_cost` rows, with each
    row's share of the total parameters and FLOPs and a total line."""
    params = sum(r.params for r in rows)
    flops = sum(r.flops for r in rows)
    body: list[tuple[object, ...]] = [
        (
            r.name,
            "x".join(str(n) for n in r.output_shape[1:]) if r.output_shape else MISSING,
            f"{r.params:,}",
            f"{r.params / max(params, 1):.1%}",
            f"{r.gflops:.3f}",
            f"{r.flops / max(flops, 1):.1%}",
        )
        for r in rows
    ]
    body.append(("**total**", "", f"**{params:,}**", "100%", f"**{flops / 1e9:.3f}**", "100%"))
    header = (title, "output", "params", "% params", "GFLOPs", "% FLOPs")
    return markdown_table(header, body)


def breakdown_figure(rows: Sequence[LayerCost], *, title: str = "") -> Any:
    """Two bar charts side by side: each row's share of the parameters and of the FLOPs.

    Returns a Matplotlib ``Figure`` (a notebook cell returning it displays it).
    """
    from matplotlib.figure import Figure

    names = [r.name for r in rows]
    params = sum(r.params for r in rows) or 1
    flops = sum(r.flops for r in rows) or 1
    fig = Figure(figsize=(10, 0.3 * len(rows) + 1.4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, values, total, label, colour in (
        (axes[0], [r.params for r in rows], params, "share of parameters", "tab:blue"),
        (axes[1], [r.flops for r in rows], flops, "share of FLOPs", "tab:orange"),
    ):
        shares = [100 * v / total for v in values]
        ax.barh(range(len(rows)), shares, color=colour)
        ax.set_xlabel(f"{label} (%)")
        ax.set_xlim(0, 105)
        for y, share in enumerate(shares):
            ax.text(share + 1, y, f"{share:.1f}", va="center", fontsize=8)
    axes[0].set_yticks(range(len(rows)), names)
    axes[0].invert_yaxis()
    if title:
        fig.suptitle(title)
    return fig


def xception_flows(model: nn.Module) -> dict[str, list[str]]:
    """Xception's entry, middle and exit flows (and classifier), read from the structure.

    The middle flow is the run of residual blocks with an identity shortcut (timm's
    ``Block`` with ``skip=None``: same width, stride 1); everything before it is the entry
    flow, everything after it up to the classifier is the exit flow. Works on timm's
    ``legacy_xception`` and on hartutor's :class:`~hartutor.models.xception.MiniXception`
    (whose ``blocks`` sequence is expanded). Returns ``{flow: [qualified module names]}``
    for :func:`parameter_breakdown`'s ``groups``.
    """
    from timm.models.xception import Block

    units: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential) and any(isinstance(m, Block) for m in child):
            units += [(f"{name}.{i}", m) for i, m in child.named_children()]
        else:
            units.append((name, child))
    middle = [i for i, (_, m) in enumerate(units) if isinstance(m, Block) and m.skip is None]
    if not middle:
        raise TableError(
            f"{type(model).__name__} has no Xception middle flow (timm Blocks with an "
            "identity shortcut); expected timm's legacy_xception or hartutor's MiniXception"
        )
    classifier = {"global_pool", "head_drop", "head", "fc"}
    flows: dict[str, list[str]] = {
        "entry flow": [],
        "middle flow": [],
        "exit flow": [],
        "classifier": [],
    }
    for i, (name, _) in enumerate(units):
        if name in classifier:
            flows["classifier"].append(name)
        elif i < middle[0]:
            flows["entry flow"].append(name)
        elif i <= middle[-1]:
            flows["middle flow"].append(name)
        else:
            flows["exit flow"].append(name)
    return flows


@dataclass(frozen=True)
class InflationRow:
    """A 2D network and its inflated 3D twin, counted."""

    label: str
    params_2d: int
    params_3d: int
    spatial_conv_params_2d: int  # in k x k convolutions with k > 1: what inflation multiplies

    @property
    def ratio(self) -> float:
        return self.params_3d / self.params_2d

    @property
    def spatial_share(self) -> float:
        """Share of the 2D network's parameters that inflation multiplies."""
        return self.spatial_conv_params_2d / self.params_2d


def inflation_table(models2d: Mapping[str, nn.Module], **inflate_kwargs: Any) -> list[InflationRow]:
    """Count each 2D network and its twin from :func:`~hartutor.models.inflate.inflate_model`.

    ``inflate_kwargs`` go to ``inflate_model`` (default: I3D's recipe, every k x k
    convolution becomes k x k x k). Build the 2D networks under ``torch.device("meta")`` to
    count full-size ones without memory.
    """
    from hartutor.models.inflate import inflate_model

    rows = []
    for label, model2d in models2d.items():
        model3d = inflate_model(model2d, **inflate_kwargs)
        spatial = sum(
            m.weight.numel()
            for m in model2d.modules()
            if isinstance(m, nn.Conv2d) and max(m.kernel_size) > 1
        )
        rows.append(
            InflationRow(label, count_parameters(model2d), count_parameters(model3d), spatial)
        )
    return rows


def inflation_markdown(rows: Sequence[InflationRow]) -> str:
    """A Markdown table of :func:`inflation_table` rows."""
    header = ("2D network", "params 2D", "in k x k convs (k > 1)", "params inflated 3D", "3D / 2D")
    body = [
        (
            r.label,
            _format_params(r.params_2d),
            f"{r.spatial_share:.0%}",
            _format_params(r.params_3d),
            f"x{r.ratio:.2f}",
        )
        for r in rows
    ]
    return markdown_table(header, body)


def __getattr__(name: str) -> object:
    """``match_tf_checkpoint`` and its result types moved to :mod:`hartutor.weights.matching`
    (next to the TF checkpoint reader); the old names still work from here."""
    if name in ("CheckpointMatch", "VariableMatch", "match_tf_checkpoint"):
        from hartutor.weights import matching

        return getattr(matching, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
