"""I3D (hartutor.models.i3d): structure, TF SAME padding, parameter counts, weight conversion."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hartutor  # noqa: F401
from hartutor.accel import optimize
from hartutor.errors import WeightsError
from hartutor.models import build_model
from hartutor.models.i3d import (
    MIXED_BLOCKS,
    InceptionI3d,
    i3d,
    i3d_state_dict_from_piergiaj,
    i3d_state_dict_from_tf,
    tf_variable_name_to_key,
)
from hartutor.models.layers import (
    InputSpec,
    SameMaxPool3d,
    SamePadConv3d,
    tf_same_padding,
    tf_same_padding_3d,
)


def _n_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ----------------------------------------------------------------------- TF SAME padding


@pytest.mark.parametrize("kernel", [7, 3, 1, 2])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [1, 2, 5, 7, 8, 14, 16, 28, 56, 64, 79, 112, 223, 224])
def test_same_padding_amounts_match_tensorflow(kernel: int, stride: int, size: int) -> None:
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    assert tf_same_padding(size, kernel, stride) == (total // 2, total - total // 2)


def test_same_padding_3d_is_in_f_pad_order() -> None:
    # (T, H, W) = (79, 224, 223), kernel 7, stride 2 -> F.pad wants W first.
    assert tf_same_padding_3d((79, 224, 223), (7, 7, 7), (2, 2, 2)) == (3, 3, 2, 3, 3, 3)


@pytest.mark.parametrize("size", [7, 8, 223, 224])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("optimized", [False, True], ids=["plain", "accel"])
def test_same_conv_places_padding_like_tensorflow(size: int, stride: int, optimized: bool) -> None:
    """A conv whose only non-zero tap is the first one returns input[i*s - pad_before], with
    and without hartutor.accel."""
    conv = SamePadConv3d(1, 1, (1, 1, 7), (1, 1, stride))
    if optimized:
        optimize(conv)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0, 0] = 1.0
    x = torch.arange(1, size + 1, dtype=torch.float32).reshape(1, 1, 1, 1, size)
    out = conv(x).flatten()
    before, _ = tf_same_padding(size, 7, stride)
    assert out.numel() == math.ceil(size / stride)
    expected = [
        float(i * stride - before + 1) if i * stride - before >= 0 else 0.0
        for i in range(out.numel())
    ]
    assert out.tolist() == expected


#: The (kernel, stride) pairs of I3D's max-pools: 2a/3a, 4a, 5a, and the Inception branches.
I3D_POOLS = [
    ((1, 3, 3), (1, 2, 2)),
    ((3, 3, 3), (2, 2, 2)),
    ((2, 2, 2), (2, 2, 2)),
    ((3, 3, 3), (1, 1, 1)),
]


def _tf_max_pool_reference(x: np.ndarray, kernel: tuple, stride: tuple) -> np.ndarray:
    """Max over the real inputs of each SAME window, ignoring padded cells (TF semantics)."""
    out_shape = [math.ceil(n / s) for n, s in zip(x.shape, stride, strict=True)]
    before = [tf_same_padding(n, k, s)[0] for n, k, s in zip(x.shape, kernel, stride, strict=True)]
    out = np.empty(out_shape, dtype=x.dtype)
    for idx in np.ndindex(*out_shape):
        window = tuple(
            slice(max(i * s - b, 0), min(i * s - b + k, n))
            for i, s, b, k, n in zip(idx, stride, before, kernel, x.shape, strict=True)
        )
        out[idx] = x[window].max()
    return out


@pytest.mark.parametrize(("kernel", "stride"), I3D_POOLS)
@pytest.mark.parametrize("optimized", [False, True], ids=["plain", "accel"])
def test_same_max_pool_never_picks_padding(kernel: tuple, stride: tuple, optimized: bool) -> None:
    rng = np.random.default_rng(0)
    x = -rng.uniform(1.0, 2.0, size=(5, 7, 8)).astype(
        np.float32
    )  # all negative: zero padding would win
    pool = SameMaxPool3d(kernel, stride)
    if optimized:
        optimize(pool)
    got = pool(torch.from_numpy(x)[None, None])[0, 0].numpy()
    np.testing.assert_array_equal(got, _tf_max_pool_reference(x, kernel, stride))
    assert (got < 0).all()


@pytest.mark.parametrize("size", [(5, 7, 8), (4, 6, 9), (3, 3, 3)])
@pytest.mark.parametrize(("kernel", "stride"), I3D_POOLS)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("optimized", [False, True], ids=["plain", "accel"])
def test_same_max_pool_matches_tensorflow_in_either_layout(
    size: tuple, kernel: tuple, stride: tuple, channels_last: bool, optimized: bool
) -> None:
    """The plain pool and hartutor.accel's (native padding, channels-last and separable
    shortcuts) give TF's SAME max-pool, every channel."""
    rng = np.random.default_rng(1)
    x = -rng.uniform(1.0, 2.0, size=(2, 3, *size)).astype(np.float32)
    clip = torch.from_numpy(x)
    if channels_last:
        clip = clip.contiguous(memory_format=torch.channels_last_3d)
    pool = SameMaxPool3d(kernel, stride)
    got = (optimize(pool) if optimized else pool)(clip).numpy()
    for n in range(2):
        for c in range(3):
            np.testing.assert_array_equal(
                got[n, c], _tf_max_pool_reference(x[n, c], kernel, stride)
            )


