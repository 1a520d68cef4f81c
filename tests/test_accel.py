"""hartutor.accel: the CPU speed work computes what the plain models compute.

Every registered model gives the same logits (eval) and gradients (training) with and without
:func:`hartutor.accel.optimize`; the shortcuts behind it (oneDNN convolutions, SAME padding
without copies, separable max-pools, BatchNorm folding, channels-last layouts) are checked one
by one; ``torch.compile``, ``torch.export`` and TorchScript work on plain and optimised models.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hartutor  # noqa: F401  (before timm)
from hartutor import accel
from hartutor.accel import modules, ops, optimize
from hartutor.models import build_model, list_models
from hartutor.models.layers import SameMaxPool3d, SamePadConv3d, Unit3D, tf_same_padding_3d
from hartutor.params import example_inputs

Conv3d = modules.Conv3d
conv3d = ops.conv3d
fold_batch_norm = ops.fold_batch_norm
is_channels_last_3d = ops.is_channels_last_3d
_separable_pool_pays = ops.separable_pool_pays
_zero_pad = ops.zero_pad


# ----------------------------------------------------------------- every model, both ways


def _tensors(out: object) -> list[torch.Tensor]:
    """The tensors a model returns: logits, or a fusion's stream logits and fused scores."""
    if isinstance(out, torch.Tensor):
        return [out]
    return [*out.streams.values(), out.fused]  # type: ignore[attr-defined]


def _inputs(model: nn.Module, batch_size: int) -> torch.Tensor | dict[str, torch.Tensor]:
    torch.manual_seed(3)
    inputs = example_inputs(model, batch_size=batch_size, device="cpu")
    if isinstance(inputs, torch.Tensor):
        return torch.randn_like(inputs)
    return {key: torch.randn_like(value) for key, value in inputs.items()}


def _run(model: nn.Module, inputs: object) -> list[torch.Tensor]:
    torch.manual_seed(1)  # the same dropout masks and sampled frames in both runs
    return _tensors(model(inputs))


#: Registered models with no layer hartutor.accel has a faster twin for (plain 2D CNNs on
#: stacked flow; TSN's and the conv fusion's streams are plain 2D CNNs too; Res3D, built from
#: torchvision's r3d_18 blocks, and T3D, plain nn.Conv3d layers, until a benchmark shows a twin
#: pays); optimize leaves them as they are.
_NOTHING_TO_SWAP = {"two_stream_temporal", "tsn", "conv_fusion", "res3d", "t3d"}


@pytest.mark.parametrize("name", list_models())
def test_every_model_computes_the_same_with_and_without_accel(name: str) -> None:
    """Eval logits (and a fusion's stream and fused scores) within float tolerance; in
    training, the same loss and parameter gradients (channels-last BatchNorm sums batch
    statistics in float32, hence the looser bound). Names, keys and repr do not change."""
    torch.manual_seed(0)
    plain = build_model(name, preset="tiny", num_classes=5)
    fast = optimize(copy.deepcopy(plain))
    assert accel.is_optimized(fast) == (name not in _NOTHING_TO_SWAP)
    assert not accel.is_optimized(plain)
    assert list(fast.state_dict()) == list(plain.state_dict())
    assert repr(fast) == repr(plain) and type(fast).__name__ == type(plain).__name__

    plain.eval(), fast.eval()
    inputs = _inputs(plain, batch_size=2)
    with torch.no_grad():
        for a, b in zip(_run(plain, inputs), _run(fast, inputs), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)

    plain.train(), fast.train()
    grads = []
    for model in (plain, fast):
        model.zero_grad()
        outputs = _run(model, inputs)
        loss = sum(out.float().square().mean() for out in outputs)
        loss.backward()  # type: ignore[union-attr]
        grads.append({k: p.grad for k, p in model.named_parameters() if p.grad is not None})
    assert grads[0] and grads[0].keys() == grads[1].keys()
    for key, reference in grads[0].items():
        error = (grads[1][key] - reference).norm() / reference.norm().clamp_min(1e-12)
        assert error < 5e-2, (name, key, error.item())
    every = torch.cat([g.flatten() for g in grads[0].values()])
    difference = torch.cat([(grads[1][k] - g).flatten() for k, g in grads[0].items()])
    assert difference.norm() / every.norm() < 2e-2, name


