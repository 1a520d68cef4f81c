"""The benchmarks' arithmetic and results-file writer (no timing is tested here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import report
from benchmarks._common import (
    Timing,
    error_line,
    free_cores_threshold,
    gflops_per_second,
    measure_rows,
)
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
        ("aten::maximum", "pooling"),
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


def test_merge_keeps_the_hand_written_notes_at_the_end() -> None:
    notes = f"{report.NOTES_MARK}\n## Notes\n\nA figure typed by hand: 21 GFLOP/s.\n"
    first = _file(report.Section("training", "Training", "old table")) + "\n" + notes
    second = report.merge(first, [report.Section("training", "Training", "new table")])
    assert second.endswith(notes)
    assert second.count(report.NOTES_MARK) == 1
    assert report.section_body(report.parse_sections(second)["training"]) == "new table"
    assert report.NOTES_MARK not in report.merge("", [report.Section("training", "T", "x")])


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


def test_measure_rows_keeps_the_named_payload_keys_and_reports_each_row() -> None:
    calls: list[tuple[str, dict, int]] = []

    def runner(module: str, payload: dict, *, threads: int) -> dict:
        calls.append((module, payload, threads))
        if payload["preset"] == "broken":
            return {"error": "boom"}
        return {"fit": 10.0 * threads}

    seen: list[dict] = []
    payloads = [
        {"preset": "i3d", "threads": 1, "clips": 8},
        {"preset": "i3d", "threads": 2, "clips": 8},
        {"preset": "broken", "threads": 1, "clips": 8},
    ]
    rows = measure_rows(
        "benchmarks.bench_train",
        payloads,
        keep=("preset", "threads"),
        runner=runner,
        on_row=seen.append,
    )
    assert [c[2] for c in calls] == [1, 2, 1]  # each worker gets its payload's threads
    assert rows == [
        {"preset": "i3d", "threads": 1, "fit": 10.0},
        {"preset": "i3d", "threads": 2, "fit": 20.0},
        {"preset": "broken", "threads": 1, "error": "boom"},
    ]
    assert seen == rows


def test_a_training_run_is_judged_on_its_rendering_epoch_and_its_cached_ones() -> None:
    from benchmarks import bench_train

    row = {"preset": "c3d", "threads": 2, "fit": 40.0, "cached": 60.0, "render": 90.0}
    # Six epochs of 120 clips: 3 s rendering and training, then 5 x 2 s on cached clips.
    assert bench_train.run_speed(row, epochs=6) == pytest.approx(6 * 120 / (3.0 + 5 * 2.0))
    assert bench_train.run_speed(row, epochs=1) == pytest.approx(40.0)
    slow_worker = {"preset": "c3d", "threads": 1, "fit": 20.0, "cached": 30.0, "fit_worker": 45.0}
    rows = [row, slow_worker, {"preset": "c3d", "threads": 1, "error": "boom"}]
    speed, how = bench_train.best_fit(rows, "c3d")
    assert speed == pytest.approx(bench_train.run_speed(row)) and "cached" in how
    slow_worker["fit_worker"] = 70.0
    assert bench_train.best_fit(rows, "c3d") == (70.0, "1 thread + 1 loader worker")
    assert bench_train.best_fit(rows, "i3d") is None


def _notebook_time(notebook: str, wall_s: float, peak: float, **changes: object):
    from hartutor.course import NotebookTime

    values: dict = {
        "measured": "2026-12-07 11:43 UTC",
        "machine": "AMD EPYC, 2 cores",
        "torch_threads": 1,
        "others_cores": 0.5,
        "pretrained": "stand-ins",
        "commit": "6a939d2",
        **changes,
    }
    return NotebookTime(notebook=notebook, wall_s=wall_s, kernel_peak_mib=peak, **values)


def test_notebook_rows_are_judged_against_five_minutes_and_one_gibibyte() -> None:
    from benchmarks import bench_notebooks
    from hartutor.course import course_total_s

    rows = [
        _notebook_time("00_the_data.ipynb", 4.7, 437.0),
        _notebook_time("08_slow.ipynb", 301.0, 900.0),
        _notebook_time("09_big.ipynb", 20.0, 1100.0),
    ]
    assert [row.within_limits for row in rows] == [True, False, False]
    assert course_total_s(rows) == pytest.approx(325.7)
    lines = bench_notebooks.table(rows).splitlines()
    assert lines[2].startswith(
        "| `00_the_data.ipynb` | 1 | 4.7 | 437 | yes | 2026-12-07 11:43 UTC |"
    )
    assert "**NO**" in lines[3] and "**NO**" in lines[4]
    (each_met, each), (total_met, total) = bench_notebooks.target_texts(rows, whole="these 3")
    assert not each_met and "slowest 08_slow.ipynb 301 s, largest 09_big.ipynb 1100 MiB" in each
    assert total_met and total.endswith("these 3 under 30 minutes: 326 s.")
    names = [p.name for p in bench_notebooks.select(("00", "index"))]
    assert names == ["00_the_data.ipynb", "index.ipynb"]


def test_a_partial_benchmark_run_updates_its_rows_of_the_record(tmp_path, monkeypatch) -> None:
    from benchmarks import bench_notebooks
    from hartutor.course import notebook_times, write_notebook_times

    record = tmp_path / "notebooks.json"
    kept = _notebook_time("00_the_data.ipynb", 9.3, 462.0)
    write_notebook_times([kept, _notebook_time("01_single_frame.ipynb", 40.9, 977.0)], record)
    monkeypatch.setattr(
        bench_notebooks, "run", lambda path, core: {"wall_s": 30.0, "kernel_peak_mib": 600.0}
    )
    out = tmp_path / "benchmarks.md"
    bench_notebooks.main(["01", "--record", str(record), "--core", "-1", "--out", str(out)])
    rows = {row.notebook: row for row in notebook_times(record)}
    assert rows["00_the_data.ipynb"] == kept  # not measured: kept with its own date
    new = rows["01_single_frame.ipynb"]
    assert (new.wall_s, new.kernel_peak_mib, new.torch_threads) == (30.0, 600.0, 1)
    assert new.measured != kept.measured and new.pretrained in ("real", "stand-ins", "absent")
    text = out.read_text()  # the results file's section shows the whole record
    assert "| `00_the_data.ipynb` | 1 | 9.3 | 462 | yes | 2026-12-07 11:43 UTC |" in text
    assert "| `01_single_frame.ipynb` | 1 | 30.0 | 600 | yes |" in text
    assert "The last run measured 01_single_frame.ipynb (`01`); the other rows are kept" in text


def test_a_section_without_a_place_in_the_file_is_refused_not_dropped() -> None:
    with pytest.raises(ValueError, match="not in SECTION_ORDER"):
        report.merge("", [report.Section("typo", "Typo", "figures")])


def test_every_section_the_command_can_measure_has_a_place_in_the_file() -> None:
    from benchmarks import run_all

    assert set(run_all.SECTIONS) | {"gpu"} == set(run_all.RUNNERS) | {"gpu"}
    assert set(run_all.SECTIONS) <= set(report.SECTION_ORDER)


def test_the_huge_pages_duel_runs_in_its_own_environment_and_is_reported_beside_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from benchmarks import bench_models, run_all

    monkeypatch.setattr(
        bench_models, "model_cost", lambda case: type("Cost", (), {"flops": 100e9})()
    )
    envs: list[dict | None] = []

    def runner(module: str, payload: dict, *, threads: int, env: dict | None = None) -> dict:
        envs.append(env)
        fast = 0.5 if env else 1.0  # seconds per clip: huge pages twice as fast here
        seconds = {key: [fast * 2, fast] for key in payload["cases"]}
        return {"seconds": seconds, "matmul_gflops": [400.0], "others_cores": 0.0}

    duel = bench_models.head_to_head(threads=2, device="cpu", rounds=2, runner=runner)
    huge = bench_models.head_to_head(
        threads=2, device="cpu", rounds=2, runner=runner, env=run_all.HUGE_PAGES_ENV
    )
    assert envs == [None, {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}]
    text = run_all.huge_pages_paragraph(huge, duel)
    assert "hartutor I3D 64x224x224 200 (+100%)" in text
    assert "torchvision r3d_18 16x112x112 200 (+100%)" in text
    assert "judged without it" in text
    failed = run_all.huge_pages_paragraph({"error": "boom"}, duel)
    assert failed == "With transparent huge pages: not measured (boom)."
    assert run_all.transparent_huge_pages_mode() in ("always", "madvise", "never", "unknown")


def test_i3d_is_judged_against_r3d_18_on_the_same_clip_with_its_own_clip_beside() -> None:
    from benchmarks import run_all

    met, text = run_all.i3d_against_r3d_18({"i3d": 194.0, "r3d_18_64": 157.0, "r3d_18": 206.0})
    assert met
    assert "I3D 194 GFLOP/s, r3d_18 64x224x224 157 GFLOP/s." in text
    assert "r3d_18 on its own 16x112x112 clip: 206 GFLOP/s, 6% above I3D's." in text
    met, text = run_all.i3d_against_r3d_18(
        {"i3d": 150.0, "r3d_18_64": 157.0, "r3d_18": 120.0}, where="on the GPU: "
    )
    assert not met
    assert text.startswith("on the GPU: full-size I3D")
    assert "120 GFLOP/s, 20% at or below I3D's." in text
    # A run without the same-clip row falls back on r3d_18's own clip, and says so.
    met, text = run_all.i3d_against_r3d_18({"i3d": 194.0, "r3d_18": 206.0})
    assert not met
    assert "r3d_18 16x112x112 206 GFLOP/s." in text
    assert "not timed on I3D's 64x224x224 clip" in text


def test_the_kept_memory_duel_asks_its_worker_to_keep_freed_memory_and_says_who_won(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from benchmarks import bench_models, run_all

    monkeypatch.setattr(
        bench_models, "model_cost", lambda case: type("Cost", (), {"flops": 100e9})()
    )
    asked: list[bool] = []
    i3d_seconds = {False: 1.0, True: 0.5}  # I3D twice as fast when memory is kept

    def runner(module: str, payload: dict, *, threads: int) -> dict:
        kept = payload["keep_freed_memory"]
        asked.append(kept)
        seconds = {key: [0.8] for key in payload["cases"]}
        seconds["i3d"] = [i3d_seconds[kept]]
        return {
            "seconds": seconds,
            "matmul_gflops": [400.0],
            "others_cores": 0.0,
            "page_faults": {key: 0 if kept else 101_000 for key in payload["cases"]},
            "peak_mb": 650.0 if kept else 610.0,
        }

    duel = bench_models.head_to_head(threads=2, device="cpu", rounds=1, runner=runner)
    kept = bench_models.head_to_head(
        threads=2, device="cpu", rounds=1, runner=runner, keep_freed_memory=True
    )
    assert asked == [False, True]
    assert "| 101,000 |" in bench_models.head_to_head_table(duel)
    text = run_all.kept_memory_paragraph(kept, duel)
    assert "hartutor I3D 64x224x224 200 (+100%), 101,000 -> 0 page faults a call" in text
    assert "torchvision r3d_18 16x112x112 125 (+0%)" in text
    assert "610 -> 650 MiB" in text
    assert "I3D runs at least as many GFLOP/s as r3d_18 on both inputs" in text
    i3d_seconds[True] = 1.0
    slower = bench_models.head_to_head(
        threads=2, device="cpu", rounds=1, runner=runner, keep_freed_memory=True
    )
    verdict = "I3D runs fewer GFLOP/s than r3d_18 on 64x224x224 and 16x112x112."
    assert verdict in run_all.kept_memory_paragraph(slower, duel)
    failed = run_all.kept_memory_paragraph({"error": "boom"}, duel)
    assert failed == "With freed memory kept for reuse: not measured (boom)."


def test_the_kept_memory_worker_refuses_a_c_library_that_ignores_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hartutor.config
    from benchmarks import bench_models

    monkeypatch.setattr(hartutor.config, "keep_freed_memory", lambda: False)
    payload = {"cases": ["i3d"], "threads": 1, "device": "cpu", "rounds": 1}
    with pytest.raises(RuntimeError, match="mallopt"):
        bench_models._head_to_head_worker({**payload, "keep_freed_memory": True})


def test_a_failed_row_reports_the_exception_not_the_hints_printed_after_it() -> None:
    stderr = """W1203 17:29:40.760000 4846 torch/utils/_sympy/interp.py:179] failed while executing
