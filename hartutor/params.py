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
    "POSTER_CLAIMS",
    "POSTER_SOURCE",
    "TABLE_MODELS",
    "Claim",
    "InflationRow",
    "LayerCost",
    "ModelRow",
    "RowSpec",
    "breakdown_figure",
    "breakdown_markdown",
    "count_flops",
    "count_parameters",
    "example_inputs",
    "format_table",
    "inflation_markdown",
    "inflation_table",
    "layer_cost",
    "measure_row",
    "parameter_breakdown",
    "parameter_table",
    "xception_flows",
]

MISSING = "—"
POSTER_SOURCE = (
    "the I3D + Xception late-fusion poster (Table 2 and text) that hartutor's course follows"
)


@dataclass(frozen=True)
class Claim:
    """A figure stated by a source, kept verbatim; ``number`` is its value for comparisons."""

    text: str
    source: str = POSTER_SOURCE
    number: float | None = None

    def __str__(self) -> str:
        return self.text


# What the poster states, by hartutor model name. Nothing else is known about its Table 2.
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