# ------------------------------------------------------------------------- structure


@pytest.mark.parametrize(
    ("kwargs", "total", "trainable"),
    [
        ({}, 12_697_264, 12_689_984),  # RGB Kinetics-400
        ({"in_channels": 2}, 12_675_312, 12_668_032),  # flow Kinetics-400
        ({"num_classes": 600}, 12_902_264, 12_894_984),  # RGB Kinetics-600
    ],
)
def test_paper_parameter_counts(kwargs: dict, total: int, trainable: int) -> None:
    with torch.device("meta"):
        model = i3d(**kwargs)
    assert _n_params(model) == total
    assert _n_params(model, trainable_only=True) == trainable  # = the TF checkpoint's count


def test_batchnorm_and_bias_follow_tensorflow() -> None:
    with torch.device("meta"):
        model = i3d()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    assert len(convs) == 58 and len(bns) == 57  # 57 Unit3D with BN + the logits conv
    assert all(bn.eps == 1e-3 and bn.momentum == pytest.approx(1e-3) for bn in bns)
    assert [c for c in convs if c.bias is not None] == [model.logits.conv3d]


def test_piergiaj_key_names_exist() -> None:
    with torch.device("meta"):
        keys = set(i3d().state_dict())
    for key in (
        "Conv3d_1a_7x7.conv3d.weight",
        "Conv3d_1a_7x7.bn.running_mean",
        "Conv3d_2c_3x3.bn.bias",
        "Mixed_3b.b0.conv3d.weight",
        "Mixed_3b.b1a.bn.running_var",
        "Mixed_4f.b2b.conv3d.weight",
        "Mixed_5c.b3b.bn.weight",
        "logits.conv3d.weight",
        "logits.conv3d.bias",
    ):
        assert key in keys


@pytest.mark.parametrize("frames", [64, 79])
def test_paper_shapes_at_224(frames: int) -> None:
    """Endpoint shapes of the paper model (computed on the meta device: no arithmetic)."""
    with torch.device("meta"):
        model = i3d(num_classes=400)
        x = torch.empty(2, 3, frames, 224, 224)
        ends = model.forward_endpoints(x)
        logits = model(x)
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
    t = math.ceil(frames / 2)
    assert ends["Conv3d_1a_7x7"].shape == (2, 64, t, 112, 112)
    assert ends["MaxPool3d_3a_3x3"].shape == (2, 192, t, 28, 28)
    assert ends["Mixed_3c"].shape == (2, 480, t, 28, 28)
    assert ends["Mixed_4f"].shape == (2, 832, math.ceil(t / 2), 14, 14)
    assert ends["Mixed_5c"].shape == (2, 1024, math.ceil(t / 4), 7, 7)
    assert logits.shape == (2, 400) and pooled.shape == (2, 1024)


