"""Every exercise checker of notebooks 00-04, 08 and 09 refuses a wrong answer and says why.

Each test gives the checker a wrong answer (and, where it is cheap, the right one computed
independently here): a checker that accepts anything would fail it. The notebooks' hidden
solution cells, run by tests/test_notebooks.py, prove the right answers pass.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from exercise_checks import accepted, refused

import hartutor  # noqa: F401  (first: torchvision and timm import cleanly after it)
from hartutor.course import check, exercises
from hartutor.metrics import ClassificationResult
from hartutor.synth import CLASS_NAMES, REVERSAL_PAIRS

OWN = ("00-", "01-", "02-", "03-", "04-", "08-", "09-")


def test_every_exercise_of_these_notebooks_is_registered():
    ids = {i for i in exercises() if i.startswith(OWN)}
    for notebook in ("00", "01", "02", "03", "04", "08", "09"):
        assert any(i.startswith(notebook) for i in ids), notebook


def test_unanswered_is_not_an_error(capsys):
    assert check("00-clip-seconds", ...) is False
    assert "not answered yet" in capsys.readouterr().out


# 00 ---------------------------------------------------------------------------------------


def test_00_reversals(capsys):
    right = {pair: True for pair in REVERSAL_PAIRS} | {("walk", "run"): False}
    accepted("00-reversals", right)
    wrong = right | {("walk", "run"): True}
    assert "walk" in refused(capsys, "00-reversals", wrong)
    assert "lacks" in refused(capsys, "00-reversals", {REVERSAL_PAIRS[0]: True})


def test_00_clip_seconds(capsys):
    from hartutor.synth import render_clip

    clip = render_clip("wave", seed=3)
    accepted("00-clip-seconds", len(clip.frames) / clip.params.fps)
    assert "multiplied" in refused(capsys, "00-clip-seconds", len(clip.frames) * clip.params.fps)
    assert "number of frames" in refused(capsys, "00-clip-seconds", len(clip.frames))
    assert "number" in refused(capsys, "00-clip-seconds", "one second")


def test_00_confusable(capsys):
    reversal = {name for pair in REVERSAL_PAIRS for name in pair}
    accepted("00-confusable", reversal)
    assert "left out" in refused(capsys, "00-confusable", {"walk", "run"})
    assert "poses of their own" in refused(capsys, "00-confusable", reversal | {"clap"})
    assert "not classes" in refused(capsys, "00-confusable", reversal | {"dance"})


# 01 ---------------------------------------------------------------------------------------


def _report(within: float, per_pair: int = 20) -> ClassificationResult:
    """A result in which every reversal pair has the given within-pair accuracy."""
    k = len(CLASS_NAMES)
    confusion = torch.zeros(k, k, dtype=torch.long)
    index = {name: i for i, name in enumerate(CLASS_NAMES)}
    right = round(within * per_pair)
    for a, b in REVERSAL_PAIRS:
        for x, y in ((a, b), (b, a)):
            confusion[index[x], index[x]] = right
            confusion[index[x], index[y]] = per_pair - right
    for name in ("walk", "run", "wave", "clap", "jumping_jacks", "punch", "kick"):
        confusion[index[name], index[name]] = per_pair
    total = int(confusion.sum())
    top1 = float(confusion.diagonal().sum()) / total
    return ClassificationResult(total, {1: top1}, confusion, class_names=list(CLASS_NAMES))


def test_01_reversal_gap(capsys):
    from hartutor.models import build_model

    torch.manual_seed(0)
    model = build_model("single_frame", preset="tiny", num_classes=len(CLASS_NAMES)).eval()
    x = torch.rand(1, *model.input_spec.shape)
    with torch.no_grad():
        accepted(
            "01-reversal-gap", float((model(x) - model(x.flip(2))).abs().max()), model=model, clip=x
        )
    assert "dimension 2" in refused(capsys, "01-reversal-gap", 0.3, model=model, clip=x)


def test_01_within_pair(capsys):
    report = _report(0.5)
    accepted("01-within-pair", 0.5, report=report)
    assert "fraction" in refused(capsys, "01-within-pair", 50, report=report)
    assert "top-1" in refused(capsys, "01-within-pair", report.top1, report=report)
    assert refused(capsys, "01-within-pair", 0.9, report=report)


def test_01_late_blind(capsys):
    from hartutor.models import build_model

    torch.manual_seed(0)
    model = build_model("karpathy", fusion="late", preset="tiny", num_classes=len(CLASS_NAMES))
    accepted("01-late-blind", list(range(1, 15)), model=model)
    accepted("01-late-blind", torch.arange(1, 15), model=model)
    assert "does see" in refused(capsys, "01-late-blind", [0, 15], model=model)
    assert "frame 0" in refused(capsys, "01-late-blind", list(range(15)), model=model)
    assert "missing" in refused(capsys, "01-late-blind", [1, 2, 3], model=model)
    assert "one frame" in refused(capsys, "01-late-blind", [], model=model)
    assert "list" in refused(capsys, "01-late-blind", 14, model=model)


# 02 ---------------------------------------------------------------------------------------


def _lrcn_case():
    from hartutor.models import build_model

    torch.manual_seed(0)
    model = build_model("lrcn", preset="tiny", num_classes=len(CLASS_NAMES), aggregate="last")
    x = torch.rand(1, *model.input_spec.shape)
    return model.eval(), x, torch.rand_like(x)


def test_02_frame_influence(capsys):
    from hartutor.exercises.nb02 import frame_influence

    model, x, noise = _lrcn_case()
    truth = frame_influence(model, x, noise)
    assert truth[0] > 1e-12 and len(truth) == x.shape[2]
    context = {"model": model, "clip": x, "noise": noise}
    accepted("02-frame-influence", truth, **context)
    assert "backwards" in refused(capsys, "02-frame-influence", truth[::-1], **context)
    assert "values" in refused(capsys, "02-frame-influence", truth[:-1], **context)
    assert refused(capsys, "02-frame-influence", [0.0] * len(truth), **context)


def test_02_within_pair_reversed(capsys):
    diagnostics = SimpleNamespace(results={"original": _report(0.9), "reversed": _report(0.1)})
    accepted("02-within-pair-reversed", {"original": 0.9, "reversed": 0.1}, diagnostics=diagnostics)
    swapped = {"original": 0.1, "reversed": 0.9}
    assert "swapped" in refused(capsys, "02-within-pair-reversed", swapped, diagnostics=diagnostics)
    percent = {"original": 90, "reversed": 10}
    assert "percent" in refused(capsys, "02-within-pair-reversed", percent, diagnostics=diagnostics)
    assert "lacks" in refused(
        capsys, "02-within-pair-reversed", {"original": 0.9}, diagnostics=diagnostics
    )


# 03 ---------------------------------------------------------------------------------------


def test_03_backward_flow(capsys):
    from hartutor.exercises.nb03 import backward_forward_gap
    from hartutor.synth import render_clip

    sit = render_clip("sit_down", seed=1, with_flow=True)
    stand = render_clip("stand_up", seed=1, with_flow=True)
    last, k = len(sit.frames) - 1, 5
    mask = (sit.parts[last - k] >= 0) & (sit.parts[last - 1 - k] >= 0)
    gap = float(np.abs(stand.flow[:, k] + sit.flow[:, last - 1 - k])[:, mask].mean())
    assert gap == pytest.approx(backward_forward_gap(1))
    accepted("03-backward-flow", gap, seed=1)
    assert "every pixel" in refused(
        capsys, "03-backward-flow", backward_forward_gap(1, on_figure=False), seed=1
    )
    assert "different pixels" in refused(capsys, "03-backward-flow", 0.0, seed=1)


def test_03_dis_vs_tvl1(capsys):
    from hartutor.flow import FlowScore

    scores = [FlowScore("tvl1", 0.4, 1.5, 10.0, 60), FlowScore("dis", 0.5, 1.7, 2000.0, 60)]
    accepted("03-dis-vs-tvl1", (200.0, 1.25), scores=scores)
    assert "inverted" in refused(capsys, "03-dis-vs-tvl1", (0.005, 1.25), scores=scores)
    assert "inverted" in refused(capsys, "03-dis-vs-tvl1", (200.0, 0.8), scores=scores)
    assert "figure" in refused(capsys, "03-dis-vs-tvl1", (200.0, 1.7 / 1.5), scores=scores)
    assert "pair" in refused(capsys, "03-dis-vs-tvl1", 200.0, scores=scores)


def test_03_temporal_perturbations(capsys, monkeypatch):
    from hartutor.exercises import nb03

    truth = {"original": 0.9, "reversed": 0.2, "shuffled": 0.7}
    monkeypatch.setattr(nb03, "temporal_perturbations", lambda model, data, seed: truth)
    accepted("03-temporal-perturbations", truth, model=None, data=None)
    wrong = truth | {"shuffled": 0.2}
    assert "shuffled" in refused(capsys, "03-temporal-perturbations", wrong, model=None, data=None)
    percent = {k: 100 * v for k, v in truth.items()}
    assert "percent" in refused(capsys, "03-temporal-perturbations", percent, model=None, data=None)


def test_03_tsn_test_frames(capsys):
    # 16 frames in 5 segments of 3.2: centres 1.6, 4.8, 8.0, 11.2, 14.4.
    accepted("03-tsn-test-frames", [1, 4, 8, 11, 14], num_frames=16, num_segments=5)
    firsts = [0, 3, 6, 9, 12]
    assert "first frames" in refused(capsys, "03-tsn-test-frames", firsts, num_segments=5)
    assert "from 0" in refused(capsys, "03-tsn-test-frames", [2, 5, 9, 12, 15], num_segments=5)
    assert "segment" in refused(capsys, "03-tsn-test-frames", [1, 4, 8], num_segments=5)
    assert "centre" in refused(capsys, "03-tsn-test-frames", [1.6, 4.8, 8, 11.2, 14.4])


def test_03_fusion_params(capsys):
    from hartutor.exercises.nb03 import fusion_layer_parameters

    c = 64  # conv5 of the tiny CNN-M streams
    assert fusion_layer_parameters("conv3d") == 27 * 2 * c * c + c
    accepted("03-fusion-params", 27 * 2 * c * c + c, channels=c)
    assert "2C input" in refused(capsys, "03-fusion-params", 27 * c * c + c, channels=c)
    assert "1x1" in refused(capsys, "03-fusion-params", 2 * c * c + c, channels=c)
    assert "bias" in refused(capsys, "03-fusion-params", 27 * 2 * c * c, channels=c)
    assert "number" in refused(capsys, "03-fusion-params", "many", channels=c)


def test_03_flow_budget(capsys):
    from hartutor.flow import FlowRate

    rates = [FlowRate("tvl1", (224, 224), 0.5, 2), FlowRate("tvl1", (64, 64), 5.0, 2)]
    accepted("03-flow-budget", 50.0, rates=rates)
    assert "Inverted" in refused(capsys, "03-flow-budget", 0.02, rates=rates)
    assert "tiny frame size" in refused(capsys, "03-flow-budget", 5.0, rates=rates)
    assert "per flow field" in refused(capsys, "03-flow-budget", 2.0, rates=rates)


# 04 ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c3d_rows():
    from hartutor.models import build_model
    from hartutor.params import parameter_breakdown

    with torch.device("meta"):
        return parameter_breakdown(build_model("c3d", num_classes=101))


def test_04_conv3d_formulas(capsys, c3d_rows):
    row = next(r for r in c3d_rows if r.name == "conv2a")
    _, c_out, t, h, w = row.output_shape
    c_in = 64
    params = 27 * c_in * c_out + c_out
    flops = 2 * 27 * c_in * c_out * t * h * w
    assert (params, flops) == (row.params, row.flops)
    accepted("04-conv3d-formulas", (params, flops), rows=c3d_rows)
    assert "bias" in refused(capsys, "04-conv3d-formulas", (params - c_out, flops), rows=c3d_rows)
    assert "multiply-add" in refused(
        capsys, "04-conv3d-formulas", (params, flops // 2), rows=c3d_rows
    )


def test_04_c3d_224(capsys):
    assert "changed layers" in refused(
        capsys, "04-c3d-224", {"changed": {"fc6", "fc7"}, "flops_ratio": 4.0}
    )
    assert "dict" in refused(capsys, "04-c3d-224", 4.0)
    from hartutor.exercises.nb04 import _c3d_rows

    _, small = _c3d_rows()
    _, big = _c3d_rows(input_size=(16, 224, 224))
    accepted("04-c3d-224", {"changed": {"fc6"}, "flops_ratio": big / small})
    assert "inverted" in refused(
        capsys, "04-c3d-224", {"changed": {"fc6"}, "flops_ratio": small / big}
    )


def test_04_slim_c3d(capsys):
    from hartutor.models.c3d import C3D
    from hartutor.params import count_parameters

    with torch.device("meta"):
        full = count_parameters(C3D(num_classes=101))
        slim = count_parameters(C3D(num_classes=101, fc_features=1024))
    accepted("04-slim-c3d", slim)
    assert "original" in refused(capsys, "04-slim-c3d", full)
    assert "share" in refused(capsys, "04-slim-c3d", slim / full)


def test_04_ttl_cost_refuses_the_ttls_alone_and_a_total(capsys):
    from hartutor.exercises.nb04 import _t3d_counts

    counts = _t3d_counts()
    extra = counts["t3d"] - counts["plain"]
    assert extra > 0
    accepted("04-ttl-cost", extra)
    assert "subtract" in refused(capsys, "04-ttl-cost", counts["ttls"])
    assert "difference" in refused(capsys, "04-ttl-cost", counts["t3d"])
    assert "sign" in refused(capsys, "04-ttl-cost", -extra)
    assert "ratio" in refused(capsys, "04-ttl-cost", counts["t3d"] / counts["plain"])


# 08 ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fusion_case():
    from hartutor.course import shipped_checkpoint
    from hartutor.synth import render_clip
    from hartutor.widgets import Clip, clip_inputs, load_model

    model = load_model(shipped_checkpoint("i3d_xception_fusion_tiny.pt")).model.eval()
    spec = model.input_spec
    clip = render_clip("sit_down", 0, num_frames=spec.num_frames, size=spec.size)
    return model, clip_inputs(model, Clip("sit_down", clip.frames)), clip.label


def test_08_ig_completeness(capsys, fusion_case):
    model, inputs, target = fusion_case
    x = model.stream_input("i3d", inputs["video"][None])
    stream = model.streams["i3d"]
    with torch.no_grad():
        score = float(stream(x)[0, target])
        baseline = float(stream(torch.zeros_like(x))[0, target])
    context = {"model": model, "inputs": inputs, "target": target}
    accepted("08-ig-completeness", score - baseline, **context)
    assert "baseline" in refused(capsys, "08-ig-completeness", score, **context)
    assert "sign" in refused(capsys, "08-ig-completeness", baseline - score, **context)


def test_08_weighted_share(capsys, fusion_case):
    model, inputs, target = fusion_case
    with torch.no_grad():
        logits = model.forward_features(inputs["video"][None])
    p = {name: float(z.softmax(-1)[0, target]) for name, z in logits.items()}
    context = {"model": model, "inputs": inputs, "target": target}
    accepted("08-weighted-share", 3 * p["i3d"] / (3 * p["i3d"] + p["xception"]), **context)
    equal = p["i3d"] / (p["i3d"] + p["xception"])
    assert "equal weights" in refused(capsys, "08-weighted-share", equal, **context)
    assert "weight's share" in refused(capsys, "08-weighted-share", 0.75, **context)


def test_08_motion_or_hump(capsys, monkeypatch):
    from hartutor.exercises import nb08

    truth = {"motion": 0.7, "hump": 0.85}
    monkeypatch.setattr(nb08, "motion_and_hump", lambda model: truth)
    accepted("08-motion-or-hump", truth, model=None)
    assert "swapped" in refused(
        capsys, "08-motion-or-hump", {"motion": 0.85, "hump": 0.7}, model=None
    )
    assert "hump" in refused(capsys, "08-motion-or-hump", {"motion": 0.7, "hump": 0.1}, model=None)


def test_08_motion_and_hump_measures_the_stream(fusion_case):
    """The checker's truth comes from explaining the model, not from a constant."""
    from hartutor.exercises.nb08 import motion_and_hump

    model, _, _ = fusion_case
    values = motion_and_hump(model, seeds=(3,))
    assert set(values) == {"motion", "hump"} and all(-1 <= v <= 1 for v in values.values())


