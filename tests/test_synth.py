"""The synthetic action dataset: determinism, exact reversals, tempo pairs, exact flow, I/O."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import hartutor  # noqa: F401  (compatibility shim first)
from hartutor.errors import DataError
from hartutor.synth import (
    ACTIONS,
    CLASS_NAMES,
    REVERSAL_PAIRS,
    TEMPO_PAIRS,
    SyntheticActions,
    clip_seed,
    generate_dataset,
    load_manifest,
    plan_dataset,
    render_clip,
)
from hartutor.synth.actions import FrameTimes

# --- classes ----------------------------------------------------------------------------------


def test_class_list_is_stable_snake_case_and_has_the_required_pairs():
    assert len(CLASS_NAMES) >= 10
    assert len(set(CLASS_NAMES)) == len(CLASS_NAMES)
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", name) for name in CLASS_NAMES)
    assert list(ACTIONS) == list(CLASS_NAMES)
    assert len(REVERSAL_PAIRS) >= 3
    assert len(TEMPO_PAIRS) >= 1
    paired = [name for pair in (*REVERSAL_PAIRS, *TEMPO_PAIRS) for name in pair]
    assert set(paired) <= set(CLASS_NAMES)
    assert len(set(paired)) == len(paired)  # no class in two pairs


def test_unknown_action_and_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="sit_down"):
        render_clip("sit_dwn", 0)
    with pytest.raises(ValueError, match="out of range"):
        render_clip(len(CLASS_NAMES), 0)
    with pytest.raises(ValueError, match="seed"):
        render_clip("walk", -1)
    with pytest.raises(ValueError, match="size"):
        render_clip("walk", 0, size=4)
    with pytest.raises(ValueError, match="at least 2 frames"):
        render_clip("walk", 0, num_frames=1, with_flow=True)
    with pytest.raises(ValueError, match="too large"):
        render_clip("walk", 0, num_frames=1000, size=1000)


def test_camel_case_names_and_labels_are_accepted():
    by_camel = render_clip("SitDown", 3, num_frames=4, size=32)
    by_label = render_clip(CLASS_NAMES.index("sit_down"), 3, num_frames=4, size=32)
    assert by_camel.action == by_label.action == "sit_down"
    assert np.array_equal(by_camel.frames, by_label.frames)


# --- rendering and determinism ---------------------------------------------------------------


@pytest.mark.parametrize("action", CLASS_NAMES)
def test_clip_shapes_types_and_determinism(action: str):
    a = render_clip(action, 11, num_frames=8, size=48, with_flow=True)
    b = render_clip(action, 11, num_frames=8, size=48, with_flow=True)
    assert a.frames.shape == (8, 48, 48, 3) and a.frames.dtype == np.uint8
    assert a.flow.shape == (2, 7, 48, 48) and a.flow.dtype == np.float32
    assert a.parts.shape == (8, 48, 48)
    assert np.isfinite(a.flow).all()
    assert a.label == CLASS_NAMES.index(action) and a.action == action and a.seed == 11
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.flow, b.flow)
    # The figure is visible, and the frames are not blank.
    assert (a.parts >= 0).sum(axis=(1, 2)).min() > 20
    assert a.frames.std() > 5
    other = render_clip(action, 12, num_frames=8, size=48)
    assert not np.array_equal(a.frames, other.frames)


def test_frames_are_the_clean_image_plus_noise_in_frame_order():
    """The renderer composes colour planes apart; frames must still be the clean (T, H, W, 3)
    image plus the noise stream drawn in frame order, rounded (as the shipped checkpoints and
    docs/results.md were evaluated on)."""
    from hartutor.synth.render import Appearance, _stream

    clip = render_clip("wave", 21, num_frames=6, size=(40, 56), keep_clean=True)
    clean = clip.clean
    assert clean.shape == (6, 40, 56, 3) and clean.flags.c_contiguous
    sigma = Appearance.sample(_stream(21, "appearance")).noise_sigma
    assert sigma > 0
    noise = _stream(21, "noise").standard_normal(clean.shape, dtype=np.float32)
    levels = clean * np.float32(255.0) + noise * np.float32(sigma) + np.float32(0.5)
    expected = np.clip(levels, 0.0, 255.0).astype(np.uint8)
    assert np.array_equal(clip.frames, expected)
    quiet = render_clip("wave", 21, num_frames=6, size=(40, 56), noise=False, keep_clean=True)
    assert np.array_equal(quiet.clean, clean)
    rounded = np.clip(clean * np.float32(255.0) + np.float32(0.5), 0.0, 255.0).astype(np.uint8)
    assert np.array_equal(quiet.frames, rounded)


def test_flow_off_gives_the_same_frames():
    with_flow = render_clip("kick", 4, with_flow=True)
    without = render_clip("kick", 4)
    assert without.flow is None
    assert np.array_equal(with_flow.frames, without.frames)


def test_appearance_seed_changes_look_not_motion():
    a = render_clip("wave", 1, appearance_seed=100)
    b = render_clip("wave", 2, appearance_seed=100)
    assert a.params.appearance == b.params.appearance
    assert a.params.motion != b.params.motion
    c = render_clip("wave", 1, appearance_seed=101)
    assert a.params.motion == c.params.motion and a.params.appearance != c.params.appearance


@pytest.mark.parametrize(("forward", "backward"), REVERSAL_PAIRS)
@pytest.mark.parametrize("seed", [0, 1, 17, 2024])
def test_reversal_pairs_are_exact_time_reversals(forward: str, backward: str, seed: int):
    fwd = render_clip(forward, seed, with_flow=True)
    bwd = render_clip(backward, seed, with_flow=True)
    assert np.array_equal(bwd.frames, fwd.frames[::-1])
    assert np.array_equal(bwd.parts, fwd.parts[::-1])
    assert np.array_equal(bwd.camera, fwd.camera[::-1])
    assert bwd.label != fwd.label
    # The set of frames is the same, but the clips are not the same sequence.
    assert not np.array_equal(bwd.frames, fwd.frames)
    # The flow is the reversed clip's own forward flow: on the background it is the
    # negated forward flow of the other clip, reversed in time.
    background = (fwd.parts[1:] < 0) & (fwd.parts[:-1] < 0)
    expected = -fwd.flow[:, ::-1]
    assert np.allclose(bwd.flow[:, background[::-1]], expected[:, background[::-1]], atol=1e-4)


@pytest.mark.parametrize(("slow", "fast"), TEMPO_PAIRS)
def test_tempo_pair_shares_single_frame_statistics_but_not_speed(slow: str, fast: str):
    # Same seed: same figure, scene and phase, so the first frames are identical.
    a = render_clip(slow, 9, with_flow=True, noise=False)
    b = render_clip(fast, 9, with_flow=True, noise=False)
    assert np.array_equal(a.frames[0], b.frames[0])
    assert not np.array_equal(a.frames[5], b.frames[5])
    # Single-frame pose distribution at a fixed frame over many seeds: the same for both classes
    # (two-sample Kolmogorov-Smirnov distance small), while a shuffled-phase control is not.
    times = FrameTimes.make(16, 12.0)
    hips = {}
    for name in (slow, fast):
        program = ACTIONS[name].program
        hips[name] = np.array(
            [program(np.random.default_rng(s), times).pose.hip_near[7] for s in range(600)]
        )
    assert _ks_distance(hips[slow], hips[fast]) < 0.1
    # ... but the fast class moves faster: its mean figure flow is clearly larger.
    speeds = {}
    for name in (slow, fast):
        moving = []
        for seed in range(6):
            clip = render_clip(name, seed, with_flow=True, camera_motion=False, noise=False)
            figure = clip.parts[:-1] >= 0
            moving.append(np.hypot(*clip.flow)[figure].mean())
        speeds[name] = float(np.mean(moving))
    assert speeds[fast] > 1.5 * speeds[slow]


def _ks_distance(x: np.ndarray, y: np.ndarray) -> float:
    grid = np.sort(np.concatenate([x, y]))
    cdf_x = np.searchsorted(np.sort(x), grid, side="right") / len(x)
    cdf_y = np.searchsorted(np.sort(y), grid, side="right") / len(y)
    return float(np.abs(cdf_x - cdf_y).max())


# --- exact flow -------------------------------------------------------------------------------


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    x0 = np.clip(np.floor(x).astype(int), 0, width - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, height - 2)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = (1 - fx) * image[y0, x0] + fx * image[y0, x0 + 1]
    bottom = (1 - fx) * image[y0 + 1, x0] + fx * image[y0 + 1, x0 + 1]
    return (1 - fy) * top + fy * bottom


def _shifted(mask: np.ndarray):
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            yield np.roll(np.roll(mask, dy, 0), dx, 1)


def _interior(parts: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood is all the same body part."""
    inside = parts >= 0
    for shifted in _shifted(parts):
        inside &= shifted == parts
    return inside


