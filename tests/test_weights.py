"""Weights registry, cache and downloader (against a 127.0.0.1 server), and loaders."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hartutor import config
from hartutor.errors import WeightsError
from hartutor.weights import (
    I3DWeights,
    RemoteFile,
    WeightsEntry,
    XceptionWeights,
    download_url,
    fetch,
    get_weights,
    list_weights,
    load_pretrained,
    load_state_dict_checked,
    load_tf_i3d_variables,
    load_torch_state_dict,
    verify_file,
    write_tf_checkpoint,
)
from hartutor.weights.registry import Preprocessing

PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; Range support and mid-way drops are switchable per test."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        server = self.server
        content = server.files.get(self.path)  # type: ignore[attr-defined]
        range_header = self.headers.get("Range")
        server.log.append((self.path, range_header))  # type: ignore[attr-defined]
        if content is None:
            self.send_error(404, "no such file")
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if match and server.support_range:  # type: ignore[attr-defined]
            start = int(match.group(1))
            if start >= len(content):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(content)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
        else:
            self.send_response(200)
        body = content[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.drops_left > 0:  # type: ignore[attr-defined]
            server.drops_left -= 1  # type: ignore[attr-defined]
            self.wfile.write(body[: server.drop_after])  # type: ignore[attr-defined]
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files = {"/w.bin": PAYLOAD}  # type: ignore[attr-defined]
    httpd.log = []  # type: ignore[attr-defined]
    httpd.support_range = True  # type: ignore[attr-defined]
    httpd.drops_left = 0  # type: ignore[attr-defined]
    httpd.drop_after = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _url(httpd: http.server.ThreadingHTTPServer, path: str = "/w.bin") -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


# ------------------------------------------------------------------------- downloader


def test_download_verifies_and_leaves_no_partial(server, tmp_path: Path) -> None:
    dest = download_url(
        _url(server), tmp_path / "w.bin", sha256=PAYLOAD_SHA, size=len(PAYLOAD), progress=False
    )
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(tmp_path) == ["w.bin"]
    assert server.log == [("/w.bin", None)]


def test_broken_download_resumes_with_range(server, tmp_path: Path) -> None:
    server.drops_left, server.drop_after = 1, 123_457
    dest = download_url(_url(server), tmp_path / "w.bin", sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.log == [("/w.bin", None), ("/w.bin", "bytes=123457-")]
    assert _leftovers(tmp_path) == ["w.bin"]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path: Path) -> None:
    server.support_range = False
    server.drops_left, server.drop_after = 1, 100_000
    dest = download_url(_url(server), tmp_path / "w.bin", sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD  # not 100_000 bytes + the full file appended
    assert server.log[1] == ("/w.bin", "bytes=100000-")


def test_existing_part_file_is_resumed(server, tmp_path: Path) -> None:
    (tmp_path / "w.bin.part").write_bytes(PAYLOAD[:777])
    download_url(_url(server), tmp_path / "w.bin", sha256=PAYLOAD_SHA, progress=False)
    assert (tmp_path / "w.bin").read_bytes() == PAYLOAD
    assert server.log == [("/w.bin", "bytes=777-")]


def test_complete_part_file_gets_416_and_is_used(server, tmp_path: Path) -> None:
    (tmp_path / "w.bin.part").write_bytes(PAYLOAD)
    download_url(_url(server), tmp_path / "w.bin", sha256=PAYLOAD_SHA, progress=False)
    assert (tmp_path / "w.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_keeps_nothing(server, tmp_path: Path) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(WeightsError, match=f"SHA-256 {PAYLOAD_SHA}, expected {wrong}"):
        download_url(_url(server), tmp_path / "w.bin", sha256=wrong, progress=False)
    assert _leftovers(tmp_path) == []


def test_size_mismatch_is_refused(server, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="serves 300000 bytes"):
        download_url(_url(server), tmp_path / "w.bin", size=1234, progress=False)
    assert not (tmp_path / "w.bin").exists()


def test_http_404_names_url_and_path(server, tmp_path: Path) -> None:
    url = _url(server, "/missing.pt")
    with pytest.raises(WeightsError, match="HTTP 404") as info:
        download_url(url, tmp_path / "missing.pt", progress=False)
    assert url in str(info.value) and str(tmp_path / "missing.pt") in str(info.value)


def test_offline_error_says_where_to_put_the_file() -> None:
    remote = RemoteFile(f"http://127.0.0.1:{_closed_port()}/rgb.pt", "rgb.pt", subdir="x")
    with pytest.raises(WeightsError) as info:
        fetch(remote, progress=False)
    message = str(info.value)
    expected_path = config.weights_dir() / "x" / "rgb.pt"
    assert "'rgb.pt'" in message and remote.url in message and str(expected_path) in message
    assert not expected_path.exists()


def test_prefilled_cache_is_used_without_network(tmp_path: Path) -> None:
    remote = RemoteFile(
        f"http://127.0.0.1:{_closed_port()}/w.bin",
        "w.bin",
        sha256=PAYLOAD_SHA,
        size=len(PAYLOAD),
        subdir="manual",
    )
    with pytest.raises(WeightsError, match=re.escape(str(remote.cache_path()))):
        fetch(remote, download=False)
    remote.cache_path().parent.mkdir(parents=True)
    remote.cache_path().write_bytes(PAYLOAD)  # "put the file there by hand"
    assert fetch(remote, progress=False).read_bytes() == PAYLOAD
    remote.cache_path().write_bytes(PAYLOAD[:-1] + b"\0")  # same size, wrong bytes
    with pytest.raises(WeightsError, match="SHA-256"):
        fetch(remote)


def test_concurrent_fetches_download_once(server, tmp_path: Path) -> None:
    results: list[Path | BaseException] = []

    def worker() -> None:
        try:
            results.append(
                download_url(_url(server), tmp_path / "w.bin", sha256=PAYLOAD_SHA, progress=False)
            )
        except BaseException as err:
            results.append(err)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [tmp_path / "w.bin"] * 3
    assert (tmp_path / "w.bin").read_bytes() == PAYLOAD
    assert len(server.log) == 1  # the others waited on the lock, then found the file


def test_hash_prefix_check(tmp_path: Path) -> None:
    path = tmp_path / "f.pth"
    path.write_bytes(PAYLOAD)
    verify_file(path, hash_prefix=PAYLOAD_SHA[:9])
    with pytest.raises(WeightsError, match="does not start with"):
        verify_file(path, hash_prefix="43020ad28")


# --------------------------------------------------------------------------- registry


def test_registry_entries_are_complete() -> None:
    names = list_weights()
    assert len(names) == 9 and len(list_weights("i3d")) == 7
    assert list_weights("res3d") == ["res3d_kinetics400_torchvision"]
    for name in names:
        entry = get_weights(name)
        assert entry.files and all(f.url.startswith("https://") for f in entry.files)
        for remote in entry.files:
            assert remote.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", remote.sha256)
        assert entry.docs and entry.source.startswith("https://")
        assert entry.label_set in ("kinetics400", "kinetics600", "imagenet")
        assert entry.model_kwargs.get("num_classes") == entry.num_classes
        if entry.format == "tf_checkpoint":
            assert [f.filename for f in entry.files] == [
                "model.ckpt.index",
                "model.ckpt.data-00000-of-00001",
            ]
        if entry.modality == "flow":
            assert entry.model_kwargs["in_channels"] == 2
    assert get_weights("I3DWeights.RGB_KINETICS600_SCRATCH").label_set == "kinetics600"
    assert get_weights(I3DWeights.RGB_KINETICS400_IMAGENET).tf_scope == "RGB/inception_i3d/"
    with pytest.raises(KeyError, match="Did you mean"):
        get_weights("i3d_rgb_kinetics400_imagenett")


def test_fixture_index_hash_matches_registry(fixtures_dir: Path) -> None:
    index = fixtures_dir / "checkpoints" / "rgb_imagenet.index"
    remote = get_weights("i3d_rgb_kinetics400_imagenet").files[0]
    assert hashlib.sha256(index.read_bytes()).hexdigest() == remote.sha256
    assert index.stat().st_size == remote.size


def test_xception_entry_agrees_with_timm_cfg() -> None:
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg("legacy_xception")
    entry = XceptionWeights.IMAGENET1K_TF.value
    assert entry.url == cfg.url
    assert entry.files[0].hash_prefix == "43020ad28" and "43020ad28" in entry.files[0].filename
    spec = entry.preprocessing
    assert (spec.crop_size,) * 2 == tuple(cfg.input_size[1:])
    assert spec.mean == tuple(cfg.mean) and spec.std == tuple(cfg.std)
    assert spec.interpolation == cfg.interpolation
    assert spec.resize_size == int(cfg.input_size[1] / cfg.crop_pct)


def test_rgb_transform_shapes_and_range() -> None:
    transform = I3DWeights.RGB_KINETICS400_IMAGENET.transforms()
    frames = np.random.default_rng(1).integers(0, 256, (6, 240, 320, 3), dtype=np.uint8)
    out = transform(frames)
    assert out.shape == (3, 6, 224, 224) and out.dtype == torch.float32
    assert float(out.min()) >= -1.0 and float(out.max()) <= 1.0
    white = transform(np.full((2, 300, 256, 3), 255, dtype=np.uint8))
    black = transform(torch.zeros(2, 256, 300, 3, dtype=torch.uint8))
    assert torch.allclose(white, torch.ones_like(white)) and torch.equal(
        black, -torch.ones_like(black)
    )
    with pytest.raises(ValueError, match="uint8"):
        transform(frames.astype(np.float32))


def test_flow_transform_scales_with_resize_and_clips() -> None:
    transform = I3DWeights.FLOW_KINETICS400_IMAGENET.transforms()
    flow = torch.full((2, 3, 128, 160), 4.0)  # 4 px/frame at shorter side 128
    out = transform(flow)
    assert out.shape == (2, 3, 224, 224)
    # Resize 128 -> 256 doubles displacements: 8 px, divided by 20.
    torch.testing.assert_close(out, torch.full_like(out, 0.4))
    clipped = transform(torch.full((2, 2, 256, 256), 50.0))
    torch.testing.assert_close(clipped, torch.ones_like(clipped))


def test_preprocessing_is_frozen() -> None:
    spec = Preprocessing(crop_size=4, resize_size=None, mean=(0.0,), std=(1.0,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.crop_size = 5  # type: ignore[misc]
    out = spec.transforms()(np.full((1, 6, 6, 1), 51, dtype=np.uint8))
    torch.testing.assert_close(out, torch.full((1, 1, 4, 4), 0.2))


def test_weights_preprocessing_and_model_input_are_one_description() -> None:
    """A weights entry's preprocessing is an InputSpec (I3D's built from the model's own paper
    spec), and its transforms() normalise exactly as the datasets' model_transform does."""
    from hartutor.data import ClipTransform, model_transform
    from hartutor.models import build_model
    from hartutor.models.i3d import PAPER_FLOW_SPEC, PAPER_RGB_SPEC
    from hartutor.models.layers import InputSpec
    from hartutor.weights.registry import VideoClipTransform

    rgb = I3DWeights.RGB_KINETICS400_IMAGENET.value.preprocessing
    flow = I3DWeights.FLOW_KINETICS400_IMAGENET.value.preprocessing
    assert isinstance(rgb, InputSpec) and VideoClipTransform is ClipTransform
    for spec, paper in ((rgb, PAPER_RGB_SPEC), (flow, PAPER_FLOW_SPEC)):
        assert (spec.num_frames, spec.size, spec.mean, spec.std, spec.fps) == (
            paper.num_frames,
            paper.size,
            paper.mean,
            paper.std,
            paper.fps,
        )
    assert (rgb.resize_size, rgb.modality) == (256, "rgb")
    assert (flow.modality, flow.flow_clip) == ("flow", 20)
    assert "resize_size" not in repr(PAPER_RGB_SPEC)  # model specs read as they always have
    with pytest.raises(ValueError, match="modality"):
        Preprocessing(crop_size=4, resize_size=None, mean=(0.0,), std=(1.0,), modality="flow")

    model = build_model("i3d", preset="tiny", num_classes=3)
    frames = torch.randint(0, 256, (5, *model.input_spec.size, 3), dtype=torch.uint8)
    decoded = model.input_spec.transforms()(frames)
    sample = {"video": frames.permute(3, 0, 1, 2).float() / 255}
    torch.testing.assert_close(decoded, model_transform(model)(sample)["video"])