def test_08_object_mass(capsys):
    from hartutor import transfer
    from hartutor.exercises.nb08 import object_mass_truth

    world, names = transfer.world_fusion()
    truth = object_mass_truth(world, names)
    context = {"model": world, "class_names": names}
    assert truth["enrichment"] == pytest.approx(truth["mass"] / truth["area"])
    accepted("08-object-mass", truth["enrichment"], **context)
    assert "mass alone" in refused(capsys, "08-object-mass", truth["mass"], **context)
    assert "area" in refused(capsys, "08-object-mass", truth["area"], **context)
    assert "temporal" in refused(capsys, "08-object-mass", truth["temporal"], **context)
    assert "n_steps" in refused(capsys, "08-object-mass", 1.0, **context)


# 09 ---------------------------------------------------------------------------------------


def _small_net() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv3d(3, 4, 3, padding=1),
        torch.nn.BatchNorm3d(4),
        torch.nn.AdaptiveAvgPool3d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 5),
    )
    with torch.no_grad():
        net[0].weight[0] *= 50  # one channel of large weights: per-tensor scales suffer there
    return net.eval()


def test_09_buffer_bytes(capsys):
    from hartutor.edge import state_dict_bytes

    net = _small_net()
    params = sum(p.numel() for p in net.parameters())
    truth = state_dict_bytes(net, "float32") - 4 * params
    assert truth == 4 * 8 + 8  # running mean and variance of 4 channels, one int64 counter
    accepted("09-buffer-bytes", truth, model=net)
    assert "int64" in refused(capsys, "09-buffer-bytes", 4 * 9, model=net)
    assert "bytes" in refused(capsys, "09-buffer-bytes", 9, model=net)