def _near_figure(parts: np.ndarray) -> np.ndarray:
    near = np.zeros(parts.shape, bool)
    for shifted in _shifted(parts >= 0):
        near |= shifted
    return near


def _warp_errors(clip, frames: np.ndarray, flow: np.ndarray) -> dict[str, np.ndarray]:
    """|frame t - frame t+1 warped back with ``flow``| (grey levels, max over RGB) on the
    background (away from the figure and the ground line's sharp edge) and on figure interiors
    whose target is visible and interior to the same part at t+1 (not occluded)."""
    images = frames.astype(np.float64) * (255.0 if frames.dtype != np.uint8 else 1.0)
    parts = clip.parts.astype(int)
    num_frames, height, width = parts.shape
    ground = clip.params.appearance.ground * height - clip.camera[:, 1]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    errors: dict[str, list[np.ndarray]] = {"background": [], "figure": []}
    for t in range(num_frames - 1):
        # The masks come from the clip's true flow; the warp uses the flow under test.
        warped = _bilinear(images[t + 1], xs + flow[0, t], ys + flow[1, t])
        x, y = xs + clip.flow[0, t], ys + clip.flow[1, t]
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        inside = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < width) & (y0 + 1 < height)
        x0, y0 = np.clip(x0, 0, width - 2), np.clip(y0, 0, height - 2)

        def corners(m, x0=x0, y0=y0):
            return np.stack([m[y0, x0], m[y0, x0 + 1], m[y0 + 1, x0], m[y0 + 1, x0 + 1]])

        src, dst = parts[t], parts[t + 1]
        background = (
            inside
            & ~_near_figure(src)
            & ~corners(_near_figure(dst)).any(0)
            & (np.abs(ys - ground[t]) > 2)
        )
        figure = (
            _interior(src)
            & inside
            & (corners(dst) == src[None]).all(0)
            & corners(_interior(dst)).all(0)
        )
        error = np.abs(warped - images[t]).max(axis=-1)
        errors["background"].append(error[background])
        errors["figure"].append(error[figure])
    return {key: np.concatenate(value) for key, value in errors.items()}