def test_optimize_is_idempotent_reversible_and_leaves_unknown_modules_alone() -> None:
    torch.manual_seed(0)
    model = build_model("i3d_xception_fusion", preset="tiny", num_classes=5).eval()
    plain_types = [type(m) for m in model.modules()]
    assert optimize(model) is model
    fast_types = [type(m) for m in model.modules()]
    assert fast_types != plain_types
    assert all(issubclass(f, p) for f, p in zip(fast_types, plain_types, strict=True))
    optimize(model)
    assert [type(m) for m in model.modules()] == fast_types  # twice: nothing more

    with torch.no_grad():
        model(_inputs(model, batch_size=1))  # the Xception stream's weights go channels-last
    assert accel.restore(model) is model
    assert [type(m) for m in model.modules()] == plain_types
    assert not accel.is_optimized(model)
    assert all(p.is_contiguous() for p in model.parameters())

    class Unknown(nn.Module):  # a model hartutor.accel has never seen, e.g. a new family
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv3d(3, 4, 3, padding=1)
            self.pool = nn.MaxPool3d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pool(self.conv(x))

    unknown = Unknown()
    assert optimize(unknown) is unknown
    assert type(unknown.conv) is nn.Conv3d and type(unknown.pool) is nn.MaxPool3d
    assert not accel.is_optimized(unknown)


def test_c3d_convs_become_onednn_convs_only_in_c3d() -> None:
    model = optimize(build_model("c3d", preset="tiny", num_classes=5))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv3d)]
    assert convs and all(type(m) is Conv3d for m in convs)
    torch.manual_seed(0)
    layouts: list[bool] = []
    convs[0].register_forward_hook(lambda m, a, out: layouts.append(is_channels_last_3d(out)))
    with torch.no_grad():
        out = model(torch.randn(1, 3, 16, 64, 64))
    assert layouts == [True] and out.shape == (1, 5)


def _graph_ops(model: nn.Module, clip: torch.Tensor) -> tuple[torch.Tensor, str]:
    graphs: list[torch.fx.GraphModule] = []

    def backend(graph: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(graph)
        return graph.forward

    torch._dynamo.reset()
    with torch.no_grad():
        out = torch.compile(model, backend=backend, fullgraph=True)(clip)
    return out, "\n".join(g.code for g in graphs)


@pytest.mark.parametrize("optimized", [False, True], ids=["plain", "accel"])
@pytest.mark.parametrize("name", ["i3d", "c3d", "single_frame"])
def test_compile_export_and_torchscript_work_with_and_without_accel(
    name: str, optimized: bool
) -> None:
    """torch.compile (one graph, portable aten convs), torch.export with a free batch size
    and TorchScript tracing give the eager model's outputs, plain or optimised."""
    torch.manual_seed(0)
    model = build_model(name, preset="tiny", num_classes=5).eval()
    if optimized:
        optimize(model)
    clip = torch.randn(2, *model.input_spec.shape)
    with torch.no_grad():
        expected = model(clip)
    strides = [p.stride() for p in model.parameters()]  # eager: as the layout it computes in
    compiled, code = _graph_ops(model, clip)
    torch.testing.assert_close(compiled, expected, rtol=1e-4, atol=1e-5)
    assert "mkldnn" not in code

    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (clip,), dynamic_shapes=({0: batch},))
    three = torch.randn(3, *model.input_spec.shape)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(three), model(three), rtol=1e-4, atol=1e-5)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, (clip,))
    assert "mkldnn_convolution" not in str(traced.inlined_graph)
    with torch.no_grad():
        torch.testing.assert_close(traced(clip), expected, rtol=1e-4, atol=1e-5)
    assert [p.stride() for p in model.parameters()] == strides  # traces keep the layout


# ----------------------------------------------------------------- the shortcuts, one by one


