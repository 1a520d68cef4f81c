"""hartutor.transfer: stream inputs, weight transfer, Table 1 rows and the fusion report."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hartutor  # noqa: F401
from hartutor import transfer as T
from hartutor.synth.world import FAMILIES, TARGET_CLASSES, VIDEO_SOURCE_CLASSES
from hartutor.train import load_checkpoint


@pytest.fixture(scope="module")
def tiny_set() -> T.StreamSet:
    return T.render_streams(TARGET_CLASSES, 2, seed=1, split="val")


def test_each_stream_gets_its_poster_input(tiny_set: T.StreamSet):
    assert tiny_set.inputs["temporal"].shape == (26, 3, 16, 32, 32)
    assert tiny_set.inputs["frame"].shape == (26, 3, 4, 96, 96)
    assert tiny_set.inputs["frame"].min() >= -1 and tiny_set.inputs["frame"].max() <= 1
    assert tiny_set.labels.tolist() == [i % 13 for i in range(26)]
    small = tiny_set.subset(1)
    assert len(small) == 13 and sorted(small.labels.tolist()) == list(range(13))
    for kind in T.STREAMS:
        model = T.build_stream(kind, 13).eval()
        with torch.no_grad():
            assert model(tiny_set.inputs[kind][:2].float()).shape == (2, 13)


def test_transfer_weights_copies_everything_but_the_classifier():
    source = T.build_stream("temporal", len(VIDEO_SOURCE_CLASSES))
    target = T.build_stream("temporal", len(TARGET_CLASSES))
    left = T.transfer_weights(target, source.state_dict())
    assert left and all("logits" in name for name in left)
    for name, value in target.state_dict().items():
        if name not in left:
            assert torch.equal(value, source.state_dict()[name])


def test_finetune_saves_and_loads_a_stream(tiny_set: T.StreamSet, tmp_path: Path):
    recipe = T.Recipe(epochs=1, lr=1e-3, batch_size=8)
    source = T.finetune("frame", tiny_set, init="scratch", seed=0, recipe=recipe)
    path = T.save_stream(source, "frame", tmp_path / "s.pt", class_names=TARGET_CLASSES)
    loaded, names = T.load_stream("frame", path)
    assert names == list(TARGET_CLASSES)
    x = tiny_set.inputs["frame"][:3].float()
    assert torch.allclose(loaded(x), source(x))
    rebuilt, meta = load_checkpoint(path)  # the library's own loader reads it too
    assert meta["name"] == "xception" and torch.allclose(rebuilt(x), source(x))
    tuned = T.finetune("frame", tiny_set, init=loaded, seed=0, recipe=recipe)
    assert tuned.training is False
    with pytest.raises(ValueError, match="init"):
        T.finetune("frame", tiny_set, init="imagenet", recipe=recipe)  # type: ignore[arg-type]


def _one_hot(labels: list[int], k: int, scale: float = 5.0) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(labels), k).float() * scale


def test_fusion_report_counts_families_and_disagreements():
    names = TARGET_CLASSES
    labels = torch.arange(len(names))
    idx = {n: i for i, n in enumerate(names)}
    # The temporal stream gets the direction right but confuses objects; the frame stream
    # the reverse; for raise_cup both are split between two answers.
    temporal = _one_hot(labels.tolist(), len(names))
    frame = _one_hot(labels.tolist(), len(names))
    for name in FAMILIES["appearance"]:
        temporal[idx[name]] = _one_hot([idx["brush_teeth"]], len(names))[0]
    for name in FAMILIES["motion"]:
        frame[idx[name]] = _one_hot([idx["walk"]], len(names))[0]
    cup, phone = idx["raise_cup"], idx["raise_phone"]
    temporal[cup] = 0.0
    temporal[cup, [cup, phone]] = 4.0  # direction known, object not
    frame[cup] = 0.0
    frame[cup, [cup, idx["lower_cup"]]] = 4.0  # object known, direction not
    temporal[cup, phone] = 4.1  # the temporal stream picks the wrong object
    frame[cup, idx["lower_cup"]] = 4.1  # the frame stream the wrong direction
    report = T.FusionReport(names, labels, {"temporal": temporal, "frame": frame})
    assert report.accuracy("temporal", "motion") == 1.0
    assert report.accuracy("frame", "motion") == pytest.approx(1 / 6)
    assert report.accuracy("temporal", "appearance") == pytest.approx(1 / 3)
    assert report.accuracy("frame", "appearance") == 1.0
    assert report.clips("appearance") == 3 and report.clips("motion") == 6
    assert report.clips() == len(names)
    dis = report.disagreements()
    assert cup in dis["fusion_right_both_wrong"]
    rows = {row["family"]: row for row in report.family_table()}
    assert set(rows) == {"motion", "appearance", "both", "all"}
    assert rows["both"]["softmax_mean"] == 1.0 and rows["both"]["temporal"] == 0.75
    assert "| family |" in T.markdown_table(report.family_table())
    assert len(report.class_table()) == len(names)


def test_target_margins_measure_each_target_in_points():
    names = TARGET_CLASSES
    labels = torch.arange(len(names))
    k = len(names)
    appearance = [names.index(n) for n in FAMILIES["appearance"]]
    motion = [names.index(n) for n in FAMILIES["motion"]]
    # temporal: right but on appearance, where it says brush_teeth (less sure); frame: right
    # but on motion, where it says walk (unsure); from scratch both always say walk
    temporal = _one_hot(labels.tolist(), k)
    temporal[appearance] = _one_hot([names.index("brush_teeth")] * 3, k, scale=3.0)
    frame = _one_hot(labels.tolist(), k)
    frame[motion] = _one_hot([names.index("walk")] * 6, k, scale=1.0)
    scratch = _one_hot([0] * k, k)
    logits = {
        ("temporal", "pretrained"): temporal,
        ("frame", "pretrained"): frame,
        ("temporal", "scratch"): scratch,
        ("frame", "scratch"): scratch,
    }
    margins = T.target_margins(names, labels, logits)
    assert list(margins) == list(T.TARGETS)
    expected = [100 * 2 / 13, 100 * 5 / 6, 100 * 2 / 3, 100 * 10 / 13, 100 * 7 / 13]
    assert list(margins.values()) == pytest.approx(expected)
    # a frame stream as good as the temporal one on motion misses that target
    logits["frame", "pretrained"] = temporal
    assert T.target_margins(names, labels, logits)["temporal over frame, motion family"] == 0.0


def test_source_table_rows_follow_the_poster_columns():
    names = TARGET_CLASSES
    labels = torch.tensor([names.index("walk"), names.index("phone_call")])
    logits = torch.zeros(2, len(VIDEO_SOURCE_CLASSES))
    logits[0, VIDEO_SOURCE_CLASSES.index("run")] = 3.0
    logits[0, VIDEO_SOURCE_CLASSES.index("walk")] = 2.0
    table = T.source_table(logits, labels, class_names=names)
    assert table.rows[0]["predicted"] == "run" and table.rows[0]["top1/top5"] == "No/Yes"
    assert table.rows[1]["top1/top5"] == "n/a"  # no source equivalent: not scored
    assert table.score.num_scorable_clips == 1 and table.score.accuracy[5] == 1.0
    assert "v_Walk_c01" in table.markdown()


def test_world_checkpoints_ship_small_and_describe_themselves():
    from hartutor.synth.world import IMAGE_CLASSES
    from hartutor.train import read_checkpoint

    classes = {
        T.SOURCE_CHECKPOINTS["temporal"]: VIDEO_SOURCE_CLASSES,
        T.SOURCE_CHECKPOINTS["frame"]: IMAGE_CLASSES,
        T.TARGET_CHECKPOINTS["temporal"]: TARGET_CLASSES,
        T.TARGET_CHECKPOINTS["frame"]: TARGET_CLASSES,
        T.INFLATION_SOURCE_CHECKPOINT: IMAGE_CLASSES,
    }
    for kind in T.STREAMS:
        names = [T.SOURCE_CHECKPOINTS[kind], T.TARGET_CHECKPOINTS[kind]]
        for name in names + ([T.INFLATION_SOURCE_CHECKPOINT] if kind == "temporal" else []):
            path = T.CHECKPOINT_DIR / name
            assert path.stat().st_size <= 5 * 1024 * 1024
            payload = read_checkpoint(path)
            assert "optimizer" not in payload and payload["config"]["seed"] == 0
            assert payload["model"]["stream"] == kind and payload["model"]["data"]
            _, names = T.load_stream(kind, path)
            assert tuple(names) == classes[name]
        # each stream's source and target files were trained with today's recipes, so the
        # script's defaults rebuild them (the seed is recorded, and pretrain seeds the weights)
        for name, recipe in (
            (T.SOURCE_CHECKPOINTS[kind], T.PRETRAIN_RECIPES[kind]),
            (T.TARGET_CHECKPOINTS[kind], T.FINETUNE_RECIPES[kind]),
        ):
            config = dict(read_checkpoint(T.CHECKPOINT_DIR / name)["config"])
            assert config.pop("seed") == 0 and T.Recipe(**config) == recipe, name


def test_world_clips_render_on_the_fly_and_cut_each_streams_input():
    temporal = T.WorldClips(3, "temporal", seed=2, cache_mb=8)
    frame = T.WorldClips(3, "frame", seed=2)
    assert temporal[1]["video"].shape == (3, 16, 32, 32) and temporal[1]["label"] == 1
    assert frame[1]["video"].shape == (3, 4, 96, 96)
    assert temporal.cached_clips == 1 and frame.cached_clips == 0
    assert torch.equal(temporal[1]["video"], temporal[1]["video"])  # from the cache, the same
    for kind in T.STREAMS:
        spec = T.build_stream(kind, 13).input_spec
        assert (spec.num_frames, spec.size[0]) == {"temporal": (16, 32), "frame": (4, 96)}[kind]


def test_augmentation_flips_and_shifts_a_whole_clip_reproducibly():
    clip = torch.randn(2, 3, 6, 6)
    torch.manual_seed(0)
    flips = [T.augment_clip(clip, shift=0) for _ in range(20)]
    assert all(torch.equal(a, clip) or torch.equal(a, clip.flip(-1)) for a in flips)
    assert any(torch.equal(a, clip) for a in flips) and any(
        torch.equal(a, clip.flip(-1)) for a in flips
    )
    padded = {
        flip: torch.nn.functional.pad(c, (2, 2, 2, 2), mode="replicate")
        for flip, c in ((False, clip), (True, clip.flip(-1)))
    }
    windows = [
        p[..., y : y + 6, x : x + 6] for p in padded.values() for y in range(5) for x in range(5)
    ]
    data = T.TensorClips(clip[None].expand(30, -1, -1, -1, -1), torch.zeros(30), augment=True)
    data.shift = 2
    torch.manual_seed(1)
    moved = [data[i]["video"] for i in range(30)]
    # each is the clip (maybe flipped) moved by at most 2 pixels, every frame alike
    assert all(any(torch.equal(a, w) for w in windows) for a in moved)
    assert len({tuple(a.flatten()[:8].tolist()) for a in moved}) > 5
    torch.manual_seed(1)
    assert all(torch.equal(a, data[i]["video"]) for i, a in enumerate(moved))
    assert torch.equal(T.TensorClips(clip[None], torch.zeros(1))[0]["video"], clip)


def test_images_feed_the_temporal_streams_2d_twin_which_inflates(tmp_path: Path):
    images = T.render_images(6, seed=2, split="val", streams=("frame", "temporal"))
    assert images.inputs["frame"].shape == (6, 3, 1, 96, 96)
    assert images.inputs["temporal"].shape == (6, 3, 1, 32, 32)
    twin = T.pretrain("temporal", images, recipe=T.Recipe(epochs=1, lr=1e-3, batch_size=3))
    path = T.save_stream(twin, "temporal", tmp_path / "twin.pt", class_names=images.class_names)
    model = T.inflated_temporal_stream(13, path)
    stem, flat = model.Conv3d_1a_7x7.conv3d.weight, twin.Conv3d_1a_7x7.conv3d.weight[:, :, 3]
    assert torch.allclose(stem.sum(2), flat, atol=1e-6) and torch.equal(
        stem[:, :, 0], stem[:, :, 6]
    )
    clips = T.render_streams(TARGET_CLASSES, 1, seed=3, split="val", streams=("temporal",))
    recipe = T.Recipe(epochs=1, lr=1e-3, batch_size=13)
    tuned = T.finetune("temporal", clips, init="inflated", source=path, recipe=recipe)
    assert tuned(clips.inputs["temporal"][:2].float()).shape == (2, 13)
    with pytest.raises(ValueError, match="temporal"):
        T.finetune("frame", clips, init="inflated", source=path, recipe=recipe)


def test_pretrain_is_reproducible_whatever_ran_before():
    images = T.render_images(4, seed=1, split="val")
    recipe = T.Recipe(epochs=1, lr=1e-3, batch_size=2)
    first = T.pretrain("frame", images, seed=3, recipe=recipe).state_dict()
    torch.rand(5)  # the global generator moved on: the initial weights must not follow it
    second = T.pretrain("frame", images, seed=3, recipe=recipe).state_dict()
    other = T.pretrain("frame", images, seed=4, recipe=recipe).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
