"""The transfer world: new classes, held objects, sources, mapping, and the untouched old set."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_synth import _warp_errors

import hartutor  # noqa: F401  (compatibility shim first)
from hartutor.labels.synthetic import target_topk_from_source
from hartutor.synth import CLASS_NAMES, render_clip
from hartutor.synth.actions import WORLD_CLASS_NAMES, WORLD_REVERSAL_PAIRS, get_action, label_of
from hartutor.synth.objects import OBJECT_NAMES
from hartutor.synth.world import (
    FAMILIES,
    IMAGE_CLASSES,
    TARGET_CLASSES,
    TARGET_TO_VIDEO_SOURCE,
    VIDEO_SOURCE_CLASSES,
    SyntheticImages,
    object_box,
)

#: sha256 (first 16 hex digits) of frames, flow and parts of every original class (seed 5, 6
#: frames of 40x40), rendered by the code before the transfer world was added: the world must
#: not change a single bit of the classes notebooks 00-04 and the shipped checkpoints use.
ORIGINAL_CLIP_HASHES = {
    "walk": "ce6c1f5c40fd742a",
    "run": "bd6b139c3a49c9c0",
    "sit_down": "0f876d0b342e9ed1",
    "stand_up": "e738ab75ec6785de",
    "bend_down": "024d18c97a66dba9",
    "straighten_up": "b059ea7cb549c91c",
    "raise_arms": "36f4afc4fd0b7ac1",
    "lower_arms": "b45946f625496b77",
    "wave": "a81c380e5fcfbebd",
    "clap": "c576cb7f1414c169",
    "jumping_jacks": "11453de5eb2963f8",
    "punch": "e939e4f3070e9241",
    "kick": "894ac09226acd59b",
}


def _clip_hash(name: str) -> str:
    clip = render_clip(name, 5, num_frames=6, size=40, with_flow=True)
    digest = hashlib.sha256()
    for array in (clip.frames, clip.flow, clip.parts):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_original_classes_render_bit_identically(name: str):
    assert _clip_hash(name) == ORIGINAL_CLIP_HASHES[name]


def test_world_classes_extend_the_label_space_without_moving_the_old_labels():
    assert WORLD_CLASS_NAMES[: len(CLASS_NAMES)] == CLASS_NAMES
    assert all(label_of(name) == i for i, name in enumerate(CLASS_NAMES))
    assert set(TARGET_CLASSES) <= set(WORLD_CLASS_NAMES)
    assert set(VIDEO_SOURCE_CLASSES) <= set(WORLD_CLASS_NAMES)
    assert get_action("BrushTeeth").name == "brush_teeth"
    clip = render_clip("phone_call", 2, num_frames=3, size=32)
    assert clip.label == WORLD_CLASS_NAMES.index("phone_call") and clip.params.held == "phone"
    with pytest.raises(ValueError, match="out of range"):
        render_clip(len(CLASS_NAMES), 0)  # integer labels still address the original set
    with pytest.raises(ValueError, match="unknown object"):
        render_clip("walk", 0, held="umbrella")


def test_target_families_partition_the_target_and_the_world_classes_are_deterministic():
    assert sorted(n for names in FAMILIES.values() for n in names) == sorted(TARGET_CLASSES)
    for name in TARGET_CLASSES:
        a = render_clip(name, 9, num_frames=4, size=48, with_flow=True)
        b = render_clip(name, 9, num_frames=4, size=48, with_flow=True)
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.flow, b.flow)


@pytest.mark.parametrize(("forward", "backward"), WORLD_REVERSAL_PAIRS)
@pytest.mark.parametrize("seed", [0, 13])
def test_world_reversal_pairs_are_exact_time_reversals(forward: str, backward: str, seed: int):
    fwd = render_clip(forward, seed, size=64, with_flow=True)
    bwd = render_clip(backward, seed, size=64, with_flow=True)
    assert np.array_equal(bwd.frames, fwd.frames[::-1])
    assert np.array_equal(bwd.parts, fwd.parts[::-1])
    assert fwd.params.held == bwd.params.held and bwd.label != fwd.label
    assert not np.array_equal(bwd.frames, fwd.frames)


@pytest.mark.parametrize("action", ["brush_teeth", "raise_cup", "lower_phone", "raise_to_face"])
def test_warping_with_the_flow_reproduces_frames_with_held_objects(action: str):
    clip = render_clip(action, 5, size=96, with_flow=True, noise=False, keep_clean=True)
    objects = [i for i, n in enumerate(clip.part_names) if n.split("_")[0] in OBJECT_NAMES]
    assert objects and np.isin(clip.parts, objects).any()  # the object is drawn
    errors = _warp_errors(clip, clip.clean, clip.flow)
    assert len(errors["figure"]) > 50
    # Body parts alone stay under 2.5 grey levels (tests/test_synth.py); the objects' thin
    # second-colour parts add sharp edges inside a capsule, where bilinear sampling errs more.
    assert np.percentile(errors["figure"], 99) < 2.5 and errors["figure"].max() < 6.0
    assert errors["background"].max() < 1.0
    # and the check would notice a wrong flow on the figure
    shifted = _warp_errors(clip, clip.clean, clip.flow + np.float32(1.0))
    assert shifted["figure"].mean() > 3 * errors["figure"].mean()


def test_appearance_classes_share_the_motion_and_differ_only_where_the_object_is():
    clips = {name: render_clip(name, 4, size=96) for name in FAMILIES["appearance"]}
    first = clips["brush_teeth"]
    object_ids = {
        name: [i for i, n in enumerate(c.part_names) if n.startswith(c.params.held)]
        for name, c in clips.items()
    }
    for name, clip in clips.items():
        assert clip.params.motion == first.params.motion
        assert clip.params.appearance == first.params.appearance
        # Pixels away from both objects (and their anti-aliased rims) are identical.
        near = np.isin(clip.parts, object_ids[name]) | np.isin(
            first.parts, object_ids["brush_teeth"]
        )
        near = F.max_pool2d(torch.from_numpy(near).float()[:, None], 5, 1, 2)[:, 0].bool().numpy()
        assert np.array_equal(clip.frames[~near], first.frames[~near])
        if name != "brush_teeth":
            assert not np.array_equal(clip.frames, first.frames)


def test_the_objects_shape_not_its_colour_names_it():
    """Same appearance seed, different objects: the object's colours are the same draw."""
    a = render_clip("drink", 8, num_frames=2, size=96, keep_clean=True)
    b = render_clip("phone_call", 8, num_frames=2, size=96, keep_clean=True)
    cup = [i for i, n in enumerate(a.part_names) if n.startswith("cup")]
    phone = [i for i, n in enumerate(b.part_names) if n.startswith("phone")]
    colours_a = {tuple(np.round(a.clean[a.parts == i].mean(0), 1)) for i in cup[:1]}
    colours_b = {tuple(np.round(b.clean[b.parts == i].mean(0), 1)) for i in phone[:1]}
    assert colours_a and colours_b
    main_a = a.clean[a.parts == cup[0]] / a.clean[a.parts == cup[0]].max(axis=-1, keepdims=True)
    main_b = b.clean[b.parts == phone[0]] / b.clean[b.parts == phone[0]].max(axis=-1, keepdims=True)
    # Same hue (up to shading): the normalised colour of the main part agrees.
    assert np.allclose(np.median(main_a, 0), np.median(main_b, 0), atol=0.05)


