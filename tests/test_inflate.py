"""Inflation (hartutor.models.inflate): 2D -> 3D layers, the boring-video fixed point, and
the ImageNet-inflated I3D from torchvision's GoogLeNet."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import hartutor  # noqa: F401  (before torchvision)
from hartutor.errors import HartutorError
from hartutor.models.i3d import InceptionI3d, i3d
from hartutor.models.inflate import (
    InflatedConv3d,
    InflationError,
    TemporalSpec,
    i3d_from_googlenet,
    inflate_batchnorm2d,
    inflate_conv2d,
    inflate_model,
    inflate_pool2d,
    inflate_still_twin,
    still_kernel,
)


def _calibrate_bn(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """Give BatchNorm real statistics (from one batch) so eval outputs depend on the input;
    with freshly initialised statistics deep nets map every input to about the same output."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
            if module.affine:
                with torch.no_grad():
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.2, 0.2)
    model.train()
    with torch.no_grad():
        model(images)
    return model.eval()


def _small_cnn() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 5),
    )
    return _calibrate_bn(net, torch.randn(8, 3, 16, 16))


def _boring(frame: torch.Tensor, frames: int) -> torch.Tensor:
    return frame.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()


# ------------------------------------------------------------------------ single layers


def test_inflate_conv2d_repeats_and_divides() -> None:
    conv = nn.Conv2d(3, 4, (3, 5), stride=(2, 1), padding=(1, 2), dilation=1, groups=1)
    conv3d = inflate_conv2d(conv, 3, time_stride=2)
    assert isinstance(conv3d, nn.Conv3d) and conv3d.weight.shape == (4, 3, 3, 3, 5)
    assert conv3d.stride == (2, 2, 1) and conv3d.padding == (1, 1, 2)
    for t in range(3):
        torch.testing.assert_close(conv3d.weight[:, :, t], conv.weight / 3)
    torch.testing.assert_close(conv3d.bias, conv.bias)
    assert torch.allclose(conv3d.weight.sum(2), conv.weight)

    centred = inflate_conv2d(conv, 3, center=True)
    torch.testing.assert_close(centred.weight[:, :, 1], conv.weight)
    assert centred.weight[:, :, 0].abs().sum() == 0 and centred.weight[:, :, 2].abs().sum() == 0


def test_inflate_conv2d_keeps_groups_and_padding_modes() -> None:
    conv = nn.Conv2d(4, 8, 3, padding=1, groups=2, padding_mode="reflect")
    conv3d = inflate_conv2d(conv, 3, time_padding_mode="replicate")
    assert isinstance(conv3d, InflatedConv3d) and conv3d.groups == 2
    assert conv3d.padding == (0, 0, 0)  # both paddings are applied explicitly in forward
    frame = torch.randn(1, 4, 9, 9)
    out = conv3d(_boring(frame, 5))
    for t in range(5):
        torch.testing.assert_close(out[:, :, t], conv(frame))


def test_inflate_batchnorm_and_pools() -> None:
    bn = nn.BatchNorm2d(6, eps=1e-3, momentum=0.01)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
    bn3d = inflate_batchnorm2d(bn.eval())
    assert isinstance(bn3d, nn.BatchNorm3d) and (bn3d.eps, bn3d.momentum) == (1e-3, 0.01)
    torch.testing.assert_close(bn3d.running_var, bn.running_var)
    assert not bn3d.training
    frame = torch.randn(2, 6, 4, 4)
    torch.testing.assert_close(bn3d(_boring(frame, 3))[:, :, 1], bn(frame))

    pool = inflate_pool2d(nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), 3, time_stride=2)
    assert isinstance(pool, nn.MaxPool3d)
    assert (pool.kernel_size, pool.stride, pool.padding) == ((3, 3, 3), (2, 2, 2), (0, 1, 1))
    assert pool.ceil_mode
    avg = inflate_pool2d(nn.AvgPool2d(2, count_include_pad=False))
    assert isinstance(avg, nn.AvgPool3d) and avg.kernel_size == (1, 2, 2)
    assert avg.count_include_pad is False


# -------------------------------------------------------------- the boring-video fixed point


def _features(model: nn.Module) -> nn.Module:
    return model[:7]  # up to the last ReLU, before global pooling