# ---------------------------------------------------------------------------- loaders


def _small_model() -> nn.Module:
    return nn.Sequential(nn.Conv3d(3, 4, 3), nn.BatchNorm3d(4), nn.ReLU(), nn.Flatten(0))


def test_old_pytorch_file_and_wrappers(tmp_path: Path) -> None:
    state = _small_model().state_dict()
    legacy = tmp_path / "legacy.pt"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    assert legacy.read_bytes()[:2] != b"PK"  # really the pre-1.6 format
    loaded = load_torch_state_dict(legacy)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, wrapped)
    assert set(load_torch_state_dict(wrapped)) == set(state)


class _Evil:
    def __reduce__(self):  # what weights_only=True must refuse to run
        return (print, ("code ran",))


def test_unsafe_or_truncated_files_raise(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"w": _Evil()}, evil)
    with pytest.raises(WeightsError, match=r"evil\.pt"):
        load_torch_state_dict(evil)
    good = tmp_path / "cut.pt"
    torch.save(_small_model().state_dict(), good)
    good.write_bytes(good.read_bytes()[:200])
    with pytest.raises(WeightsError, match=r"cut\.pt"):
        load_torch_state_dict(good)


def test_checked_load_reports_differences() -> None:
    source = _small_model().state_dict()
    model = _small_model()
    no_counter = {k: v for k, v in source.items() if not k.endswith("num_batches_tracked")}
    load_state_dict_checked(model, no_counter)  # old checkpoints: filled from the model
    assert torch.equal(model[0].weight, source["0.weight"])
    broken = dict(no_counter)
    del broken["1.running_var"]
    broken["2.extra"] = torch.zeros(1)
    broken["0.weight"] = torch.zeros(4, 2, 3, 3, 3)
    with pytest.raises(WeightsError) as info:
        load_state_dict_checked(_small_model(), broken, source="test.pt")
    message = str(info.value)
    assert "missing in checkpoint (1): 1.running_var" in message
    assert "unexpected (1): 2.extra" in message
    assert "0.weight: checkpoint (4, 2, 3, 3, 3) vs model (4, 3, 3, 3, 3)" in message