@pytest.mark.parametrize("action", CLASS_NAMES)
def test_warping_the_next_frame_with_the_flow_reproduces_the_frame(action: str):
    for seed in (5, 11):
        clip = render_clip(action, seed, with_flow=True, noise=False, keep_clean=True)
        errors = _warp_errors(clip, clip.clean, clip.flow)
        assert len(errors["figure"]) > 50 and len(errors["background"]) > 10_000
        # Measured: at most 1.3 grey levels (figure) and 0.5 (background), bilinear error only.
        assert errors["figure"].max() < 2.5, errors["figure"].max()
        assert errors["background"].max() < 1.0, errors["background"].max()
        # The uint8 frames (no noise) obey the same law, up to rounding.
        quantized = _warp_errors(clip, clip.frames, clip.flow)
        assert quantized["figure"].max() < 3.5 and quantized["background"].max() < 2.0


def test_the_warp_check_fails_for_a_wrong_flow():
    """The check above can fail: a zero or a shifted flow leaves large errors."""
    clip = render_clip("bend_down", 5, with_flow=True, noise=False, keep_clean=True)
    true = _warp_errors(clip, clip.clean, clip.flow)
    zero = _warp_errors(clip, clip.clean, np.zeros_like(clip.flow))
    shifted = _warp_errors(clip, clip.clean, clip.flow + np.float32(1.0))
    assert zero["figure"].max() > 10 * true["figure"].max()
    assert shifted["background"].mean() > 10 * true["background"].mean()