def test_09_worst_per_tensor(capsys):
    from hartutor.exercises.nb09 import per_tensor_losses

    net = _small_net()
    ratios = per_tensor_losses(net)
    worst = max(ratios, key=ratios.__getitem__)
    accepted("09-worst-per-tensor", worst, model=net)
    other = next(k for k in ratios if k != worst)
    assert "another weight" in refused(capsys, "09-worst-per-tensor", other, model=net)
    assert "not one of" in refused(capsys, "09-worst-per-tensor", "nope.weight", model=net)


def test_09_dynamic_batch(capsys, tmp_path):
    from hartutor.edge import export_and_verify

    net = _small_net()
    clip = torch.rand(1, 3, 4, 8, 8)
    fixed = export_and_verify(net, clip, tmp_path / "fixed.pt2")
    assert "dynamic_batch" in refused(
        capsys, "09-dynamic-batch", str(fixed.path), model=net, clip=clip
    )
    free = export_and_verify(net, clip, tmp_path / "free.pt2", dynamic_batch=True)
    accepted("09-dynamic-batch", str(free.path), model=net, clip=clip)
    other = _small_net()
    with torch.no_grad():
        other[4].weight.add_(1.0)
    assert "differ" in refused(capsys, "09-dynamic-batch", str(free.path), model=other, clip=clip)
    assert "path" in refused(
        capsys, "09-dynamic-batch", str(tmp_path / "missing.pt2"), model=net, clip=clip
    )
