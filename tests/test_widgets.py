"""The inference app and the saliency explorer, driven headless: set widget values, click the
buttons, and check what the apps display (labels, bars, slider range, error messages)."""

from __future__ import annotations

import datetime
import html
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import hartutor  # noqa: F401  (the torchvision shim first)
from hartutor import widgets as hw
from hartutor.course import shipped_checkpoint
from hartutor.demo import run_tiny
from hartutor.errors import HartutorError
from hartutor.explain import METHODS, Attribution
from hartutor.synth import CLASS_NAMES, render_clip
from hartutor.video import write_video

FUSION = shipped_checkpoint("i3d_xception_fusion_tiny.pt")
LINE = re.compile(r"^fused: (\w+) \((\d+)%\)")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fusion() -> hw.LoadedModel:
    return hw.load_model(FUSION)


def _upload(name: str, data: bytes) -> tuple[dict, ...]:
    """What FileUpload.value holds after the browser sent one file."""
    return (
        {
            "name": name,
            "type": "video/mp4",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )


def _mp4_bytes(tmp_path: Path, action: str = "sit_down", seed: int = 0) -> bytes:
    path = write_video(tmp_path / "clip.mp4", render_clip(action, seed).frames, fps=25)
    return path.read_bytes()


def _error(app: hw.InferenceApp | hw.SaliencyExplorer) -> str:
    """The text of the app's error area, as the user reads it."""
    return html.unescape(re.sub(r"<[^>]+>", "", app.error.value))


def _bar_panels(app: hw.InferenceApp) -> dict[str, int]:
    """Bar panel title -> number of bars, read from the figure the app drew."""
    assert app.figure is not None
    return {ax.get_title(): len(ax.patches) for ax in app.figure.axes if ax.patches}


# --------------------------------------------------------------------------- inference app


def test_model_list_starts_with_the_shipped_fusion_and_lists_every_shipped_checkpoint():
    app = hw.InferenceApp(samples=[])
    options = [value for _, value in app.model.options]
    assert options[0].path == FUSION and options[0].kind == "checkpoint"
    shipped = sorted(p.name for p in FUSION.parent.glob("*.pt"))
    assert sorted(o.path.name for o in options if o.kind == "checkpoint") == shipped
    assert not any(o.kind == "pretrained" for o in options)  # the test cache is empty


def test_pretrained_option_appears_when_weights_are_cached(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(
        "hartutor.demo.full_weights_available", lambda: ("i3d_rgb_kinetics600_scratch", True)
    )
    pretrained = [o for o in hw.model_options() if o.kind == "pretrained"]
    assert len(pretrained) == 1
    assert pretrained[0].i3d_weights == "i3d_rgb_kinetics600_scratch" and pretrained[0].xception
    assert "xception_imagenet1k_tf" in pretrained[0].label


def test_the_pretrained_choice_runs_the_demo_route_on_a_video(monkeypatch: pytest.MonkeyPatch):
    seen = {}

    def fake_run_full(path, i3d_weights, with_xception, *, top):
        from hartutor.demo import ClipResult, Prediction
        from hartutor.video import read_video

        seen.update(frames=read_video(path).frames.shape, weights=(i3d_weights, with_xception))
        rows = [
            Prediction("i3d (kinetics600)", ["squat", "dancing"], [0.6, 0.1]),
            Prediction("xception (imagenet)", ["chair", "stool"], [0.3, 0.2]),
        ]
        return [ClipResult(path.name, None, rows, np.zeros((2, 8, 8, 3), np.uint8))], []

    monkeypatch.setattr("hartutor.demo.run_full", fake_run_full)
    option = hw.ModelOption("pretrained", "pretrained", i3d_weights="i3d_w", xception=True)
    app = hw.InferenceApp(models=[option], samples=[])
    app.run()
    assert app.error.value == ""
    assert seen == {"frames": (16, 224, 224, 3), "weights": ("i3d_w", True)}
    assert app.prediction.value == (
        "i3d (kinetics600): squat (60%) | xception (imagenet): chair (30%) | true: sit_down"
    )
    assert _bar_panels(app) == {"i3d (kinetics600)": 2, "xception (imagenet)": 2}


@pytest.mark.parametrize("action", ["sit_down", "stand_up"])
def test_run_on_a_synthetic_class_shows_the_fused_top5(action: str):
    app = hw.InferenceApp(samples=[])
    app.source.value = "synthetic"
    app.action.value = action
    app.seed.value = 3
    app.run_button.click()

    assert app.error.value == ""
    match = LINE.match(app.prediction.value)
    assert match, app.prediction.value
    assert app.prediction.value.endswith(f"true: {action}")
    # the same clip through the demo's own code path gives the same fused answer
    frames = render_clip(action, 3).frames
    [expected], _ = run_tiny([(action, frames, action)], top=5)
    assert match.group(1) == expected.fused.labels[0]
    assert int(match.group(2)) == round(100 * expected.fused.probabilities[0])
    for prediction in expected.predictions:
        assert f"{prediction.scorer}: {prediction.labels[0]} (" in app.prediction.value
    # one bar panel per stream and the fused score, five bars each
    assert _bar_panels(app) == {"i3d": 5, "xception": 5, "fused": 5}
    assert app.plot.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert app.progress.value == app.progress.max and app.progress.bar_style == "success"


def test_a_single_model_gives_one_row_of_bars():
    app = hw.InferenceApp(samples=[], top=3)
    app.model.value = next(v for _, v in app.model.options if v.path.name == "i3d_tiny.pt")
    app.run()
    assert app.error.value == ""
    assert app.prediction.value.startswith("i3d_tiny: ")
    assert _bar_panels(app) == {"i3d_tiny": 3}


def test_two_stream_runs_on_a_clip_without_exact_flow():
    loaded = hw.load_model(shipped_checkpoint("two_stream_tiny.pt"))
    clip = hw.synthetic_clip("walk", 0)
    estimated = hw.clip_inputs(loaded.model, hw.Clip("no flow", clip.frames))
    exact = hw.clip_inputs(loaded.model, clip)
    assert estimated["flow"].shape == exact["flow"].shape == (2, 15, 64, 64)
    assert not torch.equal(estimated["flow"], exact["flow"])  # estimated, not copied
    rows = hw.predict(loaded, hw.Clip("no flow", clip.frames))
    assert [p.scorer for p in rows] == ["spatial", "temporal", "fused"]


def test_a_valid_upload_runs_and_switches_the_source(tmp_path: Path):
    app = hw.InferenceApp(samples=[])
    assert app.upload.layout.display == "none"  # only the synthetic controls show at first
    app.upload.value = _upload("my_clip.mp4", _mp4_bytes(tmp_path))
    assert app.source.value == "upload"
    assert app.upload.layout.display is None and app.action.layout.display is None
    assert app.children[2].layout.display == "none"  # the class and seed row
    assert app.plot.layout.display == "none"  # nothing drawn yet
    app.run()
    assert app.error.value == ""
    assert app.plot.layout.display is None and bytes(app.plot.value[:4]) == b"\x89PNG"
    assert LINE.match(app.prediction.value), app.prediction.value
    assert "true:" not in app.prediction.value  # an upload has no known class
    assert app.clip is not None and app.clip.name == "my_clip.mp4"
    assert app.clip.frames.shape == (16, 64, 64, 3)


@pytest.mark.parametrize("kind", ["not a video", "truncated", "empty"])
def test_a_bad_upload_shows_a_message_and_never_raises(kind: str, tmp_path: Path):
    data = {
        "not a video": b"this is a text file, not a video\n" * 50,
        "truncated": _mp4_bytes(tmp_path)[:1500],
        "empty": b"",
    }[kind]
    app = hw.InferenceApp(samples=[])
    app.upload.value = _upload("broken.mp4", data)
    app.run_button.click()  # must not raise
    assert app.prediction.value == ""
    assert app.plot.layout.display == "none"  # no empty picture, no older clip's bars
    assert _error(app).startswith("Error: cannot read video 'broken.mp4': ")
    if kind == "empty":
        assert _error(app).endswith("the file is empty")
    assert app.progress.bar_style == "danger"


def test_a_huge_upload_is_refused_before_it_is_read(tmp_path: Path, monkeypatch):
    app = hw.InferenceApp(samples=[], max_upload_bytes=10_000)
    data = _mp4_bytes(tmp_path) + b"\0" * 20_000
    app.upload.value = _upload("big.mp4", data)
    monkeypatch.setattr(hw, "file_clip", lambda *a, **k: pytest.fail("a huge upload was read"))
    app.run()
    size = f"{len(data) / 1000:.1f} kB"
    assert f"the file is {size}, over the app's limit of 10.0 kB" in _error(app)
    assert app.prediction.value == ""


def test_the_upload_note_states_the_size_that_can_really_arrive():
    assert hw.JUPYTER_MESSAGE_LIMIT_BYTES == 10 * 2**20  # tornado's websocket default
    note = hw.upload_note(hw.MAX_UPLOAD_BYTES)  # 50 MiB in the kernel, 10 MiB on the wire
    assert note.startswith("Uploads up to just under 10.5 MB:")
    assert "websocket_max_message_size" in note
    assert hw.upload_note(10_000).startswith("Uploads up to 10.0 kB:")
    app = hw.InferenceApp(samples=[], max_upload_bytes=10_000)
    assert app.upload_note.value == hw.upload_note(10_000)
    assert app.upload_note.layout.display == "none"  # shown with the upload button only
    app.source.value = "upload"
    assert app.upload_note.layout.display is None and app.upload.layout.display is None
    assert app.video_path.layout.display == "none"


def test_a_video_file_of_any_size_runs_from_its_path(tmp_path: Path):
    video = tmp_path / "phone video.mp4"
    video.write_bytes(_mp4_bytes(tmp_path))
    app = hw.InferenceApp(samples=[], max_upload_bytes=10)  # the upload cap does not apply
    app.source.value = "file"
    assert app.video_path.layout.display is None and app.upload.layout.display == "none"
    app.run()
    assert "type the path of a video file first" in _error(app)
    app.video_path.value = str(tmp_path / "missing.mp4")
    app.run()
    assert _error(app).startswith(f"Error: cannot read video '{tmp_path / 'missing.mp4'}'")
    app.video_path.value = f"  {video}  "
    app.run()
    assert app.error.value == ""
    assert LINE.match(app.prediction.value), app.prediction.value
    assert app.clip is not None and app.clip.name == "phone video.mp4"
    assert app.clip.frames.shape == (16, 64, 64, 3)


def test_missing_and_corrupt_checkpoints_show_a_message(tmp_path: Path):
    app = hw.InferenceApp(samples=[])
    missing = tmp_path / "nowhere" / "model.pt"
    app.checkpoint.value = str(missing)
    app.run()
    assert f"checkpoint {missing} does not exist" in _error(app)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    app.checkpoint.value = str(corrupt)
    app.run()
    assert f"checkpoint {corrupt} could not be read safely" in _error(app)
    assert app.prediction.value == ""
    # clearing the path goes back to the chosen model, and the error goes away
    app.checkpoint.value = ""
    app.run()
    assert app.error.value == "" and LINE.match(app.prediction.value)


def test_sample_source_without_fixtures_says_how_to_get_them():
    app = hw.InferenceApp(samples=[])
    assert app.sample.disabled
    app.source.value = "sample"
    app.run()
    assert "set HARTUTOR_FIXTURES" in _error(app)


def test_a_sample_clip_runs(fixture_videos: Path):
    clips = hw.sample_clips(fixture_videos.parent)
    assert clips and all(p.suffix.lower() in hw.VIDEO_SUFFIXES for p in clips)
    app = hw.InferenceApp(samples=clips)
    app.sample.value = str(fixture_videos / "v_BaseballPitch_g01_c01.avi")
    assert app.source.value == "sample"
    app.run()
    assert app.error.value == ""
    assert LINE.match(app.prediction.value)


def test_fit_frames_samples_time_and_centre_crops():
    frames = np.zeros((30, 40, 80, 3), dtype=np.uint8)
    frames[:, :, :20] = 255  # the left and right quarters are cropped away
    frames[:, :, 60:] = 255
    frames[:, 0, 30] = np.arange(30, dtype=np.uint8)[:, None]  # frame number, in the centre
    out = hw.fit_frames(frames, 4, (64, 64))
    assert out.shape == (4, 64, 64, 3) and out.dtype == np.uint8
    assert out[:, 8:].max() == 0  # no white column survived
    first, last = out[0, :2].max(), out[-1, :2].max()
    assert first == 0 and last > 0  # frames 0 and 29 were kept, in order
    with pytest.raises(ValueError, match="uint8"):
        hw.fit_frames(frames.astype(np.float32), 4, (64, 64))


# --------------------------------------------------------------------------- explorer


def test_explorer_default_shows_i3d_over_the_16_frames(fusion: hw.LoadedModel):
    explorer = hw.SaliencyExplorer(fusion)
    assert explorer.stream.options == ("i3d", "xception", "fused")
    assert CLASS_NAMES[explorer.target.value] == "sit_down"
    link = explorer.link
    assert link.source == (explorer.play, "value") and link.target == (explorer.frame, "value")
    explorer.explain_button.click()
    assert explorer.error.value == ""
    assert (explorer.frame.min, explorer.frame.max) == (0, 15)
    assert explorer.play.max == explorer.frame.max
    assert explorer.image.value[:4] == b"\x89PNG" and explorer.curve.value[:4] == b"\x89PNG"
    assert "of i3d for sit_down" in explorer.status.value
    assert re.search(r"\d+% of the fused score", explorer.status.value)
    assert explorer.position.value == "input frame 1 of 16 (clip frame 0)"


def test_explorer_xception_sees_8_frames_and_the_slider_follows(fusion: hw.LoadedModel):
    explorer = hw.SaliencyExplorer(fusion, method="saliency")
    explorer.frame.value = 0
    explorer.stream.value = "xception"
    explorer.explain()
    assert explorer.frame.max == 7 and explorer.play.max == 7
    first = explorer.image.value
    explorer.frame.value = 3  # what the Play widget does in the browser, through jslink
    assert explorer.position.value == "input frame 4 of 8 (clip frame 7)"
    assert explorer.image.value != first
    # going back to I3D widens the slider again
    explorer.stream.value = "i3d"
    assert explorer.status.value == "settings changed: press Explain"
    explorer.explain()
    assert explorer.frame.max == 15 and explorer.frame.value == 0


def test_curve_marker_sits_at_the_current_frame(fusion: hw.LoadedModel):
    explorer = hw.SaliencyExplorer(fusion, method="saliency", stream="xception")
    attribution = explorer.explain()
    assert attribution is not None
    fig = hw.curve_picture(attribution, 3)
    [ax] = fig.axes
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_xdata()) == [7.0, 7.0]
    curve = next(line for line in ax.lines if line.get_linestyle() != "--")
    assert list(curve.get_xdata()) == [1, 3, 5, 7, 9, 11, 13, 15]
    assert np.isclose(np.mean(curve.get_ydata()), 1.0)  # relative to an even share of frames


@pytest.mark.parametrize("method", METHODS)
def test_every_method_explains_the_i3d_stream(fusion: hw.LoadedModel, method: str):
    explorer = hw.SaliencyExplorer(fusion, method=method, stream="i3d", options={"n_steps": 8})
    attribution = explorer.explain()
    assert explorer.error.value == "", explorer.error.value
    assert attribution is not None and attribution.method == method
    assert explorer.frame.max == 15
    picture = hw.frame_picture(attribution, 5)
    assert picture.shape == (64, 132, 3) and picture.dtype == np.uint8


def test_grad_cam_of_the_fused_score_is_explained_not_raised(fusion: hw.LoadedModel):
    explorer = hw.SaliencyExplorer(fusion, method="saliency", stream="i3d")
    before = explorer.explain()
    explorer.method.value = "grad_cam"
    explorer.stream.value = "fused"
    assert explorer.explain() is None
    assert "grad_cam looks at one layer of one stream" in _error(explorer)
    assert explorer.attribution is before  # the last good result stays on screen
    explorer.method.value = "saliency"
    fused = explorer.explain()
    assert fused is not None and fused.stream is None
    assert "of fused score for sit_down" in explorer.status.value


def test_target_and_clip_controls(fusion: hw.LoadedModel):
    explorer = hw.SaliencyExplorer(fusion, method="grad_cam", stream="i3d")
    explorer.action.value = "wave"
    explorer.seed.value = 2
    explorer.new_clip.click()
    assert explorer.clip.label == "wave" and "wave (seed 2)" in explorer.clip_label.value
    assert CLASS_NAMES[explorer.target.value] == "wave"
    explorer.target.value = CLASS_NAMES.index("clap")
    attribution = explorer.explain()
    assert attribution is not None and attribution.target == CLASS_NAMES.index("clap")
    assert "for clap" in explorer.status.value


def test_display_heat_is_not_flattened_by_one_outlier():
    heat = torch.zeros(3, 4, 32, 32)
    heat[:, :, 8:24, 8:24] = 1.0  # the region that matters: 3072 in all
    heat[0, 0, 0, 0] = 50.0  # one extreme pixel, 1.6% of the total
    attribution = Attribution(
        maps={"video": heat},
        inputs={"video": torch.zeros(3, 4, 32, 32)},
        target=0,
        method="saliency",
        stream=None,
        score=0.0,
        probability=0.0,
    )
    assert attribution.heatmap()[:, 8:24, 8:24].max() < 0.1  # scaled by the maximum: faint
    shown = hw.display_heat(attribution)
    assert shown.min() >= 0 and shown.max() == 1
    assert shown[:, 8:24, 8:24].min() == 1  # Captum's 2% outlier rule: the region shows
    assert shown[:, 24:, 24:].max() == 0


def test_the_inference_app_hands_its_clip_to_the_explorer():
    app = hw.InferenceApp(samples=[])
    with pytest.raises(HartutorError, match="run"):
        app.explorer()
    app.action.value = "stand_up"
    app.run()
    explorer = app.explorer()
    assert explorer.clip is app.clip
    assert CLASS_NAMES[explorer.target.value] == "stand_up"


def test_the_explorer_shows_a_colourbar_for_its_heat(fusion: hw.LoadedModel):
    explorer = hw.SaliencyExplorer(fusion, method="saliency", stream="i3d")
    row = explorer.children[-1]
    assert list(row.children) == [explorer.image, explorer.colourbar, explorer.curve]
    assert bytes(explorer.colourbar.value).startswith(b"\x89PNG")
    fig = hw.colourbar_picture(cmap="viridis", label="heat")
    (ax,) = fig.axes
    assert ax.get_ylim() == (0.0, 1.0) and ax.get_ylabel() == "heat"
    image = ax.collections[0] if ax.collections else ax.images[0]
    assert image.get_cmap().name == "viridis"
