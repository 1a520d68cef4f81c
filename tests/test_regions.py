"""Masks of the held object and the moving limbs, and attribution mass measured on them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import hartutor  # noqa: F401  (compatibility shim first)
from hartutor import transfer as T
from hartutor.synth import render_clip
from hartutor.synth.regions import (
    limb_mask,
    moving_parts,
    object_mask,
    object_parts,
    part_speeds,
)


def _clip(action: str, **kwargs):
    return render_clip(action, 0, num_frames=16, size=96, camera_motion=False, **kwargs)


def test_object_mask_is_exactly_the_held_objects_pixels():
    drink = _clip("drink")
    assert object_parts(drink) == ("cup_0", "cup_1")
    mask = object_mask(drink)
    names = np.array(drink.part_names)
    shown = names[drink.parts[mask]]
    assert mask.any() and all(n.startswith("cup_") for n in shown)
    # every pixel outside the mask shows something else (background or the body)
    outside = drink.parts[~mask]
    assert not any(names[i].startswith("cup_") for i in np.unique(outside[outside >= 0]))
    assert not object_mask(_clip("raise_arms")).any()  # nothing held


def test_moving_parts_come_from_the_flow_and_a_still_clip_has_none():
    arms = _clip("raise_arms", with_flow=True)
    moving = moving_parts(arms)
    assert set(moving) == {"upper_arm_far", "forearm_far", "upper_arm_near", "forearm_near"}
    assert part_speeds(arms)["torso"] == 0.0
    still = _clip("raise_arms", with_flow=True, still=True)
    assert moving_parts(still) == ()
    # the same limbs are masked in the still twin by name
    assert limb_mask(still, moving).any() and not limb_mask(still).any()
    with pytest.raises(ValueError, match="with_flow"):
        part_speeds(_clip("raise_arms"))


def test_stream_masks_follow_each_streams_adapter():
    from hartutor.models.common import uniform_indices

    second = int(uniform_indices(16, 4)[1])  # the frame stream's second frame in the clip
    mask = np.zeros((16, 96, 96), bool)
    mask[second, :48, :] = True  # its top half
    temporal = T.stream_mask("temporal", mask)
    frame = T.stream_mask("frame", mask)
    assert temporal.shape == (16, 32, 32) and frame.shape == (4, 96, 96)
    assert temporal[second, :15].min() == 1 and temporal[second, 17:].max() == 0
    assert temporal[second - 1].max() == 0
    assert frame[1].mean() == pytest.approx(0.5) and frame[0].max() == 0


def _row(heat: torch.Tensor, mask: torch.Tensor) -> T.RegionMass:
    return T.RegionMass("drink", "appearance", 0, "frame", False, heat, {"object": mask})


def test_mass_and_enrichment_against_an_even_spread():
    mask = torch.zeros(4, 96, 96)
    mask[:, :12, :12] = 1.0
    even = _row(torch.ones(4, 96, 96), mask)
    assert even.mass("object") == pytest.approx(even.area("object"))
    assert even.enrichment("object") == pytest.approx(1.0)
    focused = _row(mask * 5.0, mask)
    assert focused.mass("object") == pytest.approx(1.0)
    assert focused.enrichment("object") == pytest.approx(1 / focused.area("object"))
    # pooled to 32x32 the same region covers the same share of the frame
    assert focused.area("object", 32) == pytest.approx(focused.area("object"))
    assert math.isnan(T.mass_on(torch.zeros(4, 96, 96), mask))


def _claim_rows(frame_on_object: float, temporal_on_limbs_moving: float) -> list[T.RegionMass]:
    rows = []
    obj = torch.zeros(16, 32, 32)
    obj[:, :4, :4] = 1
    limb = torch.zeros(16, 32, 32)
    limb[:, 20:, 20:] = 1
    for seed in range(8):
        for still in (False, True):
            for stream in ("temporal", "frame"):
                heat = torch.ones(16, 32, 32)
                if stream == "frame":
                    heat = heat + frame_on_object * obj
                elif not still:
                    heat = heat + temporal_on_limbs_moving * limb
                rows.append(
                    T.RegionMass(
                        "drink",
                        "appearance",
                        seed,
                        stream,
                        still,
                        heat + 0.01 * seed,
                        {"object": obj, "limb": limb},
                    )
                )
    return rows


def test_claims_hold_only_when_the_paired_comparison_does():
    good = {c.claim: c for c in T.region_claims(_claim_rows(9.0, 9.0))}
    assert good["object: frame stream above temporal stream"].holds
    assert good["moving limbs: temporal stream above frame stream"].holds
    assert good["temporal stream: limbs when moving above the same limbs held still"].holds
    assert "does not survive" not in T.claims_verdict(T.region_claims(_claim_rows(9.0, 9.0)))
    bad_rows = _claim_rows(9.0, 0.0)  # the temporal stream spreads evenly
    bad = {c.claim: c for c in T.region_claims(bad_rows)}
    assert bad["object: frame stream above temporal stream"].holds
    assert not bad["temporal stream: moving limbs above chance"].holds
    verdict = T.claims_verdict(T.region_claims(bad_rows))
    assert "temporal stream on the moving limbs does not survive" in verdict
    assert "frame stream on the object survives" in verdict
    assert T.sign_test(8, 0) == pytest.approx(1 / 256) and T.sign_test(0, 0) == 1.0


def test_region_masses_attribute_each_stream_of_the_world_fusion():
    world, names = T.world_fusion()
    rows = T.region_masses(world, names, ["drink"], (0,), method="saliency")
    assert [(r.stream, r.still) for r in rows] == [
        ("temporal", False),
        ("frame", False),
        ("temporal", True),
        ("frame", True),
    ]
    for r in rows:
        assert r.heat.shape == ((16, 32, 32) if r.stream == "temporal" else (4, 96, 96))
        assert 0 < r.area("object") < 0.02 and 0 <= r.mass("object") <= 1
    summary = T.region_summary(rows)
    assert {(s["stream"], s["clip"]) for s in summary} == {
        (k, c) for k in ("temporal", "frame") for c in ("moving", "still")
    }