@pytest.mark.parametrize("size", [(5, 7, 8), (1, 2, 3), (2, 1, 4)])
@pytest.mark.parametrize("kernel", [(3, 3, 3), (1, 3, 3), (3, 1, 1), (2, 2, 2), (1, 1, 1)])
def test_separable_max_pool_equals_pytorch_max_pool(size: tuple, kernel: tuple) -> None:
    """The one-axis-at-a-time pool (inference, stride 1) gives F.max_pool3d's values, NaN, -inf
    and ties included, on maps smaller than the kernel too, as a new channels-last tensor."""
    torch.manual_seed(0)
    x = torch.randn(2, 5, *size).round()  # rounding makes ties
    x[0, 1, 0, 0, 0] = float("nan")
    x[1, 2] = float("-inf")
    x = x.contiguous(memory_format=torch.channels_last_3d)
    pool = optimize(SameMaxPool3d(kernel, 1))
    assert _separable_pool_pays(x, pool.stride)
    got = pool(x)
    pads = tf_same_padding_3d(size, kernel, (1, 1, 1))
    expected = F.max_pool3d(F.pad(x, pads, value=float("-inf")), kernel, 1)
    torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True)
    assert is_channels_last_3d(got) or min(size) == 1
    assert got.data_ptr() != x.data_ptr()


def test_max_pool_keeps_pytorch_kernel_where_gradients_flow() -> None:
    """With autograd (training, saliency) each window's gradient goes to one input, as in
    PyTorch's kernel; the separable pool would split it between tied maxima."""
    x = torch.zeros(1, 2, 3, 4, 4).contiguous(memory_format=torch.channels_last_3d)
    x.requires_grad_(True)
    pool = optimize(SameMaxPool3d(3, 1))
    assert not _separable_pool_pays(x, pool.stride)
    with torch.no_grad():
        assert _separable_pool_pays(x, pool.stride)
    pool(x).sum().backward()
    reference = x.detach().clone().requires_grad_(True)
    F.max_pool3d(reference, 3, 1, 1).sum().backward()
    assert torch.equal(x.grad, reference.grad)
    assert not _separable_pool_pays(torch.zeros(1, 2, 3, 4, 4), (1, 1, 1))  # channels-first
    assert not _separable_pool_pays(x.detach(), (2, 2, 2))  # strided


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("pads", [(2, 3, 2, 3, 2, 3), (0, 1, 0, 1, 1, 1), (0, 0, 1, 0, 0, 0)])
def test_zero_pad_equals_f_pad_and_puts_a_cpu_clip_channels_last(
    pads: tuple, channels_last: bool
) -> None:
    """I3D's stem pads once into channels-last: F.pad's values and gradients."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 6, 7, dtype=torch.float64, requires_grad=True)
    clip = x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x
    got, expected = _zero_pad(clip, pads), F.pad(clip, pads)
    assert torch.equal(got, expected)
    assert is_channels_last_3d(got)
    upstream = torch.randn_like(expected)
    (grad,) = torch.autograd.grad(got, x, upstream)
    (expected_grad,) = torch.autograd.grad(expected, x, upstream)
    assert torch.equal(grad, expected_grad)


@pytest.mark.parametrize("kernel", [(3, 3, 3), (1, 1, 1), (1, 7, 7), (2, 2, 2)])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("optimized", [False, True], ids=["plain", "accel"])
def test_same_conv_equals_explicit_padding(kernel: tuple, stride: int, optimized: bool) -> None:
    """Symmetric SAME padding given to the conv itself sums exactly what F.pad + conv sums."""
    torch.manual_seed(0)
    conv = SamePadConv3d(4, 5, kernel, stride)
    if optimized:
        optimize(conv)
    x = torch.randn(2, 4, 6, 9, 10)
    pads = tf_same_padding_3d(x.shape[-3:], conv.kernel_size, conv.stride)
    expected = F.conv3d(F.pad(x, pads), conv.weight, None, conv.stride)
    with torch.no_grad():
        for clip in (x, x.contiguous(memory_format=torch.channels_last_3d)):
            torch.testing.assert_close(conv(clip), expected, rtol=1e-5, atol=1e-5)


def test_i3d_computes_the_same_in_channels_last_on_a_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eval on a CPU runs channels-last (speed); the logits and endpoints are those of the
    default layout, and what the model returns is an ordinary contiguous tensor."""
    torch.manual_seed(0)
    model = optimize(build_model("i3d", preset="tiny", num_classes=7).eval())
    clip = torch.randn(2, 3, 16, 64, 64)
    layouts: list[bool] = []
    model.Conv3d_1a_7x7.register_forward_hook(
        lambda module, args, out: layouts.append(is_channels_last_3d(out))
    )
    with torch.no_grad():
        fast = model(clip)
        features = model.forward_features(clip)
        endpoints = model.forward_endpoints(clip, until="Mixed_4b")
        monkeypatch.setattr(ops, "computes_channels_last", lambda x: False)
        plain = model(clip)
        plain_features = model.forward_features(clip)
    assert layouts == [True, True, True, False, False]  # the shortcut ran, then was switched off
    assert features.is_contiguous() and endpoints["Mixed_4b"].is_contiguous()
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(features, plain_features, rtol=1e-4, atol=1e-5)