def test_the_mapping_has_the_ucf101_form_and_covers_the_target_in_part():
    assert set(TARGET_TO_VIDEO_SOURCE) == set(TARGET_CLASSES)
    mapped = [m for ms in TARGET_TO_VIDEO_SOURCE.values() for m in ms]
    assert all(isinstance(v, tuple) for v in TARGET_TO_VIDEO_SOURCE.values())
    assert set(mapped) <= set(VIDEO_SOURCE_CLASSES)
    assert set(VIDEO_SOURCE_CLASSES) - set(mapped)  # source-only classes
    assert any(not v for v in TARGET_TO_VIDEO_SOURCE.values())  # target-only classes
    assert len(VIDEO_SOURCE_CLASSES) > len(TARGET_CLASSES)


def test_table1_scorer_goes_through_the_mapping():
    names = ["walk", "raise_cup", "phone_call"]
    probs = np.full((3, len(VIDEO_SOURCE_CLASSES)), 0.01)
    probs[0, VIDEO_SOURCE_CLASSES.index("walk")] = 0.9  # top-1 right
    probs[1, VIDEO_SOURCE_CLASSES.index("lower_from_face")] = 0.9  # wrong direction first
    probs[1, VIDEO_SOURCE_CLASSES.index("raise_to_face")] = 0.5  # the broader class second
    score = target_topk_from_source(probs, names, k=(1, 5))
    assert score.num_scorable_clips == 2  # phone_call has no source equivalent
    assert score.correct == {1: 1, 5: 2}
    assert score.best_rank == (0, 1, -1)


def test_image_source_shows_every_object_still_and_deterministically():
    data = SyntheticImages(len(IMAGE_CLASSES) * 2, seed=3)
    assert data.class_names == OBJECT_NAMES and len(IMAGE_CLASSES) >= 10
    item = data[4]
    assert item["video"].shape == (3, 1, 96, 96) and item["label"] == 4
    assert item["action"] == IMAGE_CLASSES[4]
    assert torch.equal(item["video"], data[4]["video"])
    assert not torch.equal(data[4]["video"], data[14]["video"])
    assert SyntheticImages(5, split="val")[0]["video"].shape == (3, 1, 96, 96)


def test_image_source_zoom_centres_the_object_and_keeps_the_scene():
    from hartutor.synth.regions import object_mask

    plain, zoomed = SyntheticImages(3, seed=1), SyntheticImages(3, seed=1, zoom=(0.25, 0.5))
    item = zoomed[2]
    assert item["video"].shape == (3, 1, 96, 96) and item["label"] == plain[2]["label"]
    assert torch.equal(item["video"], zoomed[2]["video"])  # deterministic
    assert not torch.equal(item["video"], plain[2]["video"])
    with pytest.raises(ValueError, match="zoom"):
        SyntheticImages(3, zoom=(0.5, 2.0))
    # the box: a quarter of the side, around the object, inside the frame
    mask = object_mask(render_clip("drink", 5, num_frames=2, size=192, held="cup"))[0]
    top, left, side = object_box(mask, 0.25)
    assert side == 48 and 0 <= top <= 192 - side and 0 <= left <= 192 - side
    ys, xs = np.nonzero(mask)
    assert top <= ys.mean() < top + side and left <= xs.mean() < left + side
    inside = mask[top : top + side, left : left + side].mean()
    assert inside > 8 * mask.mean()  # the object fills far more of the crop than of the frame
    assert object_box(np.zeros((16, 16), dtype=bool), 0.5) is None
