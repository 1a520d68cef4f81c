"""The parameter / FLOPs table: counting conventions, poster claims, formatting."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import hartutor  # noqa: F401
from hartutor.models import build_model
from hartutor.params import (
    MISSING,
    POSTER_CLAIMS,
    Claim,
    RowSpec,
    TableError,
    count_flops,
    count_parameters,
    example_inputs,
    format_table,
    parameter_table,
)


def test_flops_are_two_per_multiply_add() -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    flops, _ = count_flops(conv, torch.zeros(1, 3, 10, 10))
    assert flops == 2 * (10 * 10 * 8) * (3 * 3 * 3)
    linear = nn.Linear(20, 7)
    assert count_flops(linear, torch.zeros(5, 20))[0] == 2 * 5 * 20 * 7


def test_meta_and_real_models_count_the_same() -> None:
    real = build_model("two_stream", preset="tiny", num_classes=10)
    with torch.device("meta"):
        meta = build_model("two_stream", preset="tiny", num_classes=10)
    assert count_parameters(real) == count_parameters(meta)
    real_flops, _ = count_flops(real, example_inputs(real, device="cpu"))
    meta_flops, _ = count_flops(meta, example_inputs(meta))
    assert real_flops == meta_flops > 0
    assert real.training  # count_flops restores the mode


def test_lstm_flops_are_counted_on_meta() -> None:
    """On meta the LSTM decomposes into matmuls (CPU's fused kernel is invisible)."""
    with torch.device("meta"):
        model = build_model("lrcn", preset="tiny", num_classes=10)
    total, per_module = count_flops(model, example_inputs(model))
    steps, hidden, features = 16, model.lstm.hidden_size, model.backbone.num_features
    assert per_module["lstm"] == 2 * 4 * hidden * (features + hidden) * steps
    assert total == per_module[""] > per_module["lstm"]


def test_example_inputs_follow_the_batch_convention() -> None:
    with torch.device("meta"):
        two_stream = build_model("two_stream", preset="tiny", num_classes=3)
        temporal = build_model("two_stream_temporal", preset="tiny", num_classes=3)
    inputs = example_inputs(two_stream)
    assert inputs["video"].shape == (1, 3, 16, 64, 64)
    assert inputs["flow"].shape == (1, 2, 15, 64, 64)
    assert example_inputs(temporal).shape == (1, 2, 15, 64, 64)


def test_tiny_table_matches_direct_counts() -> None:
    rows = parameter_table(preset="tiny", num_classes=10)
    by_model = {r.model: r for r in rows}
    assert list(by_model) == [
        "single_frame",
        "lrcn",
        "two_stream",
        "c3d",
        "i3d",
        "xception",
        "i3d_xception_fusion",
    ]
    for name in ("single_frame", "xception", "two_stream"):
        model = build_model(name, preset="tiny", num_classes=10)
        assert by_model[name].params == count_parameters(model)
        assert by_model[name].gflops == pytest.approx(
            count_flops(model, example_inputs(model, device="cpu"))[0] / 1e9
        )
    fusion = by_model["i3d_xception_fusion"]
    assert fusion.params == by_model["i3d"].params + by_model["xception"].params


def test_paper_table_shows_poster_claims_beside_measurements() -> None:
    rows = parameter_table(num_classes=101)
    by_model = {r.model: r for r in rows}
    xception = by_model["xception"]
    assert xception.params == 22_855_952 - 2049 * 1000 + 2049 * 101
    assert xception.input.startswith("8x299x299")
    # Xception's FLOPs are 8 x one frame's.
    assert any("x 8 frames" in note for note in xception.notes)
    fusion = by_model["i3d_xception_fusion"]
    assert fusion.error is None
    assert fusion.poster_params == POSTER_CLAIMS["i3d_xception_fusion"]["params"]
    assert fusion.gflops == pytest.approx(by_model["i3d"].gflops + xception.gflops, rel=1e-6)
    text = format_table(rows, fmt="markdown")
    assert "~31M" in text and "87.5% (UCF101)" in text
    assert f"{fusion.params / 1e6:.1f}M" in text  # both numbers shown
    assert "edge friendly" in text and POSTER_CLAIMS["i3d_xception_fusion"]["params"].source
    single = text.splitlines()[2]
    assert single.startswith("| Single-frame CNN") and single.count(MISSING) == 2


def test_unbuildable_model_gives_a_row_of_dashes() -> None:
    rows = parameter_table(
        preset="tiny", models=[RowSpec("Nothing", "no_such_model")], num_classes=3
    )
    assert rows[0].params is None and rows[0].error
    text = format_table(rows, fmt="text")
    assert "Nothing" in text and "not measured" in text
    assert text.splitlines()[2].split().count(MISSING) >= 4


def test_format_errors_and_claim_text() -> None:
    with pytest.raises(TableError, match="fmt"):
        format_table([], fmt="html")  # type: ignore[arg-type]
    with pytest.raises(TableError, match="preset"):
        parameter_table(preset="huge")  # type: ignore[arg-type]
    assert str(Claim("~31M", number=31e6)) == "~31M"
