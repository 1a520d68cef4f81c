"""Toward the edge: sizes by precision, int8 weights, copies against the original, timing
helpers, export and the benchmarks file (hartutor.edge), and collect_scores (hartutor.train)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import hartutor
from hartutor import edge
from hartutor.edge import EdgeError
from hartutor.models.fusion import LateFusion, fuse_scores
from hartutor.train import collect_scores, evaluate_streams


class SmallNet(nn.Module):
    """Conv3d -> BatchNorm -> pooled -> Linear: every kind of tensor a state dict holds."""

    def __init__(self, num_classes: int = 5, width: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, width, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm3d(width)
        self.fc = nn.Linear(width, num_classes)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3, 4)))


def _net(seed: int = 0, **kwargs: int) -> SmallNet:
    torch.manual_seed(seed)
    net = SmallNet(**kwargs).eval()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net


class Clips(torch.utils.data.Dataset):
    def __init__(self, n: int = 12, num_classes: int = 5, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.videos = torch.randn(n, 3, 4, 6, 6, generator=g)
        self.labels = torch.randint(0, num_classes, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"video": self.videos[i], "label": self.labels[i]}


# --------------------------------------------------------------------------- sizes


def test_state_dict_bytes_counts_each_precision_from_the_shapes() -> None:
    net = _net()
    conv_w, fc_w = net.conv.weight.numel(), net.fc.weight.numel()
    floats = sum(t.numel() for t in net.state_dict().values() if t.is_floating_point())
    tracked = 8  # BatchNorm's num_batches_tracked: one int64
    assert edge.state_dict_bytes(net, "float32") == 4 * floats + tracked
    assert edge.state_dict_bytes(net, "float16") == 2 * floats + tracked
    others = floats - conv_w - fc_w
    per_channel = conv_w + 4 * 8 + fc_w + 4 * 5 + 4 * others + tracked
    assert edge.state_dict_bytes(net, "int8") == per_channel
    per_tensor = conv_w + 4 + fc_w + 4 + 4 * others + tracked
    assert edge.state_dict_bytes(net, "int8", per_channel=False) == per_tensor
    linear_only = fc_w + 4 + 4 * (floats - fc_w) + tracked
    assert edge.state_dict_bytes(net, "int8", layers=(nn.Linear,), per_channel=False) == linear_only
    with pytest.raises(EdgeError, match="precision"):
        edge.state_dict_bytes(net, "int4")  # type: ignore[arg-type]


def test_sizes_of_a_meta_model_equal_those_of_the_real_one() -> None:
    with torch.device("meta"):
        meta = SmallNet()
    real = _net()
    for precision in ("float32", "float16", "int8"):
        assert edge.state_dict_bytes(meta, precision) == edge.state_dict_bytes(real, precision)
    row = edge.size_row("small", meta)
    assert row.params == sum(p.numel() for p in real.parameters())
    assert row.float16 < row.float32 and row.int8_weights < row.float16
    assert "small" in edge.size_markdown([row])
    with pytest.raises(EdgeError, match="meta"):
        edge.saved_bytes(meta)


def test_saved_bytes_is_the_payload_plus_the_files_bookkeeping() -> None:
    net = _net(width=256)
    saved, payload = edge.saved_bytes(net), edge.state_dict_bytes(net, "float32")
    assert payload < saved < payload + 16_000  # a zip with a few entries, not a second copy
    int8_saved = edge.saved_bytes(edge.quantize_weights_int8(net))
    assert int8_saved < 0.4 * saved


def test_format_bytes() -> None:
    assert edge.format_bytes(1_825_019) == "1.83 MB"
    assert edge.format_bytes(946_619) == "946.6 kB"


# --------------------------------------------------------------------------- int8 and float16


def test_int8_weights_round_trip_within_half_a_step_per_channel() -> None:
    net = _net(width=16)
    with torch.no_grad():
        net.conv.weight[3].zero_()  # a dead channel must stay exactly zero
    stored = edge.quantize_weights_int8(net)
    assert stored["conv.weight"].dtype == torch.int8 and stored["fc.weight"].dtype == torch.int8
    assert stored["conv.bias"].dtype == torch.float32  # biases are not quantised
    scale = stored["conv.weight" + edge.SCALE_SUFFIX]
    assert scale.shape == (16,)
    restored = edge.dequantize_weights_int8(stored)
    assert set(restored) == set(net.state_dict())
    error = (restored["conv.weight"] - net.conv.weight).abs().reshape(16, -1).amax(dim=1)
    assert torch.all(error <= scale / 2 + 1e-7)
    assert torch.all(restored["conv.weight"][3] == 0)
    # the largest weight of each channel is stored exactly (it defines the scale)
    peak = net.conv.weight.abs().reshape(16, -1).amax(dim=1)
    assert torch.allclose(
        stored["conv.weight"].abs().reshape(16, -1).amax(dim=1)[peak > 0].float(),
        torch.full(((peak > 0).sum(),), 127.0),
    )


def test_per_channel_scales_beat_one_scale_per_tensor() -> None:
    net = _net(width=16)
    with torch.no_grad():  # channels of very different magnitude, as in trained networks
        net.conv.weight.mul_(torch.logspace(-2, 0, 16).view(-1, 1, 1, 1, 1))
    w = net.conv.weight.detach()

    def error(per_channel: bool) -> float:
        restored = edge.dequantize_weights_int8(
            edge.quantize_weights_int8(net, per_channel=per_channel)
        )
        return float((restored["conv.weight"] - w).abs().mean())

    assert edge.quantize_weights_int8(net, per_channel=False)["conv.weight.int8_scale"].ndim == 0
    assert error(per_channel=True) < 0.5 * error(per_channel=False)


def test_dequantize_rejects_what_it_cannot_restore() -> None:
    stored = edge.quantize_weights_int8(_net())
    without_scale = {k: v for k, v in stored.items() if k != "fc.weight" + edge.SCALE_SUFFIX}
    with pytest.raises(EdgeError, match="without a scale"):
        edge.dequantize_weights_int8(without_scale)
    without_weight = {k: v for k, v in stored.items() if k != "fc.weight"}
    with pytest.raises(EdgeError, match="without their weights"):
        edge.dequantize_weights_int8(without_weight)
    with torch.device("meta"):
        meta = SmallNet()
    with pytest.raises(EdgeError, match="meta"):
        edge.quantize_weights_int8(meta)


def test_copies_with_rounded_weights_stay_close_and_leave_the_original_alone() -> None:
    net = _net(width=16)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(4, 3, 4, 6, 6)
    with torch.no_grad():
        ref = net(x)
        int8 = edge.with_int8_weights(net)(x)
        half = edge.with_float16_weights(net)(x)
    scale = ref.abs().max()
    assert 0 < (int8 - ref).abs().max() < 0.05 * scale
    assert 0 < (half - ref).abs().max() < 0.005 * scale
    assert (half - ref).abs().max() < (int8 - ref).abs().max()  # 11 bits of mantissa beat 8
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_dynamic_int8_converts_linear_layers_only() -> None:
    net = _net()
    quantized, count = edge.quantize_dynamic_int8(net)
    assert count == 1
    assert type(quantized.fc).__name__ == "Linear" and type(quantized.fc) is not nn.Linear
    assert type(quantized.conv) is nn.Conv3d  # convolutions stay float32
    assert type(net.fc) is nn.Linear  # the original is untouched
    x = torch.randn(2, 3, 4, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(quantized(x), net(x), atol=0.05, rtol=0.05)


# --------------------------------------------------------------------------- scores of copies


def _fusion() -> LateFusion:
    torch.manual_seed(0)
    return LateFusion({"a": _net(1), "b": _net(2)}, weights={"a": 2.0, "b": 1.0}).eval()


def test_collect_scores_keeps_every_stream_in_data_order() -> None:
    fusion, data = _fusion(), Clips()
    scores, labels = collect_scores(fusion, data, batch_size=5, device="cpu")
    assert set(scores) == {"fused", "a", "b"} and torch.equal(labels, data.labels)
    assert all(v.shape == (12, 5) for v in scores.values())
    refused = fuse_scores({"a": scores["a"], "b": scores["b"]}, weights=fusion.stream_weights)
    torch.testing.assert_close(refused.log_probabilities, scores["fused"])
    results = evaluate_streams(fusion, data, batch_size=5, device="cpu", progress=False)
    for name in ("fused", "a", "b"):
        assert torch.equal(results[name].predictions, scores[name].argmax(dim=1))
    plain, _ = collect_scores(_net(1), data, device="cpu")
    assert set(plain) == {"model"}
    torch.testing.assert_close(plain["model"], scores["a"])
    with pytest.raises(hartutor.errors.HartutorError, match="no batches"):
        collect_scores(fusion, [], device="cpu")


class Permuted(nn.Module):
    """The same model with its classes rotated: never the same top-1."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).roll(1, dims=-1)


