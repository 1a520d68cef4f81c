"""The frozen-feature route: extraction, cache, resumable shards, linear heads, late fusion."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

import hartutor  # noqa: F401  (compatibility shim before torchvision/timm)
from hartutor.data import model_transform
from hartutor.errors import DataError, ModelError
from hartutor.features import (
    FeatureSet,
    HeadConfig,
    StreamData,
    evaluate_head,
    evaluate_scores,
    extract_features,
    fuse_heads,
    head_scores,
    pre_logits_features,
    pretrained_stream,
    reproduce_fusion,
    train_linear_head,
    video_scores,
)
from hartutor.models import build_model
from hartutor.models.fusion import fuse_scores
from hartutor.synth import CLASS_NAMES, SyntheticActions

NUM_CLASSES = len(CLASS_NAMES)
CHANCE = 1 / NUM_CLASSES
TRAIN_CLIPS, VAL_CLIPS = 260, 130
# Measured on random-init tiny I3D features (model seeds 0, 1, 2): val top-1 25-31% with this
# head; chance is 7.7%. The test asks for more than twice chance.
HEAD = HeadConfig(epochs=100, lr=1e-2, weight_decay=1e-2, batch_size=None, seed=0)


def tiny(name: str, seed: int = 0, **kwargs: Any) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, preset="tiny", num_classes=NUM_CLASSES, **kwargs).eval()


def synthetic(model: torch.nn.Module, count: int, split: str, seed: int = 0) -> SyntheticActions:
    return SyntheticActions(count, seed=seed, split=split, transform=model_transform(model))


class MultiClip(Dataset):
    """Each synthetic clip seen as ``clips`` clips (time-rolled), as UCF101's multi-clip test."""

    def __init__(self, base: Dataset, clips: int):
        self.base, self.clips = base, clips

    def __len__(self) -> int:
        return len(self.base) * self.clips  # type: ignore[arg-type]

    def __getitem__(self, item: int) -> dict[str, Any]:
        video, clip = divmod(item, self.clips)
        sample = self.base[video]
        return {
            "video": sample["video"].roll(clip * 3, dims=1),
            "label": sample["label"],
            "video_index": video,
            "clip_index": clip,
            "video_name": f"v{video:03d}",
        }


