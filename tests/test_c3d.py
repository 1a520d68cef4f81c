"""C3D (hartutor.models.c3d): the Sports-1M network's layout, sizes and weight port."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import hartutor  # noqa: F401
from hartutor.errors import WeightsError
from hartutor.models import build_model
from hartutor.models.c3d import C3D, c3d, c3d_feature_shape, c3d_state_dict_from_davidea

# DavideA/c3d-pytorch C3D_model.py, written out: (name, in, out) of each conv, fc sizes.
DAVIDEA_CONVS = [
    ("conv1", 3, 64),
    ("conv2", 64, 128),
    ("conv3a", 128, 256),
    ("conv3b", 256, 256),
    ("conv4a", 256, 512),
    ("conv4b", 512, 512),
    ("conv5a", 512, 512),
    ("conv5b", 512, 512),
]
DAVIDEA_FCS = [("fc6", 8192, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 487)]


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("num_classes", "expected"), [(101, 78_409_573), (487, 79_991_015)])
def test_paper_parameter_counts(num_classes: int, expected: int) -> None:
    with torch.device("meta"):
        assert _n_params(c3d(num_classes=num_classes)) == expected


def test_paper_layout() -> None:
    with torch.device("meta"):
        model = c3d()
    convs = [(n, m) for n, m in model.named_children() if isinstance(m, torch.nn.Conv3d)]
    assert [n for n, _ in convs] == [
        "conv1a",
        "conv2a",
        "conv3a",
        "conv3b",
        "conv4a",
        "conv4b",
        "conv5a",
        "conv5b",
    ]
    for _, conv in convs:
        assert conv.kernel_size == (3, 3, 3) and conv.stride == (1, 1, 1)
        assert conv.padding == (1, 1, 1) and conv.bias is not None
    pools = {n: m for n, m in model.named_children() if isinstance(m, torch.nn.MaxPool3d)}
    assert list(pools) == ["pool1", "pool2", "pool3", "pool4", "pool5"]
    assert pools["pool1"].kernel_size == (1, 2, 2) and pools["pool1"].stride == (1, 2, 2)
    for name in ("pool2", "pool3", "pool4", "pool5"):
        assert pools[name].kernel_size == (2, 2, 2) and pools[name].stride == (2, 2, 2)
    assert pools["pool5"].padding == (0, 1, 1) and pools["pool4"].padding == (0, 0, 0)
    assert (model.fc6.in_features, model.fc6.out_features) == (8192, 4096)
    assert (model.fc7.in_features, model.fc8.out_features) == (4096, 487)
    assert model.input_spec.shape == (3, 16, 112, 112)


def test_paper_shapes() -> None:
    with torch.device("meta"):
        model = c3d(num_classes=101)
        x = torch.empty(2, 3, 16, 112, 112)
        features = model.forward_features(x)
        assert features.shape == (2, 512, 1, 4, 4)
        assert model.forward_head(features, pre_logits=True).shape == (2, 4096)
        assert model(x).shape == (2, 101)
    assert c3d_feature_shape((16, 112, 112)) == (1, 4, 4)
    assert c3d_feature_shape((16, 64, 64)) == (1, 3, 3)


def test_wrong_clip_size_is_explained() -> None:
    model = c3d(preset="tiny", num_classes=4)
    with pytest.raises(ValueError, match=r"\(16, 64, 64\)"):
        model(torch.randn(1, 3, 16, 96, 96))
    with pytest.raises(ValueError, match="too small"):
        c3d_feature_shape((4, 16, 16))


def test_forward_matches_a_plain_functional_c3d() -> None:
    """The module computes conv/relu/pool x5 then fc6/fc7/fc8, as DavideA's forward."""
    torch.manual_seed(0)
    model = C3D(
        num_classes=6, channels=(4, 4, 8, 8, 8, 8, 8, 8), fc_features=16, input_size=(16, 32, 32)
    ).eval()
    x = torch.randn(2, 3, 16, 32, 32)
    h = x
    for conv, pool in [
        ("conv1a", (1, 2, 2)),
        ("conv2a", (2, 2, 2)),
        ("conv3a", None),
        ("conv3b", (2, 2, 2)),
        ("conv4a", None),
        ("conv4b", (2, 2, 2)),
        ("conv5a", None),
        ("conv5b", (2, 2, 2)),
    ]:
        h = F.relu(getattr(model, conv)(h))
        if pool is not None:
            h = F.max_pool3d(h, pool, pool, padding=(0, 1, 1) if conv == "conv5b" else 0)
    h = F.relu(model.fc6(h.flatten(1)))
    h = F.relu(model.fc7(h))
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.fc8(h))


def test_davidea_state_dict_loads() -> None:
    gen = torch.Generator().manual_seed(0)
    sd: dict[str, torch.Tensor] = {}
    for name, cin, cout in DAVIDEA_CONVS:
        sd[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, 3, generator=gen)
        sd[f"{name}.bias"] = torch.randn(cout, generator=gen)
    for name, fin, fout in DAVIDEA_FCS:
        sd[f"{name}.weight"] = torch.empty(fout, fin).normal_(generator=gen)
        sd[f"{name}.bias"] = torch.randn(fout, generator=gen)
    state = c3d_state_dict_from_davidea(sd)
    with torch.device("meta"):
        model = c3d(num_classes=487)
    model.load_state_dict(state, strict=True, assign=True)
    assert torch.equal(model.conv1a.weight, sd["conv1.weight"])
    assert torch.equal(model.conv2a.bias, sd["conv2.bias"])
    assert torch.equal(model.conv5b.weight, sd["conv5b.weight"])
    assert torch.equal(model.fc8.weight, sd["fc8.weight"])


def test_davidea_errors_name_what_differs() -> None:
    with torch.device("meta"):
        sd = {
            k.replace("conv1a", "conv1").replace("conv2a", "conv2"): v
            for k, v in c3d().state_dict().items()
        }
    assert set(c3d_state_dict_from_davidea(sd)) == set(sd) - {
        "conv1.weight",
        "conv1.bias",
        "conv2.weight",
        "conv2.bias",
    } | {"conv1a.weight", "conv1a.bias", "conv2a.weight", "conv2a.bias"}
    with pytest.raises(WeightsError, match=r"conv6\.weight"):
        c3d_state_dict_from_davidea(dict(sd, **{"conv6.weight": torch.zeros(1)}))
    with pytest.raises(WeightsError, match=r"fc7\.bias"):
        c3d_state_dict_from_davidea({k: v for k, v in sd.items() if k != "fc7.bias"})
    with pytest.raises(WeightsError, match=r"conv3a\.weight"):
        c3d_state_dict_from_davidea(
            dict(sd, **{"conv3a.weight": torch.zeros(256, 128, 1, 3, 3, device="meta")})
        )
    with pytest.raises(WeightsError, match=r"fc8\.bias"):
        c3d_state_dict_from_davidea({"conv1.weight": torch.zeros(1)})


def test_tiny_preset_trains_on_cpu() -> None:
    torch.manual_seed(0)
    model = build_model("c3d", preset="tiny", num_classes=3, dropout=0.0)  # to fit 6 clips
    assert isinstance(model, C3D) and _n_params(model) < 600_000
    assert build_model("c3d", preset="tiny").dropout.p == 0.2
    assert model.input_spec.shape == (3, 16, 64, 64)
    x = torch.randn(6, 3, 16, 64, 64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    model.reset_classifier(5)
    assert model(x[:1]).shape == (1, 5)
