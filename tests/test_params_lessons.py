"""Per-layer counts for the lessons on C3D, I3D and Xception (hartutor.params, second half)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import hartutor  # noqa: F401  (before torchvision and timm)
from hartutor.models import build_model
from hartutor.params import (
    LayerCost,
    TableError,
    breakdown_figure,
    breakdown_markdown,
    count_flops,
    count_parameters,
    inflation_markdown,
    inflation_table,
    layer_cost,
    match_tf_checkpoint,
    parameter_breakdown,
    xception_flows,
)


def test_layer_cost_counts_a_conv_and_its_3d_twin() -> None:
    cin, cout, k, t, h, w = 4, 6, 3, 5, 7, 9
    conv2d = layer_cost(nn.Conv2d(cin, cout, k, padding=1), (1, cin, h, w), name="2d")
    conv3d = layer_cost(nn.Conv3d(cin, cout, k, padding=1), (1, cin, t, h, w), name="3d")
    assert conv2d.params == k * k * cin * cout + cout
    assert conv3d.params == k * k * k * cin * cout + cout
    assert conv2d.flops == 2 * (h * w * cout) * (k * k * cin)
    assert conv3d.flops == 2 * (t * h * w * cout) * (k * k * k * cin)
    assert conv2d.output_shape == (1, cout, h, w)
    assert conv3d.output_shape == (1, cout, t, h, w)
    assert conv3d.name == "3d" and conv3d.gflops == conv3d.flops / 1e9


def test_layer_cost_on_meta_allocates_nothing() -> None:
    with torch.device("meta"):
        conv = nn.Conv3d(512, 512, 3, padding=1)
    cost = layer_cost(conv, (1, 512, 2, 7, 7))
    assert cost.params == 27 * 512 * 512 + 512
    assert cost.output_shape == (1, 512, 2, 7, 7)


def test_breakdown_follows_the_forward_pass_and_adds_up() -> None:
    model = build_model("c3d", preset="tiny", num_classes=5)
    rows = parameter_breakdown(model)
    names = [r.name for r in rows]
    assert names[:3] == ["conv1a", "pool1", "conv2a"]
    assert names[-3:] == ["fc6", "fc7", "fc8"]
    assert "relu" not in names and "dropout" not in names  # shared, called many times
    assert sum(r.params for r in rows) == count_parameters(model)
    total_flops, _ = count_flops(model, torch.zeros(1, *model.input_spec.shape))
    assert sum(r.flops for r in rows) == total_flops
    by_name = {r.name: r for r in rows}
    assert by_name["fc6"].params == count_parameters(model.fc6)
    assert by_name["pool5"].output_shape == (1, *model.feature_shape)
    assert by_name["pool5"].params == by_name["pool5"].flops == 0


def test_breakdown_groups_and_the_other_row() -> None:
    model = build_model("c3d", preset="tiny", num_classes=5)
    convs = [n for n in model.layer_names if n.startswith("conv")]
    rows = parameter_breakdown(model, groups={"convolutions": convs, "fc6": ["fc6"]})
    assert [r.name for r in rows] == ["convolutions", "fc6", "(other)"]
    assert rows[0].params == sum(count_parameters(getattr(model, n)) for n in convs)
    per_layer = {r.name: r for r in parameter_breakdown(model)}
    assert rows[0].output_shape == per_layer["conv5b"].output_shape  # the last member called
    assert rows[2].params == count_parameters(model.fc7) + count_parameters(model.fc8)
    assert sum(r.params for r in rows) == count_parameters(model)
    with pytest.raises(TableError, match="conv9"):
        parameter_breakdown(model, groups={"bad": ["conv9"]})


def test_breakdown_markdown_and_figure() -> None:
    rows = [LayerCost("a", 30, 10, (1, 4)), LayerCost("b", 10, 30, None)]
    text = breakdown_markdown(rows, title="block")
    assert text.splitlines()[0].startswith("| block |")
    assert "| a | 4 | 30 | 75.0% |" in text and "| b | — |" in text
    assert "**40**" in text
    figure = breakdown_figure(rows, title="t")
    assert len(figure.axes) == 2


def test_xception_flows_from_the_structure() -> None:
    import timm

    with torch.device("meta"):
        paper = timm.create_model("legacy_xception", pretrained=False)
    flows = xception_flows(paper)
    assert flows["middle flow"] == [f"block{i}" for i in range(4, 12)]  # 8 repeated blocks
    assert flows["entry flow"][-3:] == ["block1", "block2", "block3"]
    assert flows["exit flow"][0] == "block12" and flows["classifier"] == ["global_pool", "fc"]
    rows = parameter_breakdown(paper, torch.zeros(1, 3, 299, 299, device="meta"), groups=flows)
    assert sum(r.params for r in rows) == count_parameters(paper)
    assert rows[1].output_shape == (1, 728, 19, 19)

    tiny = build_model("xception", preset="tiny", num_classes=3).backbone
    tiny_flows = xception_flows(tiny)
    assert tiny_flows["middle flow"] == ["blocks.3", "blocks.4"]  # after 3 entry blocks
    assert tiny_flows["entry flow"][0] == "stem" and "exit" in tiny_flows["exit flow"]
    with pytest.raises(TableError, match="middle flow"):
        xception_flows(nn.Sequential(nn.Conv2d(3, 3, 1)))


def test_inflation_multiplies_only_the_spatial_kernels() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.Conv2d(8, 16, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 4),
    )
    (row,) = inflation_table({"net": net})
    spatial = net[0].weight.numel()
    assert row.spatial_conv_params_2d == spatial
    assert row.params_2d == count_parameters(net)
    assert row.params_3d == row.params_2d + 2 * spatial  # 3x3 -> 3x3x3: two more copies
    assert row.ratio == pytest.approx(row.params_3d / row.params_2d)
    (flat,) = inflation_table({"net": net}, conv_time_kernel=1)
    assert flat.params_3d == flat.params_2d
    assert "| net |" in inflation_markdown([row])


def _write_tiny_i3d_checkpoint(tmp_path: Path, extra: dict | None = None, drop: str = "") -> Path:
    from hartutor.models.i3d import i3d_state_dict_to_tf
    from hartutor.weights.tf_checkpoint import write_tf_checkpoint

    model = build_model("i3d", preset="tiny", num_classes=5)
    tensors = i3d_state_dict_to_tf(model.state_dict())
    tensors = {k: v for k, v in tensors.items() if not drop or drop not in k}
    tensors.update(extra or {})
    return write_tf_checkpoint(tmp_path / "model.ckpt", tensors)


def test_tf_checkpoint_maps_one_to_one(tmp_path: Path) -> None:
    import numpy as np

    from hartutor.weights import match_tf_checkpoint as in_weights

    assert in_weights is match_tf_checkpoint  # moved to hartutor.weights; the old name works
    model = build_model("i3d", preset="tiny", num_classes=5)
    prefix = _write_tiny_i3d_checkpoint(tmp_path)
    match = match_tf_checkpoint(f"{prefix}.index", model)
    assert match.one_to_one
    assert match.tf_trained_elements == count_parameters(model, trainable_only=True)
    assert all(r.fits for r in match.rows)
    assert {r.key for r in match.rows} >= {"logits.conv3d.weight", "Mixed_5b.b2b.bn.running_var"}

    extra = {"RGB/inception_i3d/Foo/conv_3d/w": np.zeros((1,), np.float32)}
    broken = match_tf_checkpoint(
        f"{_write_tiny_i3d_checkpoint(tmp_path / 'b', extra, drop='Mixed_3b/Branch_0')}.index",
        model,
    )
    assert not broken.one_to_one
    assert broken.unmapped == ("RGB/inception_i3d/Foo/conv_3d/w",)
    assert "Mixed_3b.b0.conv3d.weight" in broken.uncovered


def test_real_deepmind_index_maps_onto_the_paper_i3d(fixtures_dir: Path) -> None:
    index = fixtures_dir / "checkpoints" / "rgb_imagenet.index"
    if not index.exists():
        pytest.skip(f"{index} is absent")
    match = match_tf_checkpoint(index)
    assert match.one_to_one
    assert match.tf_trained_elements == match.model_trainable == 12_689_984
    assert len(match.rows) == 230