def test_load_pretrained_downloads_then_works_offline(server) -> None:
    source = _small_model()
    with torch.no_grad():
        for p in source.parameters():
            p.uniform_(-1, 1)
    buffer = Path(config.cache_dir()) / "src.pt"
    buffer.parent.mkdir(parents=True, exist_ok=True)
    torch.save(source.state_dict(), buffer)
    server.files["/small.pt"] = buffer.read_bytes()
    entry = WeightsEntry(
        name="small_test",
        files=(
            RemoteFile(
                _url(server, "/small.pt"),
                "small.pt",
                sha256=hashlib.sha256(buffer.read_bytes()).hexdigest(),
                subdir="t",
            ),
        ),
        format="torch_state_dict",
        model="not-a-registered-builder",
        model_kwargs={},
        label_set="kinetics400",
        num_classes=0,
        preprocessing=Preprocessing(crop_size=4, resize_size=None, mean=(0.0,), std=(1.0,)),
    )
    model = load_pretrained(entry, model=_small_model(), progress=False)
    assert not model.training
    x = torch.randn(1, 3, 4, 4, 4)
    torch.testing.assert_close(model(x), source.eval()(x))
    server.shutdown()  # no network from here on
    again = load_pretrained(entry, model=_small_model(), download=False)
    torch.testing.assert_close(again(x), source(x))
    assert len(server.log) == 1


