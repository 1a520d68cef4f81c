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


# ------------------------------------------------------------------ the poster's Table 2, complete

from hartutor.params import (  # noqa: E402
    EXTRA_ROWS,
    NOT_CONFIRMED,
    POSTER_SOURCE,
    POSTER_TABLE2,
    FlowRate,
    ModelRow,
    poster_table2,
    record_command,
    table2_markdown,
)


def test_table2_keeps_the_posters_eight_rows_in_order_as_printed() -> None:
    assert [r.name for r in POSTER_TABLE2] == [
        "LSTM",
        "3D CNN",
        "Two Stream",
        "C3D",
        "Res3D",
        "T3D",
        "I3D",
        "Ours",
    ]
    assert [r.number for r in POSTER_TABLE2] == list(range(1, 9))
    # the cells as printed, asterisks included
    assert [str(r.params) for r in POSTER_TABLE2][5] == "25 Million**"
    assert [str(r.top1) for r in POSTER_TABLE2][6] == "88.8%*^^"
    assert all(
        "A general overview of SpatioTemporal Fusion" in r.params.source for r in POSTER_TABLE2
    )
    assert "Bose" in POSTER_SOURCE and "the poster" not in POSTER_SOURCE.lower()[:10]


def test_table2_claims_are_the_posters_own_text() -> None:
    from pathlib import Path

    poster = Path(__file__).resolve().parents[1].parent / "shared" / "poster" / "poster.txt"
    if not poster.is_file():
        pytest.skip(f"the poster's text {poster} is absent (clone with ../shared beside it)")
    text = poster.read_text(encoding="utf-8")
    for row in POSTER_TABLE2:
        line = f"| {row.number}. | {row.name} | {row.params} | {row.top1} |"
        assert line in text, line


@pytest.mark.parametrize("row", POSTER_TABLE2, ids=lambda r: r.name)
def test_every_poster_row_has_a_hartutor_model(row) -> None:
    """Fails for a poster row no registered model builds."""
    from hartutor.models import list_models

    assert row.model in list_models()
    with torch.device("meta"):
        model = build_model(row.model, num_classes=101, **row.kwargs)
    assert count_parameters(model) > 0


def test_paper_figures_are_cited_and_unconfirmed_ones_say_so() -> None:
    for row in POSTER_TABLE2:
        paper = row.paper
        assert paper is not None and paper.citation and paper.setting, row.name
        if paper.text == NOT_CONFIRMED:
            assert not paper.confirmed and not paper.checked_at
        else:
            assert paper.confirmed and paper.text.endswith("%"), row.name
    # the disagreements the course explains
    by_name = {r.name: r for r in POSTER_TABLE2}
    assert "12.4M" in by_name["I3D"].note and "two of them" in by_name["I3D"].note
    assert "90M" in by_name["Two Stream"].note
    assert "Table 1" in by_name["LSTM"].note and "Table 1" in by_name["3D CNN"].note


def _record(tmp_path, name: str, model: str, top1: float):
    from hartutor.records import new_record, write_record

    record = new_record(
        model=model,
        kwargs={"preset": "tiny", "num_classes": 13},
        checkpoint=f"{name}.pt",
        checkpoint_sha256="0" * 64,
        data="synthetic",
        clips=26,
        seed=0,
        top1=top1,
        top5=1.0,
        per_class={},
    )
    write_record(tmp_path / f"{name}.json", record)