def test_boring_video_fixed_point_is_exact_with_replicate_padding() -> None:
    net2d = _small_cnn()
    net3d = inflate_model(net2d, time_padding_mode="replicate").eval()
    assert net3d[0].weight.shape == (8, 3, 3, 3, 3)  # "spatial": 3x3 -> 3x3x3
    frame = torch.randn(2, 3, 16, 16)
    video = _boring(frame, 6)
    with torch.no_grad():
        maps2d, maps3d = _features(net2d)(frame), _features(net3d)(video)
        for t in range(6):
            torch.testing.assert_close(maps3d[:, :, t], maps2d, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(net3d(video), net2d(frame), rtol=1e-5, atol=1e-5)


def test_boring_video_with_zero_padding_is_exact_only_inside() -> None:
    """Two stacked 3-tap convs: the output at t sees frames t-2..t+2, so with 6 frames
    t = 2, 3 never touch the zero padding and are exact; t = 0, 1, 4, 5 see zeros."""
    net2d = _small_cnn()
    net3d = inflate_model(net2d, time_padding_mode="zeros").eval()
    frame = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        maps2d, maps3d = _features(net2d)(frame), _features(net3d)(_boring(frame, 6))
        for t in (2, 3):
            torch.testing.assert_close(maps3d[:, :, t], maps2d, rtol=1e-5, atol=1e-5)
        for t in (0, 1, 4, 5):
            assert (maps3d[:, :, t] - maps2d).abs().max() > 1e-3
        # the clip-level output pools the edges too, so it is not the 2D output
        assert (net3d(_boring(frame, 6)) - net2d(frame)).abs().max() > 1e-4


def test_centre_initialisation_is_exact_even_with_zero_padding() -> None:
    net2d = _small_cnn()
    net3d = inflate_model(net2d, time_padding_mode="zeros", center=True).eval()
    frame = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(net3d(_boring(frame, 4)), net2d(frame), rtol=1e-5, atol=1e-5)


def test_time_kernel_table_and_temporal_pooling() -> None:
    net2d = _small_cnn()
    net3d = inflate_model(
        net2d,
        time_kernels={"0": 5, "3": TemporalSpec(kernel=2, stride=2), "4": TemporalSpec(1)},
        time_padding_mode="replicate",
    ).eval()
    assert net3d[0].kernel_size == (5, 3, 3) and net3d[0].padding == (0, 1, 1)
    assert net3d[3].kernel_size == (2, 2, 2) and net3d[4].kernel_size == (1, 3, 3)
    frame = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert _features(net3d)(_boring(frame, 8)).shape[2] == 4  # time halved by the pool
        torch.testing.assert_close(net3d(_boring(frame, 8)), net2d(frame), rtol=1e-5, atol=1e-5)
    frame_by_frame = inflate_model(net2d, conv_time_kernel=1)
    assert frame_by_frame[0].kernel_size == (1, 3, 3)


def test_torchvision_resnet18_inflates() -> None:
    """A real 2D network with a custom block (BasicBlock), residuals and a ceil-free stem."""
    resnet = torchvision.models.resnet18(weights=None, num_classes=7)
    resnet = _calibrate_bn(resnet, torch.randn(4, 3, 64, 64))
    resnet3d = inflate_model(resnet, time_padding_mode="replicate").eval()
    assert resnet3d.conv1.weight.shape == (64, 3, 7, 7, 7)
    assert isinstance(resnet3d.layer1[0].bn1, nn.BatchNorm3d)
    frame = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out2d, out3d = resnet(frame), resnet3d(_boring(frame, 4))
    assert out3d.shape == (2, 7)
    torch.testing.assert_close(out3d, out2d, rtol=1e-4, atol=1e-5)


def test_inflate_model_errors() -> None:
    with pytest.raises(InflationError, match=r"'1' \(LSTM\)"):
        inflate_model(nn.Sequential(nn.Conv2d(3, 3, 1), nn.LSTM(3, 3)))
    with pytest.raises(InflationError, match=r"\['conv_typo'\]"):
        inflate_model(_small_cnn(), time_kernels={"conv_typo": 3})

    class WithParameter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.scale

    with pytest.raises(InflationError, match="WithParameter"):
        inflate_model(nn.Sequential(WithParameter()))
    converted = inflate_model(
        nn.Sequential(nn.Conv2d(3, 3, 1), WithParameter()),
        converters={WithParameter: lambda module, name: module},
    )
    assert isinstance(converted[0], nn.Conv3d)
    assert issubclass(InflationError, HartutorError)


# --------------------------------------------------------------- ImageNet-inflated I3D


@pytest.fixture(scope="module")
def googlenet() -> nn.Module:
    torch.manual_seed(0)
    net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
    return _calibrate_bn(net, torch.randn(4, 3, 111, 111))


def test_googlenet_maps_onto_i3d(googlenet: nn.Module) -> None:
    model = i3d_from_googlenet(googlenet)
    assert isinstance(model, InceptionI3d) and model.num_classes == 1000
    torch.testing.assert_close(
        model.Mixed_4f.b2b.conv3d.weight.sum(2), googlenet.inception4e.branch3[1].conv.weight
    )
    assert model.Mixed_4f.b2b.conv3d.weight.shape[2] == 3
    assert model.Conv3d_1a_7x7.conv3d.weight.shape == (64, 3, 7, 7, 7)
    torch.testing.assert_close(
        model.Mixed_5c.b3b.bn.running_var, googlenet.inception5b.branch4[1].bn.running_var
    )
    torch.testing.assert_close(model.logits.conv3d.weight.flatten(1), googlenet.fc.weight)
    assert model.Mixed_3b.b0.bn.weight.requires_grad  # BN scales come from ImageNet

    fresh = i3d_from_googlenet(googlenet, num_classes=101)
    assert fresh.logits.conv3d.weight.shape == (101, 1024, 1, 1, 1)
    with pytest.raises(InflationError, match="GoogLeNet"):
        i3d_from_googlenet(torchvision.models.resnet18(weights=None))


def test_googlenet_boring_video_exact_at_sides_16k_minus_1(googlenet: nn.Module) -> None:
    """With replicate time padding and a 111x111 frame (TF SAME == torchvision's padding
    there), the inflated I3D reproduces GoogLeNet's logits on a boring video."""
    model = i3d_from_googlenet(googlenet, temporal_padding="replicate").eval()
    frame = torch.randn(1, 3, 111, 111)
    with torch.no_grad():
        expected = googlenet(frame)
        assert (expected - googlenet(torch.randn(1, 3, 111, 111))).abs().max() > 1e-2
        torch.testing.assert_close(model(_boring(frame, 4)), expected, rtol=1e-4, atol=1e-4)


def test_googlenet_where_the_fixed_point_breaks(googlenet: nn.Module) -> None:
    """At even sides conv1's grids differ (SAME pads (2, 3), torchvision (3, 3)); with zero
    time padding only time steps whose 7 taps lie inside the clip are exact."""
    zeros = i3d_from_googlenet(googlenet, temporal_padding="zeros").eval()
    with torch.no_grad():
        odd = torch.randn(1, 3, 111, 111)
        out = zeros.Conv3d_1a_7x7(_boring(odd, 16))  # 8 steps; step j sees frames 2j-2..2j+4
        ref = googlenet.conv1(odd)
        for j in range(1, 6):
            torch.testing.assert_close(out[:, :, j], ref, rtol=1e-5, atol=1e-5)
        for j in (0, 6, 7):
            assert (out[:, :, j] - ref).abs().max() > 1e-3
        even = torch.randn(1, 3, 112, 112)
        shifted = zeros.Conv3d_1a_7x7(_boring(even, 16))[:, :, 3]
        assert shifted.shape[-2:] == googlenet.conv1(even).shape[-2:]
        assert (shifted - googlenet.conv1(even)).abs().max() > 1e-2


def _tiny_i3d(padding: str) -> InceptionI3d:
    model = i3d(preset="tiny", num_classes=5, temporal_padding=padding)  # type: ignore[arg-type]
    with torch.no_grad():  # BatchNorm statistics away from the identity, so they matter
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def test_still_twin_inflation_gives_the_twins_output_on_a_boring_video() -> None:
    """Replicate padding: a one-frame clip sees each kernel's tap sum; the inflated network on
    that frame repeated sees the same sum at every time step, edges included."""
    torch.manual_seed(0)
    twin = _tiny_i3d("replicate")
    before = {k: v.clone() for k, v in twin.state_dict().items()}
    image = torch.randn(2, 3, 1, 32, 32)
    inflated = inflate_still_twin(twin)
    with torch.no_grad():
        still = twin(image)
        boring = inflated(image.expand(-1, -1, 16, -1, -1))
        moving = torch.randn(2, 3, 16, 32, 32)
        changed = (inflated(moving) - twin(moving)).abs().max()
    assert torch.allclose(boring, still, atol=1e-4)
    # The twin is left as it was; the inflated copy computes something else on real video.
    assert all(torch.equal(v, twin.state_dict()[k]) for k, v in before.items())
    assert changed > 1e-3


def test_still_kernel_is_the_tap_a_single_frame_meets() -> None:
    torch.manual_seed(1)
    twin = _tiny_i3d("zeros")
    conv = twin.Conv3d_1a_7x7.conv3d  # 7 taps, stride 2: SAME pads 3 frames before one frame
    assert torch.equal(still_kernel(conv), conv.weight[:, :, 3])
    inflated = inflate_still_twin(twin).Conv3d_1a_7x7.conv3d
    assert torch.allclose(inflated.weight.sum(2), conv.weight[:, :, 3], atol=1e-6)
    assert torch.allclose(inflated.weight[:, :, 0], inflated.weight[:, :, 6])
    # With zero padding the inflated network on a boring video agrees with the twin on the
    # frame only approximately (frames near the ends see zeros), but closely.
    image = torch.randn(2, 3, 1, 32, 32)
    with torch.no_grad():
        still = twin(image)
        boring = inflate_still_twin(twin)(image.expand(-1, -1, 16, -1, -1))
    assert torch.corrcoef(torch.stack([still.flatten(), boring.flatten()]))[0, 1] > 0.9
    plain = nn.Conv3d(2, 2, 3, padding=(1, 1, 1), padding_mode="circular")
    with pytest.raises(InflationError, match="time tap"):
        still_kernel(plain)