@pytest.mark.parametrize("action", ["walk", "sit_down", "jumping_jacks", "stand_up"])
def test_flow_is_exactly_zero_for_a_still_figure_and_camera(action: str):
    clip = render_clip(action, 3, with_flow=True, still=True, camera_motion=False, noise=False)
    assert np.array_equal(clip.flow, np.zeros_like(clip.flow))
    assert all(np.array_equal(frame, clip.frames[0]) for frame in clip.frames)


def test_background_flow_is_the_camera_motion():
    clip = render_clip("run", 8, with_flow=True)
    camera_step = -(clip.camera[1:] - clip.camera[:-1])  # (T-1, 2)
    background = clip.parts[:-1] < 0
    for t in range(len(camera_step)):
        assert np.allclose(clip.flow[0, t][background[t]], camera_step[t, 0], atol=1e-5)
        assert np.allclose(clip.flow[1, t][background[t]], camera_step[t, 1], atol=1e-5)
    # The tracking camera pans: the background scrolls in the direction opposite to facing.
    facing = clip.params.appearance.facing
    assert np.all(np.sign(camera_step[:, 0]) == -facing)


# --- the torch Dataset ------------------------------------------------------------------------


def test_dataset_items_are_pytorchvideo_style_dicts():
    data = SyntheticActions(26, seed=1, num_frames=8, size=32, with_flow=True)
    assert len(data) == 26
    item = data[3]
    assert set(item) == {"video", "label", "action", "seed", "flow"}
    assert item["video"].shape == (3, 8, 32, 32) and item["video"].dtype == torch.float32
    assert float(item["video"].min()) >= 0.0 and float(item["video"].max()) <= 1.0
    assert item["flow"].shape == (2, 7, 32, 32) and item["flow"].dtype == torch.float32
    assert item["action"] == CLASS_NAMES[item["label"]]
    again = data[3]
    assert torch.equal(item["video"], again["video"])
    clip = render_clip(item["action"], item["seed"], num_frames=8, size=32)
    assert torch.equal(item["video"], torch.from_numpy(clip.frames).permute(3, 0, 1, 2) / 255.0)
    # Balanced classes.
    counts = np.bincount(data.labels, minlength=len(CLASS_NAMES))
    assert counts.max() - counts.min() <= 1
    assert [data.label_of(i) for i in range(len(data))] == list(data.labels)


def test_splits_never_share_clip_seeds():
    seeds = {
        split: {clip_seed(seed, split, i) for seed in range(3) for i in range(500)}
        for split in ("train", "val", "test")
    }
    assert not seeds["train"] & seeds["val"]
    assert not seeds["train"] & seeds["test"]
    assert not seeds["val"] & seeds["test"]
    assert all(len(s) == 1500 for s in seeds.values())
    assert clip_seed(2**29 - 1, "test", 2**32 - 1) < 2**63
    train = SyntheticActions(4, split="train", num_frames=4, size=16)
    test = SyntheticActions(4, split="test", num_frames=4, size=16)
    assert train[0]["seed"] != test[0]["seed"]
    with pytest.raises(ValueError, match="split"):
        SyntheticActions(4, split="validation")


def test_dataset_class_subset_transform_and_workers():
    def add_one(sample):
        sample["video"] = sample["video"] + 1
        return sample

    data = SyntheticActions(
        6, classes=["stand_up", "SitDown"], num_frames=4, size=24, transform=add_one
    )
    assert data.class_names == ("stand_up", "sit_down")
    labels = [data[i]["label"] for i in range(6)]
    actions = [data[i]["action"] for i in range(6)]
    assert labels == [0, 1, 0, 1, 0, 1]
    assert actions == ["stand_up", "sit_down"] * 3
    assert float(data[0]["video"].min()) >= 1.0
    loader = DataLoader(data, batch_size=3, num_workers=2)
    batches = list(loader)
    assert batches[0]["video"].shape == (3, 3, 4, 24, 24)
    assert torch.equal(batches[1]["video"][0], data[3]["video"])
    assert batches[0]["label"].tolist() == [0, 1, 0]