def test_head_averages_logits_over_time_and_pre_logits_is_linear_input() -> None:
    torch.manual_seed(0)
    model = InceptionI3d(
        num_classes=5,
        width_mult=0.25,
        mixed_blocks=("Mixed_3b", "Mixed_5c"),
        logits_pool_size=(2, 2, 2),
    ).eval()
    x = torch.randn(2, 3, 24, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)  # (2, 256, 3, 2, 2)
        logits = model(x)
        pooled = model.forward_head(features, pre_logits=True)
        # by hand: VALID 2x2x2 average, 1x1x1 conv, mean over the 2 remaining time steps
        per_step = F.conv3d(
            F.avg_pool3d(features, (2, 2, 2), stride=1),
            model.logits.conv3d.weight,
            model.logits.conv3d.bias,
        )
    assert features.shape == (2, 256, 3, 2, 2) and per_step.shape == (2, 5, 2, 1, 1)
    torch.testing.assert_close(logits, per_step.mean(dim=(2, 3, 4)))
    weight = model.logits.conv3d.weight.flatten(1)
    torch.testing.assert_close(logits, pooled @ weight.T + model.logits.conv3d.bias)


def test_tiny_preset_trains_on_cpu() -> None:
    torch.manual_seed(0)
    model = build_model("i3d", preset="tiny", num_classes=3)
    assert isinstance(model, InceptionI3d)
    assert _n_params(model) < 500_000
    assert model.input_spec.shape == (3, 16, 64, 64)
    x = torch.randn(6, 3, 8, 32, 32)  # smaller than the preset's 16x64x64, to stay fast
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(12):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_reset_classifier_and_input_spec() -> None:
    model = i3d(preset="tiny", num_classes=7)
    model.reset_classifier(11)
    assert model.num_classes == 11 and model(torch.randn(1, 3, 16, 64, 64)).shape == (1, 11)
    with torch.device("meta"):
        rgb, flow = i3d(), i3d(in_channels=2)
    assert isinstance(rgb.input_spec, InputSpec)
    assert rgb.input_spec.shape == (3, 64, 224, 224) and rgb.input_spec.mean == (0.5, 0.5, 0.5)
    assert flow.input_spec.shape == (2, 64, 224, 224)
    with pytest.raises(ValueError, match="preset"):
        i3d(preset="huge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expects"):
        model(torch.randn(1, 2, 16, 64, 64))


# ------------------------------------------------------------------ TF variable names


def _tf_unit_names() -> dict[str, str]:
    """DeepMind's unit scopes (kinetics-i3d i3d.py) -> our module prefixes, written out."""
    names = {u: u for u in ("Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3")}
    for block in MIXED_BLOCKS:
        branch2b = "Conv3d_0a_3x3" if block == "Mixed_5b" else "Conv3d_0b_3x3"  # v1 quirk
        names[f"{block}/Branch_0/Conv3d_0a_1x1"] = f"{block}.b0"
        names[f"{block}/Branch_1/Conv3d_0a_1x1"] = f"{block}.b1a"
        names[f"{block}/Branch_1/Conv3d_0b_3x3"] = f"{block}.b1b"
        names[f"{block}/Branch_2/Conv3d_0a_1x1"] = f"{block}.b2a"
        names[f"{block}/Branch_2/{branch2b}"] = f"{block}.b2b"
        names[f"{block}/Branch_3/Conv3d_0b_1x1"] = f"{block}.b3b"
    return names