def test_compare_to_reference() -> None:
    net, data = _net(width=16), Clips(n=20)
    results = edge.compare_to_reference(
        {"fp32": net, "int8": edge.with_int8_weights(net), "rotated": Permuted(net)},
        data,
        batch_size=8,
    )
    by_name = {r.name: r for r in results}
    assert by_name["fp32"].agreement == 1.0 and by_name["fp32"].max_probability_change == 0.0
    assert 0 < by_name["int8"].max_probability_change < 0.05
    assert by_name["rotated"].agreement == 0.0
    with torch.no_grad():
        expected = float((net(data.videos).argmax(1) == data.labels).float().mean())
    assert by_name["fp32"].top1 == pytest.approx(expected)
    assert all(r.num_clips == 20 for r in results)
    table = edge.variant_markdown(results, sizes={"fp32": 4000})
    assert "rotated" in table and "4.0 kB" in table and "—" in table
    fused = edge.compare_to_reference({"fusion": _fusion()}, data)
    assert fused[0].agreement == 1.0
    with pytest.raises(EdgeError, match="reference"):
        edge.compare_to_reference({"fp32": net}, data, reference="int8")


def test_compare_to_reference_needs_the_same_clips_on_every_pass() -> None:
    class Shifting(Clips):
        calls = 0

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            Shifting.calls += 1
            item = super().__getitem__(i)
            return {**item, "label": (item["label"] + Shifting.calls // 20) % 5}

    net = _net()
    with pytest.raises(EdgeError, match="different clips"):
        edge.compare_to_reference({"a": net, "b": net}, Shifting(n=20), batch_size=20)


# --------------------------------------------------------------------------- speed


def test_measure_latency_reports_every_timed_call() -> None:
    net = _net()
    x = torch.randn(3, 3, 4, 6, 6)
    latency = edge.measure_latency(net, x, repeats=4, warmup=1)
    assert len(latency.seconds) == 4 and latency.batch_size == 3
    assert latency.threads == torch.get_num_threads()
    assert latency.best <= latency.median
    assert latency.clips_per_second == pytest.approx(3 / latency.median)
    fusion_latency = edge.measure_latency(_fusion(), {"video": x}, repeats=1, warmup=0)
    assert fusion_latency.batch_size == 3
    with pytest.raises(EdgeError, match="repeats"):
        edge.measure_latency(net, x, repeats=0)


def test_matmul_gflops_and_real_time_need() -> None:
    rate = edge.matmul_gflops(size=64, repeats=2)
    assert rate > 0 and rate == rate  # a positive number, not NaN
    assert edge.clips_per_second_needed(hop_frames=64) == pytest.approx(25 / 64)
    assert edge.clips_per_second_needed(hop_frames=1, fps=30) == 30
    with pytest.raises(EdgeError, match="hop_frames"):
        edge.clips_per_second_needed(hop_frames=0)
    with pytest.raises(EdgeError):
        edge.matmul_gflops(size=0)


# --------------------------------------------------------------------------- export


@pytest.mark.parametrize("method", ["export", "torchscript"])
def test_export_reloads_from_the_file_and_gives_the_same_outputs(
    method: str, tmp_path: Path
) -> None:
    net = _net()
    x = torch.randn(1, 3, 4, 6, 6)
    check = edge.export_and_verify(net, x, tmp_path / f"net.{method}", method=method)  # type: ignore[arg-type]
    assert check.path.is_file() and check.file_bytes == check.path.stat().st_size
    assert check.max_abs_difference <= 1e-4
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, nothing left behind


def test_export_with_a_free_batch_size(tmp_path: Path) -> None:
    net = _net()
    check = edge.export_and_verify(
        net, torch.randn(1, 3, 4, 6, 6), tmp_path / "net.pt2", dynamic_batch=True
    )
    program = torch.export.load(check.path).module()
    x = torch.randn(5, 3, 4, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(program(x), net(x))
    fixed = edge.export_and_verify(net, torch.randn(1, 3, 4, 6, 6), tmp_path / "fixed.pt2")
    with pytest.raises(Exception):  # noqa: B017 - torch's guard error type is not public
        torch.export.load(fixed.path).module()(x)


def test_probabilities_makes_a_fusion_exportable(tmp_path: Path) -> None:
    fusion, x = _fusion(), torch.randn(2, 3, 4, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(edge.Probabilities(fusion)(x), fusion(x).probabilities)
        torch.testing.assert_close(edge.Probabilities(_net())(x), _net()(x).softmax(-1))
    check = edge.export_and_verify(edge.Probabilities(fusion), x, tmp_path / "fusion.pt2")
    assert check.max_abs_difference <= 1e-4


def test_export_failures_are_reported_with_the_model(tmp_path: Path) -> None:
    class Branchy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:  # data-dependent control flow: torch.export cannot trace it
                return x * 2
            return x

    with pytest.raises(EdgeError, match="could not export Branchy"):
        edge.export_and_verify(Branchy(), torch.ones(2, 3), tmp_path / "branchy.pt2")
    assert not (tmp_path / "branchy.pt2").exists()


def test_export_refuses_what_it_cannot_check(tmp_path: Path) -> None:
    x = torch.randn(1, 3, 4, 6, 6)
    with pytest.raises(EdgeError, match="differs"):
        edge.export_and_verify(_net(), x, tmp_path / "strict.pt2", atol=-1.0)
    with pytest.raises(EdgeError, match="Probabilities"):
        edge.export_and_verify(_fusion(), x, tmp_path / "fusion.pt2")
    with pytest.raises(EdgeError, match="method"):
        edge.export_and_verify(_net(), x, tmp_path / "x.onnx", method="onnx")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- benchmarks file


def test_read_benchmarks(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    results = docs / "benchmarks.md"
    results.write_text(
        "# hartutor benchmarks\n\nintro\n\n"
        "<!-- begin: summary -->\n## Targets\n\n- **Target met** fast\n<!-- end: summary -->\n\n"
        "<!-- begin: inference -->\n## Inference\n\n| a |\n|---|\n| 1 |\n<!-- end: inference -->\n",
        encoding="utf-8",
    )
    nested = tmp_path / "tutorials"
    nested.mkdir()
    assert edge.find_benchmarks_file(nested) == results
    text = edge.read_benchmarks(results, ["inference", "missing", "summary"])
    assert text.index("## Inference") < text.index("## Targets") and "intro" not in text
    whole = edge.read_benchmarks(results, ["missing"])
    assert "intro" in whole and "<!--" not in whole and "## Inference" in whole
    results.unlink()
    assert edge.find_benchmarks_file(nested) is None
    with pytest.raises(EdgeError, match="python -m benchmarks"):
        edge.read_benchmarks(results)


def test_dataloader_input_is_accepted_too() -> None:
    data = Clips()
    loader = DataLoader(data, batch_size=4)
    scores, labels = collect_scores(_net(), loader, device="cpu")
    assert scores["model"].shape == (12, 5) and torch.equal(labels, data.labels)


def test_benchmark_rate_reads_the_row_and_its_device(tmp_path):
    from hartutor.edge import benchmark_rate

    path = tmp_path / "benchmarks.md"
    path.write_text(
        "<!-- begin: inference -->\n## Inference\n\n"
        "_Measured 2026-01-01 00:00 UTC on Some CPU, 3 torch thread(s). Other load._\n\n"
        "| model | input (TxHxW) | params (M) | GFLOP/clip | ms/clip, best (median) | clips/s |\n"
        "|---|---|---|---|---|---|\n"
        "| hartutor I3D + Xception fusion | 64x224x224 | 34.3 | 356.0 | 2,209 (2,225) | 0.45 |\n"
        "<!-- end: inference -->\n",
        encoding="utf-8",
    )
    rate = benchmark_rate(path, "hartutor I3D + Xception fusion")
    assert rate is not None and rate.clips_per_second == 0.45
    assert rate.device == "Some CPU, 3 torch thread(s)" and rate.input == "64x224x224"
    assert benchmark_rate(path, "no such model") is None


def test_package_bytes_counts_files():
    from hartutor.edge import EdgeError, package_bytes

    assert package_bytes("hartutor") > 100_000
    with pytest.raises(EdgeError, match="not an installed package"):
        package_bytes("no_such_package_hartutor")


def test_cpu_name_names_something():
    from hartutor.edge import cpu_name

    assert isinstance(cpu_name(), str) and cpu_name().strip()