def test_the_cache_renders_each_clip_once_within_its_budget_and_serves_the_same_items(
    monkeypatch,
):
    import hartutor.synth.dataset as dataset_module

    renders: list[int] = []
    real_render = dataset_module.render_clip

    def counting_render(action, seed, **kwargs):
        renders.append(seed)
        return real_render(action, seed, **kwargs)

    def scale_flow_in_place(sample):
        sample["flow"].mul_(2.0)  # a careless transform must not reach the cached flow
        return sample

    plain = SyntheticActions(5, seed=3, num_frames=4, size=16, with_flow=True)
    expected = [plain[i] for i in range(5)]
    clip_bytes = 4 * 16 * 16 * 3 + 2 * 3 * 16 * 16 * 4  # uint8 frames + float32 flow
    monkeypatch.setattr(dataset_module, "render_clip", counting_render)
    cached = SyntheticActions(
        5,
        seed=3,
        num_frames=4,
        size=16,
        with_flow=True,
        cache_mb=3.5 * clip_bytes / 2**20,  # room for 3 clips, not 4
        transform=scale_flow_in_place,
    )
    renders.clear()  # the constructor's check renders one clip
    for _ in range(3):  # three epochs
        for i in range(5):
            item = cached[i]
            assert torch.equal(item["video"], expected[i]["video"])
            assert torch.equal(item["flow"], 2.0 * expected[i]["flow"])
            assert (item["label"], item["action"], item["seed"]) == (
                expected[i]["label"],
                expected[i]["action"],
                expected[i]["seed"],
            )
    assert cached.cached_clips == 3
    # Clips 0-2 rendered once; 3 and 4 (past the budget) in every epoch.
    seeds = [expected[i]["seed"] for i in range(5)]
    assert sorted(renders) == sorted(seeds[:3] + seeds[3:] * 3)
    assert "cache_mb=" in repr(cached) and "cache_mb" not in repr(plain)
    assert plain.cached_clips == 0
    # The cached clips share one block per kind (no heap pinned apart clip by clip), sized
    # for the 3 the budget holds.
    blocks = {
        kind: {tensor.untyped_storage().data_ptr() for tensor in parts}
        for kind, parts in zip(
            ("frames", "flow"), zip(*cached._cache.values(), strict=True), strict=True
        )
    }
    assert all(len(pointers) == 1 for pointers in blocks.values()), blocks
    assert [len(slab) for slab in cached._slabs] == [3, 3]


def test_the_cache_is_not_pickled_nor_filled_in_dataloader_workers(monkeypatch):
    import pickle

    import hartutor.synth.dataset as dataset_module

    data = SyntheticActions(4, num_frames=4, size=16, cache_mb=1)
    data[0], data[1]
    assert data.cached_clips == 2
    copy = pickle.loads(pickle.dumps(data))
    assert copy.cached_clips == 0 and copy.cache_mb == 1
    assert torch.equal(copy[1]["video"], data[1]["video"])
    monkeypatch.setattr(dataset_module, "get_worker_info", lambda: object())  # in a worker
    data[2]
    assert data.cached_clips == 2
    with pytest.raises(ValueError, match="cache_mb"):
        SyntheticActions(4, cache_mb=-1)
    with pytest.raises(ValueError, match="cache_mb"):
        SyntheticActions(4, cache_mb=float("nan"))


# --- writing the dataset to disk -------------------------------------------------------------


def test_plan_keeps_groups_within_one_split_and_balances_classes():
    plan = plan_dataset(len(CLASS_NAMES) * 40, seed=2)
    by_group: dict[tuple[str, int], set[str]] = {}
    for row in plan:
        by_group.setdefault((str(row["action"]), int(row["group"])), set()).add(str(row["split"]))
    assert all(len(splits) == 1 for splits in by_group.values())
    for name in CLASS_NAMES:
        rows = [r for r in plan if r["action"] == name]
        assert len(rows) == 40
        assert len({r["group"] for r in rows}) == 25  # as UCF101
        fractions = {s: sum(r["split"] == s for r in rows) / 40 for s in ("train", "val", "test")}
        assert 0.55 <= fractions["train"] <= 0.8 and fractions["val"] > 0 and fractions["test"] > 0
    assert len({r["seed"] for r in plan}) == len(plan)
    assert len({r["path"] for r in plan}) == len(plan)
    # Clips of a group share an appearance; groups do not.
    appearance = {(r["action"], r["group"]): r["appearance_seed"] for r in plan}
    assert len(set(appearance.values())) == len(appearance)


