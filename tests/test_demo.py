"""``hartutor demo``: runs offline on the embedded default, prints per-stream and fused top-3.

The default (the transfer world) is checked for its structure and its clip rule, never for
which stream is right on which clip: the shipped target checkpoints may be retrained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hartutor import demo
from hartutor.models import build_model
from hartutor.synth import CLASS_NAMES
from hartutor.train import save_checkpoint


@pytest.fixture()
def fusion_checkpoint(tmp_path: Path, monkeypatch) -> Path:
    """A tiny fusion with random weights standing in for the shipped one (fast, offline)."""
    torch.manual_seed(0)
    kwargs = {"preset": "tiny", "num_classes": len(CLASS_NAMES)}
    model = build_model("i3d_xception_fusion", **kwargs)
    path = save_checkpoint(
        tmp_path / "fusion.pt",
        {
            "state_dict": model.state_dict(),
            "model": {"name": "i3d_xception_fusion", "kwargs": kwargs},
            "class_names": list(CLASS_NAMES),
        },
    )
    monkeypatch.setattr(demo, "shipped_checkpoint", lambda name: path)
    return path


def test_demo_on_synthetic_clips_reports_every_stream_and_the_fusion(fusion_checkpoint, tmp_path):
    result = demo.run_demo(num_clips=4, seed=3, out=tmp_path / "demo.png", motion=True)
    assert result.mode == "tiny" and len(result.clips) == 4
    assert [c.true_label for c in result.clips] == list(demo.DEMO_CLASSES[:4])
    # the reversal pair shares its seed: the same frames, reversed
    assert np.array_equal(result.clips[1].frames, result.clips[0].frames[::-1])
    for clip in result.clips:
        assert [p.scorer for p in clip.predictions] == ["i3d", "xception", "fused"]
        for prediction in clip.predictions:
            assert len(prediction.labels) == 3 and set(prediction.labels) <= set(CLASS_NAMES)
            assert prediction.probabilities == sorted(prediction.probabilities, reverse=True)
    text = demo.format_result(result)
    assert "(true: sit_down)" in text and "fused top-1 on these clips" in text
    assert result.figure is not None and result.figure.read_bytes()[:4] == b"\x89PNG"


def test_fused_probabilities_are_the_mean_of_the_streams(fusion_checkpoint):
    result = demo.run_demo(num_clips=1, out=None, top=len(CLASS_NAMES), motion=True)
    by_scorer = {
        p.scorer: dict(zip(p.labels, p.probabilities, strict=True))
        for p in result.clips[0].predictions
    }
    for name in CLASS_NAMES:
        expected = (by_scorer["i3d"][name] + by_scorer["xception"][name]) / 2
        assert by_scorer["fused"][name] == pytest.approx(expected, abs=1e-6)


def test_real_video_without_cached_weights_falls_back_and_says_how(
    fusion_checkpoint, fixture_videos: Path, tmp_path: Path
):
    result = demo.run_demo(video=fixture_videos / "v_BaseballPitch_g01_c01.avi", out=None)
    assert result.mode == "tiny" and result.clips[0].true_label is None
    assert any("hartutor weights download" in note for note in result.notes)


def test_missing_shipped_checkpoint_is_a_clear_error(monkeypatch, tmp_path):
    from hartutor.errors import WeightsError

    monkeypatch.setattr(demo, "FUSION_CHECKPOINT", "no_such_checkpoint.pt")
    with pytest.raises(WeightsError, match=r"no_such_checkpoint\.pt"):
        demo.run_demo(out=None, motion=True)


# ------------------------------------------------------------------ the default: transfer world

WORLD_SCORERS = ["temporal (i3d)", "frame (xception)", "fused"]


def _world_test_item(seed: int, index: int) -> dict:
    from hartutor.synth.world import TARGET_CLASSES
    from hartutor.transfer import target_clips

    return target_clips(len(TARGET_CLASSES), seed=seed, split="test")[index]


def test_world_rule_takes_one_test_clip_per_family_and_walks_through_every_class():
    from hartutor.synth.world import FAMILIES, TARGET_CLASSES

    seen: dict[str, set[str]] = {family: set() for family in FAMILIES}
    for seed in range(12):
        picks = demo.world_demo_clips(seed)
        assert len(picks) == len(FAMILIES)
        for (name, index), (family, names) in zip(picks, FAMILIES.items(), strict=True):
            assert name in names and TARGET_CLASSES[index] == name
            assert index < len(TARGET_CLASSES)  # the class's first clip of the test split
            seen[family].add(name)
    assert seen == {family: set(names) for family, names in FAMILIES.items()}


@pytest.mark.parametrize("seed", [0, 5])
def test_default_demo_shows_one_clip_per_family_with_every_streams_top3(seed, tmp_path):
    from hartutor.synth.world import FAMILIES, TARGET_CLASSES

    result = demo.run_demo(seed=seed, out=tmp_path / "demo.png", family_clips=2)
    assert result.mode == "world"
    assert [c.true_label for c in result.clips] == [n for n, _ in demo.world_demo_clips(seed)]
    for clip, family, (name, index) in zip(
        result.clips, FAMILIES, demo.world_demo_clips(seed), strict=True
    ):
        assert f"({family}, test clip {index})" in clip.name
        # the frames shown are the rule's held-out test clip
        item = _world_test_item(seed, index)
        assert item["action"] == name
        expected = item["video"].mul(255).round().byte().permute(1, 2, 3, 0).numpy()
        assert np.array_equal(clip.frames, expected)
        assert [p.scorer for p in clip.predictions] == WORLD_SCORERS
        for prediction in clip.predictions:
            assert len(prediction.labels) == 3 and set(prediction.labels) <= set(TARGET_CLASSES)
            assert prediction.probabilities == sorted(prediction.probabilities, reverse=True)
    text = demo.format_result(result)
    assert text.count("(true: ") == 3 and "fused top-1 on these clips" in text
    marks = text.count("  correct") + text.count("  wrong")
    assert marks == 9
    assert any(demo.WORLD_DEMO_RULE in note for note in result.notes)
    assert result.figure is not None and result.figure.read_bytes()[:4] == b"\x89PNG"


def test_default_demo_scores_are_the_shipped_streams_softmax_and_their_mean():
    from hartutor import transfer
    from hartutor.synth.world import TARGET_CLASSES

    seed = 2
    result = demo.run_demo(seed=seed, out=None, top=len(TARGET_CLASSES), family_clips=1)
    adapters = transfer.stream_adapters()
    for clip, (_, index) in zip(result.clips, demo.world_demo_clips(seed), strict=True):
        video = _world_test_item(seed, index)["video"].mul(2).sub(1)[None]
        by_scorer = {
            p.scorer: dict(zip(p.labels, p.probabilities, strict=True)) for p in clip.predictions
        }
        streams = []
        for kind in transfer.STREAMS:
            model, names = transfer.load_stream(
                kind, transfer.CHECKPOINT_DIR / transfer.TARGET_CHECKPOINTS[kind]
            )
            assert names == list(TARGET_CLASSES)
            with torch.no_grad():
                probs = torch.softmax(model(adapters[kind](video))[0], -1)
            shown = by_scorer[f"{kind} ({transfer.STREAM_MODELS[kind]})"]
            assert [shown[n] for n in names] == pytest.approx(probs.tolist(), abs=1e-5)
            streams.append(probs)
        fused = (streams[0] + streams[1]) / 2
        assert [by_scorer["fused"][n] for n in TARGET_CLASSES] == pytest.approx(
            fused.tolist(), abs=1e-5
        )
        for prediction in clip.predictions:
            assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-5)
        fused_top = next(p for p in clip.predictions if p.scorer == "fused").labels[0]
        assert fused_top == TARGET_CLASSES[int(fused.argmax())]


def test_default_demo_picks_the_same_clips_whatever_the_models_predict(monkeypatch):
    """The rule is fixed before any model runs: random streams show the very same clips."""
    from hartutor import transfer
    from hartutor.models.fusion import LateFusion
    from hartutor.synth.world import TARGET_CLASSES

    shipped = demo.run_demo(seed=1, out=None, family_clips=1)
    torch.manual_seed(0)
    random_streams = {k: transfer.build_stream(k, len(TARGET_CLASSES)) for k in transfer.STREAMS}

    def random_fusion(paths=None):
        fusion = LateFusion(
            random_streams, mode="softmax_mean", adapters=transfer.stream_adapters()
        )
        return fusion.eval(), list(TARGET_CLASSES)

    monkeypatch.setattr(transfer, "world_fusion", random_fusion)
    other = demo.run_demo(seed=1, out=None, family_clips=1)
    assert [c.name for c in other.clips] == [c.name for c in shipped.clips]
    for a, b in zip(other.clips, shipped.clips, strict=True):
        assert np.array_equal(a.frames, b.frames)
    assert [p.probabilities for p in other.clips[0].predictions] != [
        p.probabilities for p in shipped.clips[0].predictions
    ]


def _independent_family_top1(seed: int, clips_per_class: int) -> dict[str, dict[str, float]]:
    """Family -> scorer -> top-1, from the shipped checkpoints' logits on the seed's test split,
    fused here by hand (softmax mean) and split into families here."""
    from hartutor import transfer
    from hartutor.synth.world import FAMILY_OF, TARGET_CLASSES

    test = transfer.render_streams(TARGET_CLASSES, clips_per_class, seed=seed, split="test")
    logits = {}
    for kind in transfer.STREAMS:
        model, _ = transfer.load_stream(
            kind, transfer.CHECKPOINT_DIR / transfer.TARGET_CHECKPOINTS[kind]
        )
        logits[kind] = transfer.stream_logits(model, test.inputs[kind])
    fused = (logits["temporal"].softmax(-1) + logits["frame"].softmax(-1)) / 2
    predicted = {
        "temporal (i3d)": logits["temporal"].argmax(-1),
        "frame (xception)": logits["frame"].argmax(-1),
        "fused": fused.argmax(-1),
    }
    families = [FAMILY_OF[TARGET_CLASSES[int(y)]] for y in test.labels]
    table: dict[str, dict[str, float]] = {}
    for family in dict.fromkeys(families):
        keep = torch.tensor([f == family for f in families])
        table[family] = {
            scorer: float((p[keep] == test.labels[keep]).float().mean())
            for scorer, p in predicted.items()
        }
        table[family]["clips"] = float(keep.sum())
    return table


def test_default_demo_gives_each_scorer_top1_on_the_clips_family(monkeypatch, tmp_path):
    """The family figures are the streams' and the fusion's top-1 on the family's clips of the
    seed's held-out test split (the shown clips among them), in the text and the figure."""
    from hartutor import transfer, viz
    from hartutor.synth.world import FAMILIES

    seed = 1
    rendered: list[tuple[dict, transfer.StreamSet]] = []
    real_render = transfer.render_streams

    def spy_render(*args, **kwargs):
        out = real_render(*args, **kwargs)
        rendered.append((kwargs, out))
        return out

    figures = []
    real_figure = viz.prediction_figure

    def spy_figure(*args, **kwargs):
        figures.append(real_figure(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(transfer, "render_streams", spy_render)
    monkeypatch.setattr(viz, "prediction_figure", spy_figure)
    result = demo.run_demo(seed=seed, out=tmp_path / "demo.png")

    # the set: the seed's test split, holding every clip shown
    ((kwargs, test),) = rendered
    assert kwargs["seed"] == seed and kwargs["split"] == "test"
    assert len(test) == demo.WORLD_FAMILY_CLIPS * 13
    for _, index in demo.world_demo_clips(seed):
        assert int(_world_test_item(seed, index)["seed"]) in test.seeds

    expected = _independent_family_top1(seed, demo.WORLD_FAMILY_CLIPS)
    text = demo.format_result(result)
    texts = [t.get_text() for ax in figures[0].axes for t in ax.texts]
    for clip, family in zip(result.clips, FAMILIES, strict=True):
        assert clip.family is not None and clip.family.family == family
        assert clip.family.clips == expected[family]["clips"]
        assert clip.family.clips == len(FAMILIES[family]) * demo.WORLD_FAMILY_CLIPS
        assert list(clip.family.top1) == WORLD_SCORERS
        for scorer in WORLD_SCORERS:
            assert clip.family.top1[scorer] == pytest.approx(expected[family][scorer], abs=1e-6)
            figure_note = f"top-1 on {clip.family.clips} {family} clips: "
            assert f"{figure_note}{clip.family.top1[scorer]:.0%}" in texts
        line = f"top-1 on the {clip.family.clips} test clips of family {family}: "
        line += ", ".join(f"{s} {clip.family.top1[s]:.0%}" for s in WORLD_SCORERS)
        assert line in text


def test_family_figures_follow_the_streams_not_a_stored_table(monkeypatch):
    """Random streams give other family figures (they are measured, never looked up), and a
    bad clip count is a one-line error."""
    from hartutor import transfer
    from hartutor.errors import ArgumentError
    from hartutor.models.fusion import LateFusion
    from hartutor.synth.world import TARGET_CLASSES

    torch.manual_seed(0)
    streams = {k: transfer.build_stream(k, len(TARGET_CLASSES)) for k in transfer.STREAMS}
    fusion = LateFusion(streams, mode="softmax_mean", adapters=transfer.stream_adapters()).eval()
    test = transfer.render_streams(TARGET_CLASSES, 2, seed=3, split="test")
    report = transfer.FusionReport(
        test.class_names,
        test.labels,
        {k: transfer.stream_logits(streams[k], test.inputs[k]) for k in transfer.STREAMS},
    )
    families = demo.world_family_top1(fusion, seed=3, clips_per_class=2)
    for family, scores in families.items():
        for scorer, rule in demo.WORLD_SCORER_RULES.items():
            assert scores.top1[scorer] == report.accuracy(rule, family)
    with pytest.raises(ArgumentError, match="family_clips"):
        demo.world_family_top1(fusion, seed=3, clips_per_class=0)


def test_prediction_figure_notes_go_above_their_panels():
    from hartutor.viz import prediction_figure

    frames = np.zeros((2, 8, 8, 3), np.uint8)
    rows = [
        (f"clip {i}", frames, "a", [("s1", ["a", "b"], [0.6, 0.4]), ("s2", ["b", "a"], [0.7, 0.3])])
        for i in range(2)
    ]
    notes = [["n00", "n01"], ["n10", "n11"]]
    fig = prediction_figure(rows, notes=notes)
    panels = [ax for ax in fig.axes if ax.texts]
    assert [[t.get_text() for t in ax.texts if t.get_text().startswith("n")] for ax in panels] == [
        ["n00"],
        ["n01"],
        ["n10"],
        ["n11"],
    ]
    with pytest.raises(ValueError, match="rows of notes"):
        prediction_figure(rows, notes=notes[:1])


def test_cli_help_states_the_family_clip_count(capsys):
    from hartutor.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"same test split ({demo.WORLD_FAMILY_CLIPS} per class)" in help_text
