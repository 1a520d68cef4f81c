"""The checkers of notebooks 05 and 06 accept the right answer and explain a wrong one.

Each test computes the right answer here, independently of the checker where it is cheap (a
kernel built by hand, TensorFlow's padding formula, the cost formula, a model with its separable
convolutions replaced), and gives the checker the typical wrong ones: a checker that accepted
anything would fail. The notebooks' hidden solution cells, run by tests/test_notebooks.py,
prove the notebooks' own answers pass.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from exercise_checks import accepted, refused
from torch import nn

import hartutor  # noqa: F401  (first: torchvision and timm import cleanly after it)
from hartutor.course import check, exercises
from hartutor.models.frame import FrameClassifier
from hartutor.models.xception import MiniXception

IDS = (
    "05-centre-exact",
    "05-centre-reads",
    "05-same-sides",
    "05-stem-exact",
    "05-within-pair",
    "06-separable-ratio",
    "06-standard-count",
    "06-any-order",
    "06-images-named",
)


def test_every_exercise_of_notebooks_05_and_06_is_registered():
    assert set(IDS) <= set(exercises())


@pytest.mark.parametrize("exercise_id", IDS)
def test_unanswered_is_not_an_error(capsys, exercise_id: str):
    assert check(exercise_id, ...) is False
    assert "not answered yet" in capsys.readouterr().out


# 05 ---------------------------------------------------------------------------------------


@pytest.fixture
def conv2d() -> nn.Conv2d:
    torch.manual_seed(0)
    return nn.Conv2d(3, 4, kernel_size=3, padding=1)


def _centre_by_hand(conv2d: nn.Conv2d) -> torch.Tensor:
    """The centre-initialised 3-tap kernel, built without inflate_conv2d."""
    weight = torch.zeros(conv2d.out_channels, conv2d.in_channels, 3, *conv2d.kernel_size)
    weight[:, :, 1] = conv2d.weight.detach()
    return weight


def test_05_centre_exact(capsys, conv2d):
    frame = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    video = frame.unsqueeze(2).expand(-1, -1, 16, -1, -1)
    with torch.no_grad():
        out3d = F.conv3d(video, _centre_by_hand(conv2d), conv2d.bias, padding=1)
        out2d = conv2d(frame)
    error = (out3d - out2d.unsqueeze(2)).abs().amax(dim=(0, 1, 3, 4)) / out2d.abs().max()
    right = {t for t, e in enumerate(error.tolist()) if e < 1e-6}
    assert right == set(range(16))
    accepted("05-centre-exact", right, conv2d=conv2d, frame=frame)
    accepted("05-centre-exact", list(range(16)), conv2d=conv2d, frame=frame)
    repeat_and_divide = set(range(1, 15))
    assert "repeat-and-divide" in refused(
        capsys, "05-centre-exact", repeat_and_divide, conv2d=conv2d, frame=frame
    )
    assert "count from 0" in refused(
        capsys, "05-centre-exact", set(range(1, 17)), conv2d=conv2d, frame=frame
    )
    assert "compare each time step" in refused(
        capsys, "05-centre-exact", {0, 15}, conv2d=conv2d, frame=frame
    )
    assert "set of whole numbers" in refused(
        capsys, "05-centre-exact", "all", conv2d=conv2d, frame=frame
    )
    assert "run the cells" in refused(capsys, "05-centre-exact", right)


def test_05_centre_reads(capsys, conv2d):
    clip = torch.rand(1, 3, 16, 8, 8, generator=torch.Generator().manual_seed(2))
    kernel = _centre_by_hand(conv2d)
    with torch.no_grad():
        step8 = F.conv3d(clip, kernel, conv2d.bias, padding=1)[:, :, 8]
        right = set()
        for t in range(16):
            changed = clip.clone()
            changed[:, :, t] += 1
            if (F.conv3d(changed, kernel, conv2d.bias, padding=1)[:, :, 8] - step8).abs().max() > 0:
                right.add(t)
    assert right == {8}
    accepted("05-centre-reads", right, conv2d=conv2d)
    assert "repeat-and-divide" in refused(capsys, "05-centre-reads", {7, 8, 9}, conv2d=conv2d)
    assert "change one input frame" in refused(capsys, "05-centre-reads", {8, 9}, conv2d=conv2d)
    assert "whole numbers" in refused(capsys, "05-centre-reads", {8.5}, conv2d=conv2d)


def _tf_same(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding, from its documented formula (not hartutor's)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def test_05_same_sides(capsys):
    right = {side for side in range(200, 241) if _tf_same(side, 7, 2) == (3, 3)}
    assert right and all(side % 2 == 1 for side in right)
    accepted("05-same-sides", right)
    accepted("05-same-sides", range(201, 241, 2))
    evens = set(range(200, 241, 2))
    assert "wrong at side(s) [200, 201]" in refused(capsys, "05-same-sides", evens)
    assert "output sizes agree" in refused(capsys, "05-same-sides", set(range(200, 241)))
    assert "200 to 240" in refused(capsys, "05-same-sides", right | {199})


def test_05_stem_exact(capsys):
    before, after = _tf_same(16, 7, 2)
    outputs = math.ceil(16 / 2)
    right = {j for j in range(outputs) if 2 * j - before >= 0 and 2 * j - before + 6 <= 15}
    assert (before, after) == (2, 3) and right == {1, 2, 3, 4, 5}
    accepted("05-stem-exact", right)
    symmetric = {j for j in range(outputs) if 2 * j - 3 >= 0 and 2 * j - 3 + 6 <= 15}
    assert "symmetric padding" in refused(capsys, "05-stem-exact", symmetric)
    frames = {f for j in right for f in range(2 * j - before, 2 * j - before + 7)}
    assert "not frames" in refused(capsys, "05-stem-exact", frames)
    assert "output step j reads" in refused(capsys, "05-stem-exact", set(range(outputs)))


# 06 ---------------------------------------------------------------------------------------

LAYERS = ((32, 64, 3), (728, 728, 3), (256, 512, 5))


def test_06_separable_ratio(capsys):
    right = {(c_in, c_out, k): 1 / c_out + 1 / k**2 for c_in, c_out, k in LAYERS}
    accepted("06-separable-ratio", right)
    assert "standard / separable" in refused(
        capsys, "06-separable-ratio", {key: 1 / v for key, v in right.items()}
    )
    assert "percentage" in refused(
        capsys, "06-separable-ratio", {key: 100 * v for key, v in right.items()}
    )
    only_pointwise = {(c_in, c_out, k): 1 / k**2 for c_in, c_out, k in LAYERS}
    assert "only the pointwise" in refused(capsys, "06-separable-ratio", only_pointwise)
    only_depthwise = right | {(728, 728, 3): 1 / 728}
    assert "only the depthwise" in refused(capsys, "06-separable-ratio", only_depthwise)
    assert "is off" in refused(capsys, "06-separable-ratio", right | {(256, 512, 5): 0.05})
    assert "keys" in refused(capsys, "06-separable-ratio", {(32, 64, 3): right[(32, 64, 3)]})
    assert "number" in refused(capsys, "06-separable-ratio", right | {(32, 64, 3): "small"})


def _with_standard_convolutions(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in which every SeparableConv2d is one bias-free k x k Conv2d."""
    import copy

    from timm.models.xception import SeparableConv2d

    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, SeparableConv2d):
                conv = child.conv1
                standard = nn.Conv2d(
                    conv.in_channels,
                    child.pointwise.out_channels,
                    conv.kernel_size,
                    conv.stride,
                    conv.padding,
                    bias=False,
                )
                setattr(module, child_name, standard)
    return model