def test_generate_dataset_writes_ucf101_layout_and_reads_back(tmp_path: Path):
    from hartutor.video import read_video

    classes = ["sit_down", "stand_up", "walk"]
    out = generate_dataset(
        tmp_path / "synth",
        num_clips=9,
        seed=4,
        num_frames=8,
        size=32,
        classes=classes,
        progress=False,
    )
    class_ind = (out / "splits" / "classInd.txt").read_text().splitlines()
    assert class_ind == ["1 SitDown", "2 StandUp", "3 Walk"]
    entries = load_manifest(out)
    assert len(entries) == 9
    for entry in entries:
        assert entry.path.is_file()
        assert re.fullmatch(
            rf"videos/{entry.class_name}/v_{entry.class_name}_g\d\d_c\d\d\.mp4", entry.relative_path
        )
    train = (out / "splits" / "trainlist01.txt").read_text().splitlines()
    test = (out / "splits" / "testlist01.txt").read_text().splitlines()
    val = (out / "splits" / "vallist01.txt").read_text().splitlines()
    assert all(re.fullmatch(r"\w+/v_\w+_g\d\d_c\d\d\.mp4 [1-3]", line) for line in train + val)
    assert all(re.fullmatch(r"\w+/v_\w+_g\d\d_c\d\d\.mp4", line) for line in test)
    assert len(train) + len(val) + len(test) == 9
    by_split = {e.split for e in entries}
    assert by_split == {"train", "val", "test"}
    assert {
        e.relative_path.removeprefix("videos/") for e in load_manifest(out, split="test")
    } == set(test)
    # A clip read back matches its render (H.264 is lossy: compare loosely).
    entry = entries[0]
    video = read_video(entry.path)
    assert tuple(video.frames.shape) == (8, 32, 32, 3)
    clip = render_clip(
        entry.action, entry.seed, num_frames=8, size=32, appearance_seed=entry.appearance_seed
    )
    difference = np.abs(video.frames.numpy().astype(int) - clip.frames.astype(int)).mean()
    assert difference < 12, difference
    with open(out / "manifest.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert {"path", "class_name", "label", "seed", "split", "frames", "size", "fps"} <= set(header)


def test_interrupted_generation_leaves_no_manifest(tmp_path: Path, monkeypatch):
    import hartutor.video

    out = tmp_path / "synth"
    generate_dataset(out, num_clips=2, num_frames=4, size=16, classes=["wave"], progress=False)
    assert (out / "manifest.csv").is_file()
    real_write = hartutor.video.write_video
    calls = []

    def failing_write(path, frames, fps, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_write(path, frames, fps, **kwargs)

    monkeypatch.setattr(hartutor.video, "write_video", failing_write)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(out, num_clips=4, num_frames=4, size=16, classes=["wave"], progress=False)
    assert not (out / "manifest.csv").exists()
    with pytest.raises(DataError, match="hartutor synth"):
        load_manifest(out)


def test_load_manifest_rejects_bad_manifests(tmp_path: Path):
    out = generate_dataset(
        tmp_path / "d", num_clips=2, num_frames=4, size=16, classes=["clap"], progress=False
    )
    manifest = out / "manifest.csv"
    original = manifest.read_text()
    first = load_manifest(out)[0]
    first.path.unlink()
    with pytest.raises(DataError, match="missing"):
        load_manifest(out)
    assert len(load_manifest(out, check_files=False)) == 2
    manifest.write_text(original.replace(first.relative_path, "../../etc/passwd"))
    with pytest.raises(DataError, match="outside"):
        load_manifest(out, check_files=False)
    manifest.write_text(original.replace(",clap,", ",no_such_action,"))
    with pytest.raises(DataError, match="line 2"):
        load_manifest(out, check_files=False)