def _fake_tf_variables(model: InceptionI3d, scope: str) -> dict[str, np.ndarray]:
    """The model's weights under DeepMind's TF names and layouts."""
    state = model.state_dict()
    out: dict[str, np.ndarray] = {}
    for tf_unit, prefix in _tf_unit_names().items():
        out[f"{scope}{tf_unit}/conv_3d/w"] = (
            state[f"{prefix}.conv3d.weight"].permute(2, 3, 4, 1, 0).numpy()
        )
        out[f"{scope}{tf_unit}/batch_norm/beta"] = state[f"{prefix}.bn.bias"].numpy()
        out[f"{scope}{tf_unit}/batch_norm/moving_mean"] = state[f"{prefix}.bn.running_mean"].numpy()
        out[f"{scope}{tf_unit}/batch_norm/moving_variance"] = state[
            f"{prefix}.bn.running_var"
        ].numpy()
    out[f"{scope}Logits/Conv3d_0c_1x1/conv_3d/w"] = (
        state["logits.conv3d.weight"].permute(2, 3, 4, 1, 0).numpy()
    )
    out[f"{scope}Logits/Conv3d_0c_1x1/conv_3d/b"] = state["logits.conv3d.bias"].numpy()
    return out


def _randomised(model: InceptionI3d, seed: int = 0) -> InceptionI3d:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and not name.endswith("bn.weight"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.1)
    return model


@pytest.mark.parametrize(
    ("scope", "in_channels"), [("RGB/inception_i3d/", 3), ("Flow/inception_i3d/", 2), ("", 3)]
)
def test_tf_variables_round_trip(scope: str, in_channels: int) -> None:
    source = _randomised(i3d(in_channels=in_channels))
    variables = _fake_tf_variables(source, scope)
    assert len(variables) == 57 * 4 + 2
    variables[f"{scope}global_step"] = np.array(1000, dtype=np.int64)  # ignored, not an error
    state = i3d_state_dict_from_tf(variables, in_channels=in_channels)
    target = i3d(in_channels=in_channels)
    target.load_state_dict(state, strict=True)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0)
    assert all(state[k].eq(1).all() for k in state if k.endswith("bn.weight"))


def test_tf_name_rules() -> None:
    assert (
        tf_variable_name_to_key("RGB/inception_i3d/Conv3d_1a_7x7/conv_3d/w")
        == "Conv3d_1a_7x7.conv3d.weight"
    )
    assert (
        tf_variable_name_to_key(
            "Flow/inception_i3d/Mixed_3b/Branch_1/Conv3d_0b_3x3/batch_norm/moving_variance"
        )
        == "Mixed_3b.b1b.bn.running_var"
    )
    assert (
        tf_variable_name_to_key("Mixed_5b/Branch_2/Conv3d_0a_3x3/batch_norm/beta")
        == "Mixed_5b.b2b.bn.bias"
    )
    assert (
        tf_variable_name_to_key("inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/b")
        == "logits.conv3d.bias"
    )
    assert (
        tf_variable_name_to_key("RGB/inception_i3d/Mixed_3b/Branch_3/Conv3d_0b_1x1/conv_3d/w")
        == "Mixed_3b.b3b.conv3d.weight"
    )
    for bad in (
        "global_step",
        "RGB/inception_i3d/Mixed_9z/Branch_0/Conv3d_0a_1x1/conv_3d/w",
        "RGB/inception_i3d/Conv3d_1a_7x7/conv_3d/kernel",
    ):
        assert tf_variable_name_to_key(bad) is None


def test_tf_conversion_errors_name_what_differs() -> None:
    variables = _fake_tf_variables(i3d(), "RGB/inception_i3d/")
    missing = dict(variables)
    del missing["RGB/inception_i3d/Mixed_4c/Branch_1/Conv3d_0b_3x3/conv_3d/w"]
    with pytest.raises(WeightsError, match=r"Mixed_4c\.b1b\.conv3d\.weight"):
        i3d_state_dict_from_tf(missing, in_channels=3)
    unknown = dict(
        variables,
        **{
            "RGB/inception_i3d/Mixed_6a/Branch_0/Conv3d_0a_1x1/conv_3d/w": np.zeros(
                (1, 1, 1, 2, 2), np.float32
            )
        },
    )
    with pytest.raises(WeightsError, match="Mixed_6a"):
        i3d_state_dict_from_tf(unknown, in_channels=3)
    with pytest.raises(
        WeightsError,
        match=r"Conv3d_1a_7x7\.conv3d\.weight .*\(64, 3, 7, 7, 7\).*\(64, 2, 7, 7, 7\)",
    ):
        i3d_state_dict_from_tf(variables, in_channels=2)
    two_streams = dict(variables)
    two_streams["Flow/inception_i3d/Conv3d_2b_1x1/batch_norm/beta"] = np.zeros(64, np.float32)
    with pytest.raises(WeightsError, match="both map"):
        i3d_state_dict_from_tf(two_streams, in_channels=3)