class Counting:
    """A feature_fn that counts its calls and can fail at a given call (an interruption)."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail_at: int | None = None

    def __call__(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt("simulated interruption")
        return pre_logits_features(model, x)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: on a shared CPU more threads make these small models slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("features")


@pytest.fixture(scope="module")
def streams(cache_dir: Path) -> dict[str, StreamData]:
    i3d = tiny("i3d")
    xception = tiny("xception", num_segments=4)
    return {
        name: StreamData(
            model, synthetic(model, TRAIN_CLIPS, "train"), synthetic(model, VAL_CLIPS, "val")
        )
        for name, model in (("i3d", i3d), ("xception", xception))
    }


@pytest.fixture(scope="module")
def stream_features(
    streams: dict[str, StreamData], cache_dir: Path
) -> dict[str, dict[str, FeatureSet]]:
    """Features of both tiny streams, cached under the names reproduce_fusion uses."""
    return {
        name: {
            subset: extract_features(
                stream.model,
                getattr(stream, subset),
                batch_size=26,
                device="cpu",
                cache=cache_dir,
                name=f"{name}-{subset}",
                progress=False,
            )
            for subset in ("train", "test")
        }
        for name, stream in streams.items()
    }


# --------------------------------------------------------------------------- extraction


def test_extraction_gives_pooled_pre_logits_and_is_deterministic():
    model = tiny("i3d").train()
    data = synthetic(model, 6, "val")
    first = extract_features(model, data, batch_size=4, device="cpu", progress=False)
    second = extract_features(model, data, batch_size=3, device="cpu", progress=False)
    assert model.training, "the model's train/eval mode must be restored"
    assert first.features.shape == (6, model.num_features) and first.dim == 208
    assert first.features.dtype == torch.float32
    assert torch.equal(first.features, second.features)
    assert first.labels.tolist() == [data.label_of(i) for i in range(6)]
    assert first.video_index is None and first.class_names == list(CLASS_NAMES)
    clips = torch.stack([data[i]["video"] for i in range(6)])
    with torch.inference_mode():
        expected = model.eval().forward_head(model.forward_features(clips), pre_logits=True)
    assert torch.allclose(first.features, expected, rtol=2e-3, atol=1e-4)  # float16 storage
    full = extract_features(model, data, store_dtype="float32", device="cpu", progress=False)
    assert torch.allclose(full.features, expected, rtol=1e-5, atol=1e-6)


def test_frame_stream_features_are_backbone_features_averaged_over_sampled_frames():
    model = tiny("xception", num_segments=4)
    data = synthetic(model, 3, "val")
    features = extract_features(model, data, device="cpu", store_dtype="float32", progress=False)
    assert features.dim == model.backbone.num_features == 192
    clips = torch.stack([data[i]["video"] for i in range(3)])
    frames = clips[:, :, [2, 6, 10, 14]]  # centres of 4 segments of 16 frames
    with torch.inference_mode():
        flat = frames.transpose(1, 2).flatten(0, 1)
        per_frame = model.backbone.forward_head(model.backbone.forward_features(flat), True)
    expected = per_frame.reshape(3, 4, -1).mean(1)
    assert torch.allclose(features.features, expected, rtol=1e-4, atol=1e-5)


def test_multi_clip_sets_keep_video_index_clip_index_and_names():
    model = tiny("i3d")
    data = MultiClip(synthetic(model, 3, "val"), clips=2)
    features = extract_features(model, data, batch_size=4, device="cpu", progress=False)
    assert features.video_index.tolist() == [0, 0, 1, 1, 2, 2]
    assert features.clip_index.tolist() == [0, 1, 0, 1, 0, 1]
    assert features.video_names == ["v000", "v000", "v001", "v001", "v002", "v002"]
    assert not torch.equal(features.features[0], features.features[1])  # clips differ


def test_cache_hit_runs_no_forward_and_a_weight_change_invalidates(tmp_path: Path):
    model = tiny("i3d")
    data = synthetic(model, 4, "val")
    spy = Counting()
    kwargs: dict[str, Any] = {"cache": tmp_path, "feature_fn": spy, "device": "cpu"}
    first = extract_features(model, data, batch_size=2, progress=False, **kwargs)
    assert spy.calls == 2 and len(list(tmp_path.glob("*.npz"))) == 1
    again = extract_features(model, data, batch_size=2, progress=False, **kwargs)
    assert spy.calls == 2, "a cache hit must not run the model"
    assert torch.equal(first.features, again.features) and again.meta["key"] == first.meta["key"]

    with torch.no_grad():
        model.Conv3d_1a_7x7.conv3d.weight.mul_(1.5)
    changed = extract_features(model, data, batch_size=2, progress=False, **kwargs)
    assert spy.calls == 4, "new weights must invalidate the cache"
    assert changed.meta["key"] != first.meta["key"]
    assert not torch.allclose(changed.features, first.features)
    other_data = synthetic(model, 4, "val", seed=1)
    extract_features(model, other_data, batch_size=2, progress=False, **kwargs)
    assert spy.calls == 6, "another dataset must not hit the cache"
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_corrupt_cache_file_is_extracted_again_and_load_names_it(tmp_path: Path):
    model = tiny("i3d")
    data = synthetic(model, 3, "val")
    good = extract_features(model, data, cache=tmp_path, device="cpu", progress=False)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.raises(DataError, match=str(path.name)):
        FeatureSet.load(path)
    with pytest.warns(UserWarning, match="corrupt"):
        redone = extract_features(model, data, cache=tmp_path, device="cpu", progress=False)
    assert torch.equal(redone.features, good.features)
    assert torch.equal(FeatureSet.load(path, key=good.meta["key"]).features, good.features)
    with pytest.raises(DataError, match="not 'other'"):
        FeatureSet.load(path, key="other")


def test_interrupted_extraction_resumes_from_its_shards(tmp_path: Path):
    model = tiny("i3d")
    data = synthetic(model, 10, "val")
    reference = extract_features(model, data, device="cpu", progress=False)
    spy = Counting()
    spy.fail_at = 4  # batches of 2: three batches done, interrupted in the fourth
    kwargs: dict[str, Any] = {"batch_size": 2, "shard_every": 1, "progress": False}
    with pytest.raises(KeyboardInterrupt):
        extract_features(model, data, cache=tmp_path, feature_fn=spy, device="cpu", **kwargs)
    (partial,) = tmp_path.glob("*.partial")
    assert len(list(partial.glob("shard-*.npz"))) == 3 and not list(tmp_path.glob("*.npz"))
    spy.calls, spy.fail_at = 0, None
    resumed = extract_features(model, data, cache=tmp_path, feature_fn=spy, device="cpu", **kwargs)
    assert spy.calls == 2, "only the two remaining batches are run"
    assert resumed.meta["resumed_from"] == 6
    assert torch.equal(resumed.features, reference.features)
    assert torch.equal(resumed.labels, reference.labels)
    assert not partial.exists(), "shards are removed once merged"


def test_a_corrupt_shard_is_redone_with_those_after_it(tmp_path: Path):
    model = tiny("i3d")
    data = synthetic(model, 8, "val")
    spy = Counting()
    spy.fail_at = 4
    kwargs: dict[str, Any] = {"batch_size": 2, "shard_every": 1, "progress": False}
    with pytest.raises(KeyboardInterrupt):
        extract_features(model, data, cache=tmp_path, feature_fn=spy, device="cpu", **kwargs)
    shards = sorted(next(tmp_path.glob("*.partial")).glob("shard-*.npz"))
    shards[1].write_bytes(b"not a zip file")
    spy.calls, spy.fail_at = 0, None
    resumed = extract_features(model, data, cache=tmp_path, feature_fn=spy, device="cpu", **kwargs)
    assert spy.calls == 3 and resumed.meta["resumed_from"] == 2
    reference = extract_features(model, data, device="cpu", progress=False)
    assert torch.equal(resumed.features, reference.features)


def test_extraction_errors_say_what_to_do():
    fusion = build_model("i3d_xception_fusion", preset="tiny", num_classes=NUM_CLASSES)
    data = synthetic(fusion, 2, "val")
    with pytest.raises(ModelError, match="extract each stream"):
        extract_features(fusion, data, device="cpu", progress=False)
    model = tiny("i3d")
    with pytest.raises(ModelError, match=r"\(batch, D\)"):
        extract_features(
            model,
            synthetic(model, 2, "val"),
            feature_fn=lambda m, x: m(x)[:, :, None],
            device="cpu",
            progress=False,
        )


# --------------------------------------------------------------------------- heads


def test_linear_head_learns_on_frozen_features_deterministically(stream_features):
    train, val = stream_features["i3d"]["train"], stream_features["i3d"]["test"]
    assert train.features.shape == (TRAIN_CLIPS, 208) and len(val) == VAL_CLIPS
    rng = torch.get_rng_state()
    head = train_linear_head(train, val, num_classes=NUM_CLASSES, **vars(HEAD))
    assert torch.equal(torch.get_rng_state(), rng), "the global RNG is left untouched"
    result = evaluate_head(head, val)
    assert result.video is None and result.clip.num_samples == VAL_CLIPS
    assert result.clip.top1 > 2 * CHANCE, result.summary()
    assert head.history[-1]["top1"] > 0.5 and head.history[-1]["val_top1"] == result.clip.top1
    same = train_linear_head(train, val, num_classes=NUM_CLASSES, **vars(HEAD))
    assert torch.equal(same.fc.weight, head.fc.weight)
    other = train_linear_head(train, num_classes=NUM_CLASSES, **{**vars(HEAD), "seed": 1})
    assert not torch.equal(other.fc.weight, head.fc.weight)
    minibatch = train_linear_head(
        train, num_classes=NUM_CLASSES, epochs=3, batch_size=64, dropout=0.5, seed=3
    )
    assert len(minibatch.history) == 3 and not minibatch.training
    with pytest.raises(DataError, match="num_classes=5"):
        train_linear_head(train, num_classes=5, epochs=1)


def test_video_level_scores_average_clip_probabilities():
    # Two videos of three clips each. Video 0 (label 1): two clips narrowly for class 0, one
    # clip strongly for class 1 -> clip-level 1/3 right, the averaged video right.
    logits = torch.tensor([[0.2, 0.0], [0.2, 0.0], [0.0, 5.0], [0.0, 3.0], [0.0, 3.0], [1.0, 0.0]])
    data = FeatureSet(
        torch.zeros(6, 1),
        torch.tensor([1, 1, 1, 1, 1, 1]),
        video_index=torch.tensor([0, 0, 0, 1, 1, 1]),
    )
    result = evaluate_scores(logits, data, ks=(1,))
    assert result.clip.top1 == pytest.approx(3 / 6)
    assert result.video.num_samples == 2 and result.video.top1 == 1.0
    per_video, labels, ids = video_scores(logits, data)
    expected = F.softmax(logits, 1).reshape(2, 3, 2).mean(1)
    assert torch.allclose(per_video.exp(), expected, atol=1e-6)
    assert labels.tolist() == [1, 1] and ids.tolist() == [0, 1]
    assert torch.allclose(
        video_scores(logits, data, mode="logit_sum")[0], logits.view(2, 3, 2).mean(1)
    )


def test_heads_on_multi_clip_features_report_video_accuracy(stream_features):
    model = tiny("i3d")
    test = MultiClip(synthetic(model, 13, "val"), clips=3)
    features = extract_features(model, test, batch_size=13, device="cpu", progress=False)
    head = train_linear_head(stream_features["i3d"]["train"], num_classes=NUM_CLASSES, **vars(HEAD))
    result = evaluate_head(head, features)
    assert result.clip.num_samples == 39 and result.video.num_samples == 13
    probs = F.softmax(head_scores(head, features), 1).reshape(13, 3, -1).mean(1)
    expected = (probs.argmax(1) == torch.arange(13)).float().mean()
    assert result.video.top1 == pytest.approx(float(expected))


# --------------------------------------------------------------------------- fusion


def test_fuse_scores_equal_weight_softmax_mean_by_hand():
    assert fuse_heads is fuse_scores  # the old name of hartutor.features still works
    a = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    b = torch.tensor([[0.0, 3.0, 0.0], [1.0, 1.0, 1.0]])
    out = fuse_scores({"i3d": a, "xception": b})
    ea, eb = a.exp(), b.exp()
    by_hand = (ea / ea.sum(1, keepdim=True) + eb / eb.sum(1, keepdim=True)) / 2
    assert out.kind == "probabilities" and torch.allclose(out.fused, by_hand, atol=1e-6)
    assert torch.allclose(out.fused.sum(1), torch.ones(2))
    assert torch.allclose(out.log_probabilities, by_hand.log(), atol=1e-6)
    weighted = fuse_scores({"i3d": a, "xception": b}, weights={"i3d": 3.0, "xception": 1.0})
    pa, pb = F.softmax(a, 1), F.softmax(b, 1)
    assert torch.allclose(weighted.fused, 0.75 * pa + 0.25 * pb, atol=1e-6)
    summed = fuse_scores({"i3d": a, "xception": b}, mode="logit_sum")
    assert summed.kind == "logits" and torch.allclose(summed.fused, a + b)
    with pytest.raises(ModelError, match="one shape"):
        fuse_scores({"i3d": a, "xception": b[:, :2]})


def test_reproduce_fusion_on_tiny_streams_is_at_least_the_worse_head(
    streams, stream_features, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    calls: list[str] = []
    for name, stream in streams.items():
        forward = stream.model.forward_features

        def spy(x: torch.Tensor, forward: Any = forward, name: str = name) -> torch.Tensor:
            calls.append(name)
            return forward(x)

        monkeypatch.setattr(stream.model, "forward_features", spy)
    report = reproduce_fusion(
        streams, num_classes=NUM_CLASSES, cache=cache_dir, head=HEAD, device="cpu", progress=False
    )
    assert calls == [], "the features cached by the fixture are reused, not recomputed"
    for name, result in report.streams.items():
        assert result.test.meta["key"] == stream_features[name]["test"].meta["key"], "cache hit"
    tops = {name: r.evaluation.clip.top1 for name, r in report.streams.items()}
    fused = report.fused.clip
    assert report.fused.video is None and fused.num_samples == VAL_CLIPS
    assert fused.top1 >= min(tops.values()), (tops, fused.top1)
    by_hand = fuse_scores({n: r.evaluation.scores for n, r in report.streams.items()})
    expected = (by_hand.fused.argmax(1) == report.streams["i3d"].test.labels).float().mean()
    assert fused.top1 == pytest.approx(float(expected))
    table = report.table()
    assert "| i3d |" in table and "fusion (softmax_mean)" in table
    print(table)  # figures for the docs (pytest -s)


def test_reproduce_fusion_fuses_per_video_when_the_streams_clips_differ(tmp_path: Path):
    i3d, frames = tiny("i3d"), tiny("single_frame", num_segments=2)
    streams = {
        "i3d": StreamData(
            i3d,
            synthetic(i3d, 26, "train"),
            MultiClip(synthetic(i3d, 13, "val"), clips=2),
        ),
        "frames": StreamData(
            frames,
            synthetic(frames, 26, "train"),
            MultiClip(synthetic(frames, 13, "val"), clips=3),
        ),
    }
    head = HeadConfig(epochs=5, batch_size=None, seed=0)
    report = reproduce_fusion(
        streams, num_classes=NUM_CLASSES, cache=tmp_path, head=head, device="cpu", progress=False
    )
    assert report.fused.clip is None and report.fused.video.num_samples == 13
    probs = [
        F.softmax(r.evaluation.scores, 1).reshape(13, -1, NUM_CLASSES).mean(1)
        for r in report.streams.values()
    ]
    fused = (probs[0] + probs[1]) / 2
    assert torch.allclose(report.fused.scores.exp(), fused, atol=1e-5)
    mismatched = dict(streams)
    mismatched["frames"] = StreamData(
        frames, synthetic(frames, 26, "train"), MultiClip(synthetic(frames, 12, "val"), clips=3)
    )
    with pytest.raises(DataError, match="same videos"):
        reproduce_fusion(
            mismatched, num_classes=NUM_CLASSES, head=head, device="cpu", progress=False
        )


def test_pretrained_stream_reads_ucf101_with_the_weights_preprocessing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import hartutor.weights
    from hartutor.synth import generate_dataset

    root = generate_dataset(
        tmp_path / "ucf", num_clips=14, seed=1, classes=CLASS_NAMES[:2], progress=False
    )
    loaded: list[str] = []

    def fake_load(entry: Any, **kwargs: Any) -> torch.nn.Module:
        """A tiny stand-in (no weights can be downloaded here) with the paper input spec."""
        from hartutor.models.xception import xception_input_spec

        loaded.append(entry.name)
        model = tiny(entry.model)
        if entry.model == "xception":
            model.input_spec = xception_input_spec()
        return model

    monkeypatch.setattr(hartutor.weights, "load_pretrained", fake_load)
    stream = pretrained_stream(
        "i3d_rgb_kinetics600_scratch", root, test_clips_per_video=2, download=False
    )
    assert loaded == ["i3d_rgb_kinetics600_scratch"]
    for data in (stream.train, stream.test):
        assert (data.num_frames, data.size, data.crop_size) == (64, 256, 224)
        assert data.clip_sampling == "uniform"
    assert stream.test.clips_per_video == 2 and len(stream.test) == 4
    sample = stream.test[1]
    assert sample["video"].shape == (3, 64, 224, 224) and sample["clip_index"] == 1
    assert float(sample["video"].min()) >= -1.0 and float(sample["video"].max()) <= 1.0
    assert stream.preprocessing["weights"] == "i3d_rgb_kinetics600_scratch"
    xception = pretrained_stream("xception_imagenet1k_tf", root, frame_stride=8, download=False)
    assert (xception.test.num_frames, xception.test.size, xception.test.crop_size) == (8, 333, 299)


def test_feature_sets_round_trip_and_subset(tmp_path: Path):
    data = FeatureSet(
        torch.randn(5, 4),
        torch.tensor([0, 1, 2, 1, 0]),
        video_index=torch.tensor([0, 0, 1, 1, 2]),
        clip_index=torch.tensor([0, 1, 0, 1, 0]),
        video_names=list("aabbc"),
        class_names=["x", "y", "z"],
        meta={"key": "k"},
    )
    back = FeatureSet.load(data.save(tmp_path / "f.npz", dtype="float32"), key="k")
    assert torch.equal(back.features, data.features) and back.video_names == list("aabbc")
    assert back.class_names == ["x", "y", "z"] and torch.equal(back.clip_index, data.clip_index)
    with np.load(tmp_path / "f.npz", allow_pickle=False) as stored:
        assert "meta" in stored.files  # no pickled objects anywhere
    part = back.subset([1, 3])
    assert part.labels.tolist() == [1, 1] and part.video_names == ["a", "b"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="labels"):
            FeatureSet(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