Traceback (most recent call last):
  File "bench_models.py", line 3, in <module>
    run()
torch._inductor.exc.InductorError: LoweringException: ValueRangeError: Invalid ranges [0:-1]
Found from :

Set TORCHDYNAMO_VERBOSE=1 for the internal stack trace (please do this especially if ...)
"""
    assert error_line(stderr, 1) == (
        "torch._inductor.exc.InductorError: LoweringException: "
        "ValueRangeError: Invalid ranges [0:-1]"
    )
    assert error_line("Killed\n", -9) == "Killed"
    assert error_line("", -9) == "exit status -9"


def test_the_notebooks_section_can_measure_some_notebooks_and_says_so(
    monkeypatch, tmp_path
) -> None:
    from benchmarks import bench_notebooks, run_all
    from hartutor.course import notebook_times, write_notebook_times

    measured = []

    def fake_measure(notebooks, core, progress=None):
        measured.extend(p.name for p in notebooks)
        return [
            _notebook_time(p.name, 10.0, 500.0, measured="2026-12-07 12:40 UTC") for p in notebooks
        ]

    monkeypatch.setattr(bench_notebooks, "measure", fake_measure)
    record = tmp_path / "notebooks.json"
    write_notebook_times([_notebook_time("01_single_frame.ipynb", 40.9, 977.0)], record)
    settings = run_all.Settings(
        quick=False, threads=1, wait_quiet=0.0, runner=None, notebooks=("08", "09"), record=record
    )
    section = run_all.notebooks_section(settings, run_all.describe_machine(1))
    text = section.render()
    assert measured == [p.name for p in bench_notebooks.select(("08", "09"))] and len(measured) == 2
    assert [row.notebook for row in notebook_times(record)] == ["01_single_frame.ipynb", *measured]
    assert "The last run measured 08_" in text and "`--notebooks 08 09`" in text
    assert "the other rows are kept from earlier runs" in text
    assert "| `01_single_frame.ipynb` | 1 | 40.9 | 977 | yes | 2026-12-07 11:43 UTC |" in text
    assert "these 3 notebooks under 30 minutes: 61 s." in text
    assert "each of these 3 notebooks under 5 minutes and 1 GiB" in text
    with pytest.raises(SystemExit, match="no tutorial notebook"):
        run_all.notebooks_section(
            run_all.Settings(False, 1, 0.0, None, notebooks=("zz",)), run_all.describe_machine(1)
        )
