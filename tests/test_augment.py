"""Clip augmentation: one crop and flip per clip, and flow that stays true to the pixels."""

from __future__ import annotations

import torch

from hartutor.augment import ClipAugment
from hartutor.synth import render_clip


def test_every_frame_gets_the_same_crop_and_flip():
    torch.manual_seed(0)
    frame = torch.rand(3, 1, 40, 60)
    clip = frame.expand(3, 8, 40, 60).clone()  # eight identical frames
    for _ in range(5):
        out = ClipAugment(24)({"video": clip})["video"]
        assert out.shape == (3, 8, 24, 24)
        assert torch.equal(out, out[:, :1].expand_as(out))  # still identical: one draw per clip


def test_flow_is_scaled_with_the_resize_and_negated_by_the_flip():
    # the exact flow of a synthetic clip, moved through the same crop as its frames
    clip = render_clip("walk", seed=3, with_flow=True, num_frames=4, size=64)
    video = torch.from_numpy(clip.frames).permute(3, 0, 1, 2).float() / 255
    flow = torch.from_numpy(clip.flow).float()
    flow = torch.ones_like(flow) * torch.tensor([2.0, -1.0]).view(2, 1, 1, 1)  # uniform motion
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        augment = ClipAugment(32, scale=(0.5, 0.5), ratio=(1.0, 1.0), flip=0.5)
        out = augment({"video": video, "flow": flow, "label": 1})
        assert out["label"] == 1 and out["video"].shape == (3, 4, 32, 32)
        side = round((0.5 * 64 * 64) ** 0.5)  # the crop's side in source pixels
        dx, dy = out["flow"][0].mean().item(), out["flow"][1].mean().item()
        assert abs(abs(dx) - 2.0 * 32 / side) < 1e-4 and abs(dy + 1.0 * 32 / side) < 1e-4
        seen.add(dx > 0)
    assert seen == {True, False}  # flipped clips move left, the others right
    torch.manual_seed(0)
    never = ClipAugment(32, flip=0.0)({"video": video, "flow": flow})
    assert (never["flow"][0] > 0).all()


def test_folder_training_clips_are_augmented_and_validation_clips_are_not(tmp_path):
    from hartutor import standins
    from hartutor.data import build_datasets
    from hartutor.models import build_model

    root = standins.make_ucf101(
        tmp_path, actions={"Bowling": "bend_down"}, groups=(3, 22), num_frames=20
    )
    model = build_model("two_stream", preset="tiny", num_classes=101)
    side = model.input_spec.size[0]
    bundle = build_datasets(root, model=model)
    plain = build_datasets(root, model=model, augment=False)
    torch.manual_seed(0)
    first, second = bundle.train[0], bundle.train[0]
    assert first["video"].shape[-2:] == (side, side) and first["flow"].shape[-2:] == (side, side)
    assert not torch.equal(first["video"], second["video"])  # a new crop at every access
    assert any(isinstance(t, ClipAugment) for t in bundle.train.transform.transforms)
    assert plain.train.transform is plain.val.transform is not None
    assert bundle.val.size == (side, side) and bundle.train.size == round(side * 8 / 7)
    assert not any(isinstance(t, ClipAugment) for t in bundle.val.transform.transforms)