def _flops_of(fn: object) -> tuple[int, dict]:
    """Total FLOPs of ``fn()`` and their split by module and op (``FlopCounterMode``)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()  # type: ignore[operator]
    return counter.get_total_flops(), counter.get_flop_counts()


def _conv_ops(fn: object, *args: object) -> set[str]:
    """The convolution ops ``fn(*args)`` dispatches, as ``FlopCounterMode`` sees them."""
    _, counts = _flops_of(lambda: fn(*args))  # type: ignore[operator]
    return {str(op) for ops in counts.values() for op in ops}


def test_batch_one_3d_convs_stay_on_onednn_with_the_same_values_and_gradients() -> None:
    """PyTorch sends one clip with few channels (N*C*T*H < 20480) to its slow reference
    conv; conv3d calls oneDNN instead. Same values and gradients as F.conv3d, counted as a
    convolution's FLOPs, and PyTorch's own choice wherever oneDNN does not apply."""
    torch.manual_seed(0)
    x = torch.randn(1, 16, 8, 12, 12, requires_grad=True)
    weight = torch.randn(32, 16, 3, 3, 3, requires_grad=True)
    bias = torch.randn(32, requires_grad=True)
    assert _conv_ops(F.conv3d, x, weight, bias, 1, 1) == {"aten.convolution"}
    assert _conv_ops(conv3d, x, weight, bias, (1, 1, 1), (1, 1, 1)) == {"aten.mkldnn_convolution"}

    ours = conv3d(x, weight, bias, (2, 1, 1), (1, 0, 1))
    theirs = F.conv3d(x, weight, bias, (2, 1, 1), (1, 0, 1))
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    grad = torch.randn_like(ours)
    ours_grads = torch.autograd.grad(ours, (x, weight, bias), grad)
    theirs_grads = torch.autograd.grad(theirs, (x, weight, bias), grad)
    for a, b in zip(ours_grads, theirs_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-3)

    with torch.no_grad():
        flops, _ = _flops_of(lambda: conv3d(x, weight, bias, (1, 1, 1), (1, 1, 1)))
        expected, _ = _flops_of(lambda: F.conv3d(x, weight, bias, 1, 1))
    assert flops == expected == 2 * 32 * 8 * 12 * 12 * 16 * 27

    pointwise = torch.randn(32, 16, 1, 1, 1)
    assert _conv_ops(conv3d, x.double(), weight.double()) == {"aten.convolution"}
    assert _conv_ops(conv3d, x, pointwise) == {"aten.convolution"}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert _conv_ops(conv3d, x, weight) == {"aten.convolution"}
    with torch.backends.mkldnn.flags(enabled=False):
        assert _conv_ops(conv3d, x, weight) == {"aten.convolution"}
    module = Conv3d(16, 32, 3, padding=1)
    assert _conv_ops(module, x) == {"aten.mkldnn_convolution"}
    traced = torch.jit.trace(module, (x.detach(),))
    assert "mkldnn_convolution" not in str(traced.graph)
    assert "_convolution" in str(traced.graph)


def test_conv3d_module_keeps_nn_conv3d_keys_and_values() -> None:
    torch.manual_seed(0)
    reference = torch.nn.Conv3d(4, 6, 3, padding=1)
    conv = Conv3d(4, 6, 3, padding=1)
    conv.load_state_dict(reference.state_dict())
    assert list(conv.state_dict()) == ["weight", "bias"]
    x = torch.randn(1, 4, 5, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), reference(x), rtol=1e-4, atol=1e-5)
    assert _conv_ops(conv, x) == {"aten.mkldnn_convolution"}
    grouped = Conv3d(4, 6, 3, padding=1, groups=2)
    assert _conv_ops(grouped, x) == {"aten.convolution"}


def _unit_with_statistics(size: int) -> tuple[Unit3D, torch.Tensor]:
    torch.manual_seed(0)
    unit = optimize(Unit3D(4, 6, 3, 2))
    unit.bn.running_mean.uniform_(-1, 1)
    unit.bn.running_var.uniform_(0.5, 2)
    with torch.no_grad():
        unit.bn.weight.uniform_(0.5, 1.5)
        unit.bn.bias.uniform_(-1, 1)
    return unit.eval(), torch.randn(1, 4, size, size, size)


def test_eval_unit_folds_its_batchnorm_when_that_is_cheaper() -> None:
    """An eval-mode Unit3D folds its BatchNorm into the conv when the output has more values
    than the conv's weights: the same outputs and input gradients as conv then BatchNorm."""
    unit, x = _unit_with_statistics(12)
    bn_calls: list[int] = []
    unit.bn.register_forward_hook(lambda *_: bn_calls.append(1))
    x.requires_grad_(True)
    folded = unit(x)
    assert not bn_calls  # 6 * 6**3 outputs > 6 * 4 * 27 weights: folded
    unfolded = F.relu(unit.bn(unit.conv3d(x)))
    torch.testing.assert_close(folded, unfolded, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(folded)
    torch.testing.assert_close(
        torch.autograd.grad(folded, x, grad)[0],
        torch.autograd.grad(unfolded, x, grad)[0],
        rtol=1e-5,
        atol=1e-5,
    )
    weight, bias = fold_batch_norm(unit.conv3d.weight, None, unit.bn)
    scale = unit.bn.weight / torch.sqrt(unit.bn.running_var + unit.bn.eps)
    torch.testing.assert_close(bias, unit.bn.bias - unit.bn.running_mean * scale)
    torch.testing.assert_close(weight, unit.conv3d.weight * scale.view(-1, 1, 1, 1, 1))

    small_unit, small = _unit_with_statistics(3)
    small_calls: list[int] = []
    small_unit.bn.register_forward_hook(lambda *_: small_calls.append(1))
    small_unit(small)
    assert small_calls == [1]  # 6 * 2**3 outputs < 648 weights: BatchNorm as it is

    unit.train()
    before = unit.bn.running_mean.clone()
    bn_calls.clear()
    unit(x)
    assert bn_calls == [1]  # training: batch statistics, running ones updated
    assert not torch.equal(before, unit.bn.running_mean)


def test_unit_compiles_to_one_graph_with_portable_convolutions() -> None:
    """torch.compile traces the eval fold and the conv dispatch without a graph break (it
    would break on the oneDNN checks if they ran while compiling) and sees aten convs."""
    unit, x = _unit_with_statistics(12)
    graphs: list[torch.fx.GraphModule] = []

    def backend(graph: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(graph)
        return graph.forward

    compiled = torch.compile(unit, backend=backend, fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), unit(x), rtol=1e-5, atol=1e-5)
    assert len(graphs) == 1
    code = graphs[0].code
    assert "conv3d" in code and "mkldnn" not in code and "batch_norm" not in code


@pytest.mark.parametrize("size", [3, 12])  # BatchNorm as it is; folded
def test_unit_exports_with_a_free_batch_size(size: int) -> None:
    """Whether a Unit3D folds may depend on the clip's size, never on the batch size, which
    torch.export leaves symbolic with ``dynamic_shapes`` (notebook 09's exercise 3)."""
    unit, x = _unit_with_statistics(size)
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(
        unit, (x.expand(2, -1, -1, -1, -1),), dynamic_shapes=({0: batch},)
    )
    four = torch.randn(4, *x.shape[1:])
    with torch.no_grad():
        torch.testing.assert_close(program.module()(four), unit(four), rtol=1e-5, atol=1e-5)


def test_frame_models_give_the_same_scores_whatever_the_frame_layout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Eval on a CPU feeds the backbone channels-last frames and stores its conv weights
    channels-last too (speed); scores do not change, and training restores the weights'
    default layout."""
    torch.manual_seed(0)
    for name in ("single_frame", "lrcn", "xception"):
        model = optimize(build_model(name, preset="tiny", num_classes=5).eval())
        clip = torch.randn(2, 3, 16, 64, 64)
        weights = [p for p in model.backbone.parameters() if p.ndim == 4 and p.shape[1] > 1]
        assert weights and all(p.is_contiguous() for p in weights)
        with torch.no_grad():
            fast = model(clip)
            assert all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
            assert not any(p.is_contiguous() for p in weights if p.shape[-1] > 1)
            with monkeypatch.context() as patch:
                patch.setattr(ops, "computes_channels_last", lambda x: False)
                plain = model(clip)
            assert all(p.is_contiguous() for p in weights)
        torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5, msg=name)

        with torch.no_grad():
            model(clip)  # channels-last again
        model.train()
        optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        model(clip).sum().backward()  # a training call: weights in the default layout
        optimiser.step()
        assert all(p.is_contiguous() for p in weights)
        assert {id(p) for p in weights} <= {id(p) for p in optimiser.param_groups[0]["params"]}

        model.eval().zero_grad()
        with torch.inference_mode():  # the layout changes inside inference mode ...
            model(clip)
        assert all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
        grad_clip = clip.clone().requires_grad_(True)  # ... and gradients still work after,
        with warnings.catch_warnings():  # in the default layout, like their gradients
            warnings.simplefilter("error")
            model(grad_clip).sum().backward()
        assert all(p.is_contiguous() for p in weights)
        assert grad_clip.grad is not None and all(p.grad is not None for p in weights)


def test_a_compiled_frame_model_keeps_its_weights_as_they_are() -> None:
    """torch.compile (inductor) traces ops.backbone_frames without swapping parameter data
    (which inductor refuses) and computes what the eager model does."""
    torch.manual_seed(0)
    model = optimize(build_model("xception", preset="tiny", num_classes=5).eval())
    clip = torch.randn(1, 3, 16, 64, 64)
    with torch.no_grad():
        expected = model(clip)  # eager: weights now channels-last
        twin = optimize(build_model("xception", preset="tiny", num_classes=5).eval())
        twin.load_state_dict(model.state_dict())  # default layout, as after loading
        compiled = torch.compile(twin)(clip)
    torch.testing.assert_close(compiled, expected, rtol=1e-4, atol=1e-5)
    assert all(p.is_contiguous() for p in twin.parameters())


@pytest.mark.parametrize("name", ["single_frame", "xception", "i3d"])
def test_a_training_step_computes_channels_last_on_a_cpu_to_float32_accuracy(name: str):
    """CPU training of an optimised model runs channels-last (speed). Its BatchNorm sums batch
    statistics in float32, less exactly than PyTorch's default layout does, so a few small
    gradients (BatchNorm shifts whose terms nearly cancel) lose digits; the bounds keep that
    within float32 training's noise and fail on a wrong gradient or a lost layout."""
    torch.manual_seed(0)
    model = optimize(build_model(name, preset="tiny", num_classes=5).train())
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Conv3d))
    layouts: list[bool] = []
    first_conv.register_forward_hook(  # the output's layout is the one the conv computed in
        lambda module, args, out: layouts.append(
            is_channels_last_3d(out)
            if out.ndim == 5
            else out.is_contiguous(memory_format=torch.channels_last)
        )
    )
    clips, labels = torch.rand(4, 3, 16, 64, 64) * 2 - 1, torch.tensor([0, 1, 2, 3])

    def gradients(net: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        torch.manual_seed(1)  # the same dropout masks and sampled frames in both runs
        loss = nn.functional.cross_entropy(net(clips.to(dtype)), labels)
        loss.backward()
        return {k: p.grad.double() for k, p in net.named_parameters() if p.grad is not None}

    reference = gradients(copy.deepcopy(model).double(), torch.float64)
    layouts.clear()  # the float64 copy shares the hook; PyTorch's float64 convs are not ours
    ours = gradients(model, torch.float32)
    assert layouts and all(layouts)
    assert ours.keys() == reference.keys()
    errors = {k: ((ours[k] - reference[k]).norm() / reference[k].norm()).item() for k in ours}
    worst = max(errors, key=errors.get)
    # Seen over seeds and 1-2 threads: up to 2e-2 per tensor, 7e-3 in all; 1e-3 channels-first.
    assert errors[worst] < 5e-2, (worst, errors[worst])
    difference = torch.cat([(ours[k] - reference[k]).flatten() for k in ours])
    assert difference.norm() / torch.cat([g.flatten() for g in reference.values()]).norm() < 2e-2