def test_table2_reads_tiny_top1_from_records_and_names_the_missing_ones(tmp_path) -> None:
    from hartutor.records import read_records

    _record(tmp_path, "c3d_tiny", "c3d", 0.625)
    _record(tmp_path, "i3d_tiny", "lrcn", 0.5)  # a record of the wrong model is not used
    rows = poster_table2(records=read_records(tmp_path), extras=())
    by_model = {r.measured.model: r for r in rows}
    assert len(rows) == len(POSTER_TABLE2)
    assert by_model["c3d"].tiny.top1 == 0.625
    assert by_model["i3d"].tiny is None and "'lrcn'" in by_model["i3d"].tiny_note
    assert by_model["lrcn"].tiny is None
    assert record_command("lrcn_tiny") in by_model["lrcn"].tiny_note
    text = table2_markdown(rows)
    c3d_line = next(line for line in text.splitlines() if line.startswith("| 4 | C3D |"))
    assert "| 62.5% |" in c3d_line and "| 82.3% |" in c3d_line and "| 73 Million |" in c3d_line
    lstm_line = next(line for line in text.splitlines() if line.startswith("| 1 | LSTM |"))
    assert lstm_line.endswith(f"| {MISSING} |")
    assert f"`{record_command('lrcn_tiny')}` makes it" in text


def test_shipped_records_fill_the_tiny_column_of_the_existing_models() -> None:
    from hartutor.records import read_records

    records = read_records()
    rows = poster_table2(extras=EXTRA_ROWS[:2])
    for row in rows:
        name = row.poster.record if row.poster else f"{row.measured.model}_tiny"
        if name in records:
            assert row.tiny is not None and row.tiny.top1 == records[name].top1
    for name in ("single_frame", "lrcn", "two_stream", "c3d", "i3d", "xception"):
        assert f"{name}_tiny" in records, name
    assert "i3d_xception_fusion_tiny" in records


def test_a_model_missing_from_the_registry_gives_a_row_that_says_so() -> None:
    rows = poster_table2(records={}, extras=[RowSpec("Nothing yet", "no_such_model")])
    last = rows[-1]
    assert isinstance(last.measured, ModelRow) and last.measured.params is None
    assert "not in this installation's registry" in last.measured.error
    assert "| + | Nothing yet | no_such_model (not built) |" in table2_markdown(rows)


def test_two_stream_rows_carry_the_cost_of_their_flow() -> None:
    """The rate is measured here with hartutor.flow's own estimator on a small clip."""
    import time

    import numpy as np

    from hartutor.flow import available_methods, estimate_flow

    method = available_methods()[0]
    frames = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    start = time.perf_counter()
    fields = estimate_flow(frames, method).shape[1]
    rate = FlowRate(method, (32, 32), fields / max(time.perf_counter() - start, 1e-6))
    rows = poster_table2(records={}, flow_rate=rate, extras=())
    two_stream = next(r for r in rows if r.measured.model == "two_stream")
    assert two_stream.measured.flow_fields == 10 and two_stream.measured.flow_size == (224, 224)
    seconds = 10 / rate.fields_per_second
    assert f"= {seconds:.3g} s of flow per clip" in two_stream.flow_note
    assert "measured at 32x32, the clip's are 224x224" in two_stream.flow_note
    assert all(not r.flow_note for r in rows if r.measured.model in ("c3d", "i3d"))
    assert "optical flow: 10" in table2_markdown(rows)
    unpriced = poster_table2(records={}, extras=())
    assert "speed not measured" in next(
        r.flow_note for r in unpriced if r.measured.model == "two_stream"
    )
    with pytest.raises(TableError, match="positive"):
        FlowRate("tvl1", (8, 8), 0.0)


def test_flow_rate_uses_hartutor_flows_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    import hartutor.flow
    from hartutor.errors import HartutorError
    from hartutor.params import flow_rate

    calls = []

    def measured(method: str, size: tuple[int, int], pairs: int = 4) -> float:
        calls.append((method, size, pairs))
        return 2.5

    monkeypatch.setattr(hartutor.flow, "measure_flow_rate", measured, raising=False)
    rate = flow_rate("tvl1", (112, 112), pairs=3)
    assert rate == FlowRate("tvl1", (112, 112), 2.5) and calls == [("tvl1", (112, 112), 3)]
    with pytest.raises(HartutorError, match="num_classes"):
        poster_table2(num_classes=0, records={})
