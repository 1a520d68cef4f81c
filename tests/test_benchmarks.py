"""The benchmarks' arithmetic and results-file writer (no timing is tested here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import report
from benchmarks._common import Timing, free_cores_threshold, gflops_per_second
from benchmarks.bench_models import op_kind


def test_gflops_and_timing_arithmetic() -> None:
    assert gflops_per_second(222.3e9, 0.5) == pytest.approx(444.6)
    with pytest.raises(ValueError):
        gflops_per_second(1e9, 0.0)
    timing = Timing((3.0, 1.0, 2.0, 10.0))
    assert timing.best == 1.0
    assert timing.median == 2.5


def test_free_cores_threshold() -> None:
    # 2 threads on 2 cores: any other load shares a core; 1 thread leaves a core to others.
    assert free_cores_threshold(2, cores=2) == pytest.approx(0.25)
    assert free_cores_threshold(1, cores=2) == pytest.approx(1.25)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("aten::mkldnn_convolution", "convolution"),
        ("aten::slow_conv3d_forward", "convolution"),
        ("aten::native_batch_norm", "batch norm"),
        ("aten::max_pool3d_with_indices", "pooling"),
        ("aten::clamp_min_", "activation"),
        ("aten::cat", "concatenation"),
        ("aten::copy_", "copies and padding"),
        ("aten::addmm", "matmul / linear"),
        ("aten::empty", "other"),
    ],
)
def test_profiler_ops_are_sorted_by_kind(name: str, kind: str) -> None:
    assert op_kind(name) == kind


def _file(*sections: report.Section) -> str:
    return report.merge("", list(sections))


def test_merge_keeps_unmeasured_sections_and_rebuilds_the_summary() -> None:
    first = _file(
        report.Section("inference", "Inference", report.target_line(False, "I3D 10 GFLOP/s.")),
        report.Section("training", "Training", "table\n\n" + report.target_line(True, "fast.")),
    )
    second = report.merge(first, [report.Section("training", "Training", "new table")])
    sections = report.parse_sections(second)
    assert list(sections) == ["summary", "inference", "training"]  # file order
    assert "I3D 10 GFLOP/s" in sections["inference"]  # kept
    assert report.section_body(sections["training"]) == "new table"  # replaced
    summary = report.section_body(sections["summary"])
    assert summary == "- **Target NOT met** I3D 10 GFLOP/s."  # the dropped verdict is gone


def test_a_placeholder_never_replaces_a_measured_gpu_section() -> None:
    measured = _file(report.Section("gpu", "GPU inference", "| H100 | 3000 GFLOP/s |"))
    placeholder = report.Section("gpu", "GPU inference", f"{report.NO_GPU_MARK}: no GPU.")
    kept = report.parse_sections(report.merge(measured, [placeholder]))["gpu"]
    assert "H100" in kept
    fresh = report.parse_sections(report.merge("", [placeholder]))["gpu"]
    assert report.is_placeholder_gpu(fresh)


def test_read_section(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.md"
    assert report.read_section("training", path) == ""
    report.write(path, [report.Section("training", "Training", "| a | b |")])
    assert report.read_section("training", path) == "| a | b |"
    assert report.read_section("decode", path) == ""
