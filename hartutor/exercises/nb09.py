"""Checkers for notebook 09 (toward the edge)."""

from __future__ import annotations

from pathlib import Path

import torch

from hartutor.course import exercise
from hartutor.exercises._common import as_number


@exercise(
    "09-buffer-bytes",
    "Give state_dict_bytes(paper_fusion, 'float32') - 4 x its parameter count, in bytes.",
)
def _buffers(answer: object, *, model: torch.nn.Module) -> str | None:
    from hartutor.edge import state_dict_bytes

    value = as_number(answer, "The difference")
    if isinstance(value, str):
        return value
    params = sum(p.numel() for p in model.parameters())
    truth = state_dict_bytes(model, "float32") - 4 * params
    if value == truth:
        return None
    buffers = sum(b.numel() for b in model.buffers())
    if value == 4 * buffers:
        return (
            "Close: not every buffer is a float. num_batches_tracked counters are int64 (8 bytes)."
        )
    if value == sum(b.numel() for b in model.buffers()):
        return "That is a count of values; the question asks for bytes."
    return (
        "Compute it: state_dict_bytes(paper_fusion, 'float32') minus 4 times the parameter count."
    )


def per_tensor_losses(model: torch.nn.Module) -> dict[str, float]:
    """For each int8-stored weight: per-tensor mean error / per-channel mean error."""
    from hartutor.edge import SCALE_SUFFIX, dequantize_weights_int8, quantize_weights_int8

    originals = model.state_dict()
    restored = {
        pc: dequantize_weights_int8(quantize_weights_int8(model, per_channel=pc))
        for pc in (True, False)
    }
    keys = [
        k.removesuffix(SCALE_SUFFIX)
        for k in quantize_weights_int8(model)
        if k.endswith(SCALE_SUFFIX)
    ]
    ratios = {}
    for key in keys:
        channel, tensor = (
            (restored[pc][key] - originals[key]).abs().mean().item() for pc in (True, False)
        )
        ratios[key] = tensor / max(channel, 1e-12)
    return ratios


@exercise(
    "09-worst-per-tensor",
    "Give the name of the weight in which one scale per tensor loses most against one scale per "
    "output channel (largest ratio of their mean errors).",
)
def _worst(answer: object, *, model: torch.nn.Module) -> str | None:
    if not isinstance(answer, str):
        return "Give the weight's name, a key of the state dict such as 'streams.i3d....weight'."
    ratios = per_tensor_losses(model)
    if answer not in ratios:
        return f"{answer!r} is not one of the {len(ratios)} weights stored as int8."
    worst = max(ratios, key=ratios.__getitem__)
    if answer == worst:
        return None
    return (
        f"Per tensor loses {ratios[answer]:.1f}x there; another weight loses more. Compare the "
        "ratio of the mean errors (per tensor / per channel) over every weight."
    )


@exercise(
    "09-dynamic-batch",
    "Export the I3D stream with a free batch size and give the path of the .pt2 file.",
)
def _dynamic(answer: object, *, model: torch.nn.Module, clip: torch.Tensor) -> str | None:
    if not isinstance(answer, str | Path) or not Path(answer).is_file():
        return "Give the path of the exported file (export_and_verify(...).path)."
    program = torch.export.load(Path(answer)).module()
    four = clip.expand(4, *clip.shape[1:]) + 0.01 * torch.randn(
        4, *clip.shape[1:], generator=torch.Generator().manual_seed(0)
    )
    try:
        with torch.no_grad():
            out = program(four)
    except Exception as error:  # the guard of a program traced with a fixed batch
        return (
            f"The program refuses 4 clips ({type(error).__name__}); export with dynamic_batch=True."
        )
    with torch.no_grad():
        expected = model.eval()(four)
    if tuple(out.shape) != tuple(expected.shape):
        return (
            f"The program returns {tuple(out.shape)}, the I3D stream "
            f"{tuple(expected.shape)}: export the I3D stream itself."
        )
    difference = float((out - expected).abs().max())
    if difference > 1e-3:
        return (
            f"The program's outputs differ from the I3D stream's by {difference:.1e}: "
            "export the I3D stream itself."
        )
    return None