def test_06_standard_count(capsys):
    from timm.models.xception import SeparableConv2d

    model = MiniXception(num_classes=5)
    real = sum(p.numel() for p in model.parameters())
    replaced = _with_standard_convolutions(model)
    assert not any(isinstance(m, SeparableConv2d) for m in replaced.modules())
    right = sum(p.numel() for p in replaced.parameters())
    assert right > 2 * real  # the separable convolutions did save parameters
    accepted("06-standard-count", right, model=model)
    separables = [m for m in model.modules() if isinstance(m, SeparableConv2d)]
    as_separable = sum(p.numel() for m in separables for p in m.parameters())
    as_standard = right - real + as_separable
    assert "real count" in refused(capsys, "06-standard-count", real, model=model)
    assert "ratio" in refused(capsys, "06-standard-count", right / real, model=model)
    assert "counts only" in refused(capsys, "06-standard-count", as_standard, model=model)
    assert "kept the separable" in refused(
        capsys, "06-standard-count", real + as_standard, model=model
    )
    biases = sum(m.pointwise.out_channels for m in separables)
    assert "no bias" in refused(capsys, "06-standard-count", right + biases, model=model)
    assert "subtract" in refused(capsys, "06-standard-count", right + 1, model=model)
    assert "run the cells" in refused(capsys, "06-standard-count", right)
    assert "legacy_xception" in refused(capsys, "06-standard-count", right, model=nn.Linear(2, 2))


def test_06_any_order(capsys):
    torch.manual_seed(0)
    clip = torch.randn(1, 3, 8, 32, 32)
    every_frame = FrameClassifier(MiniXception(num_classes=4)).eval()
    accepted("06-any-order", True, model=every_frame, clip=clip)
    assert "randperm" in refused(capsys, "06-any-order", False, model=every_frame, clip=clip)
    assert every_frame.consensus == "softmax_mean"  # the check puts the consensus back
    assert "True or False" in refused(capsys, "06-any-order", "yes", model=every_frame, clip=clip)
    assert "True or False" in refused(capsys, "06-any-order", 1, model=every_frame, clip=clip)
    # Two segment centres in eval mode: a permutation changes the frames scored, so the
    # checker's own measurement says False here, and True is refused.
    two_frames = FrameClassifier(MiniXception(num_classes=4), num_segments=2).eval()
    accepted("06-any-order", False, model=two_frames, clip=clip)
    refused(capsys, "06-any-order", True, model=two_frames, clip=clip)
    assert "run the cells" in refused(capsys, "06-any-order", True)