def test_timm_xception_loads_through_timm_file_override(tmp_path: Path) -> None:
    import timm

    source = timm.create_model("legacy_xception", pretrained=False, num_classes=1000)
    path = tmp_path / "xception-local.pth"
    torch.save(source.state_dict(), path)
    entry = dataclasses.replace(
        XceptionWeights.IMAGENET1K_TF.value,
        files=(RemoteFile("https://example.invalid/x.pth", "x.pth"),),
    )
    target = timm.create_model("legacy_xception", pretrained=False, num_classes=1000)
    loaded = load_pretrained(entry, path=path, model=target)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with pytest.raises(WeightsError, match="does not start with"):  # real entry: hash prefix
        load_pretrained(XceptionWeights.IMAGENET1K_TF, path=path, model=target)


def test_tf_variables_are_unscoped(tmp_path: Path) -> None:
    k400 = {
        "RGB/inception_i3d/Conv3d_1a_7x7/conv_3d/w": np.ones((1, 1, 1, 3, 2), np.float32),
        "RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/b": np.zeros(2, np.float32),
        "global_step": np.array(5, np.int64),
    }
    write_tf_checkpoint(tmp_path / "k400" / "model.ckpt", k400)
    assert sorted(load_tf_i3d_variables(tmp_path / "k400")) == [
        "Conv3d_1a_7x7/conv_3d/w",
        "Logits/Conv3d_0c_1x1/conv_3d/b",
    ]
    k600 = {"Conv3d_1a_7x7/conv_3d/w": np.ones((1, 1, 1, 3, 2), np.float32)}  # no scope
    write_tf_checkpoint(tmp_path / "k600" / "model.ckpt", k600)
    assert list(load_tf_i3d_variables(tmp_path / "k600" / "model.ckpt")) == [
        "Conv3d_1a_7x7/conv_3d/w"
    ]