# ------------------------------------------------------------------ piergiaj state dicts


def test_piergiaj_state_dict_loads() -> None:
    source = _randomised(i3d(num_classes=400), seed=1)
    old = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    old = {("module." + k if i % 2 else k): v for i, (k, v) in enumerate(old.items())}
    state = i3d_state_dict_from_piergiaj(old)
    target = i3d()
    target.load_state_dict(state, strict=True)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0)


def test_piergiaj_errors() -> None:
    with torch.device("meta"):
        sd = i3d().state_dict()
    with pytest.raises(WeightsError, match=r"end_points\.foo"):
        i3d_state_dict_from_piergiaj(dict(sd, **{"end_points.foo": torch.zeros(1)}))
    partial = {k: v for k, v in sd.items() if not k.startswith("Mixed_5c.b0")}
    with pytest.raises(WeightsError, match=r"Mixed_5c\.b0"):
        i3d_state_dict_from_piergiaj(partial)
    bad = dict(sd, **{"Mixed_3b.b0.bn.bias": torch.zeros(65, device="meta")})
    with pytest.raises(WeightsError, match=r"Mixed_3b\.b0\.bn\.bias"):
        i3d_state_dict_from_piergiaj(bad)


# ------------------------------------------------------------------ the real TF index

# Variables of a TF checkpoint that are not weights; none is expected in DeepMind's
# rgb_imagenet index (230 entries = 57 units x 4 + logits w, b), but they would be ignored.
NON_MODEL = ("global_step",)


def test_every_variable_of_the_real_index_maps_to_one_parameter(fixtures_dir: Path) -> None:
    tfc = pytest.importorskip("hartutor.weights.tf_checkpoint")
    index = fixtures_dir / "checkpoints" / "rgb_imagenet.index"
    if not index.exists():
        pytest.skip(f"{index} is absent")
    entries = tfc.read_tf_checkpoint_index(index)
    with torch.device("meta"):
        state = i3d(num_classes=400, in_channels=3).state_dict()
    ignored = sorted(n for n in entries if n.split("inception_i3d/")[-1] in NON_MODEL)
    assert ignored == []  # listed explicitly: this index holds model variables only
    mapped: dict[str, str] = {}
    for name, entry in entries.items():
        if name in ignored:
            continue
        key = tf_variable_name_to_key(name)
        assert key is not None, name
        assert key not in mapped, f"{name} and {mapped.get(key)} both map to {key}"
        mapped[key] = name
        shape = tuple(entry.shape)
        if key.endswith("conv3d.weight"):
            shape = (shape[4], shape[3], shape[0], shape[1], shape[2])
        assert shape == tuple(state[key].shape), (name, key)
        assert np.dtype(entry.dtype) == np.float32
    uncovered = sorted(
        k for k in state if k not in mapped and not k.endswith(("bn.weight", "num_batches_tracked"))
    )
    assert uncovered == []
    assert len(mapped) == 230
    assert (
        sum(math.prod(entries[n].shape) for n in mapped.values() if "moving_" not in n)
        == 12_689_984
    )


def test_tiny_preset_uses_a_batchnorm_momentum_fit_for_short_runs() -> None:
    def momenta(model: torch.nn.Module) -> set[float]:
        return {m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)}

    assert momenta(i3d(preset="tiny", num_classes=5)) == {0.1}
    with torch.device("meta"):
        assert momenta(i3d()) == {1e-3}  # TF's decay 0.999, as DeepMind trained
