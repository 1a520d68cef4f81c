"""Tests of hartutor.video: real clips, sampling by content, resizing, round trips, bad input."""

from __future__ import annotations

import functools
import itertools
import math
import tempfile
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hartutor  # noqa: F401  (compat shim first)
from hartutor import video as hv
from hartutor.errors import VideoDecodeError, VideoEncodeError
from hartutor.video import Video, VideoInfo, probe_video, read_video, write_video

# ---------------------------------------------------------------------------------------------
# Frames that say which frame they are: 16 black/white blocks of a 4x4 grid = the index in binary.

GRID = 4


def index_frame(i: int, size: int = 64) -> np.ndarray:
    """``uint8 (size, size, 3)`` frame whose 4x4 blocks spell ``i`` in binary (white = 1)."""
    bits = np.array([(i >> b) & 1 for b in range(GRID * GRID)], dtype=np.uint8).reshape(GRID, GRID)
    block = size // GRID
    grey = np.kron(bits * 255, np.ones((block, block), dtype=np.uint8))
    return np.repeat(grey[:, :, None], 3, axis=2)


def read_index(frame: np.ndarray | torch.Tensor) -> int:
    """Inverse of :func:`index_frame`, robust to compression and resizing (block centres)."""
    frame = np.asarray(frame)
    h, w = frame.shape[:2]
    value = 0
    for b in range(GRID * GRID):
        r, c = divmod(b, GRID)
        y, x = int((r + 0.5) * h / GRID), int((c + 0.5) * w / GRID)
        if frame[y, x].mean() > 127:
            value |= 1 << b
    return value


def index_clip(count: int, size: int = 64) -> np.ndarray:
    return np.stack([index_frame(i, size) for i in range(count)])


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("video")


@pytest.fixture(scope="module")
def counted_mp4(clip_dir: Path) -> Path:
    """50 frames at 25 fps whose content is their index, keyframe every 10 frames."""
    return write_video(clip_dir / "counted.mp4", index_clip(50), 25, options={"g": "10"})


def assert_content_matches(result: Video) -> None:
    decoded = [read_index(f) for f in result.frames]
    assert decoded == list(result.info.indices)


# ---------------------------------------------------------------------------------------------
# Real clips (facts from ../shared/fixtures/README.md)

FIXTURES = {
    "v_ApplyEyeMakeup_g01_c01.avi": dict(frames=164, size=(240, 320), fps=25.0, audio=True),
    "v_BaseballPitch_g01_c01.avi": dict(frames=107, size=(240, 320), fps=29.97, audio=False),
    "v_CricketShot_g04_c01_rgb.gif": dict(frames=79, size=(224, 224), fps=None, audio=False),
    "v_CricketShot_g04_c01_flow.gif": dict(frames=79, size=(224, 224), fps=None, audio=False),
    "kinetics_arm_wrestling.mp4": dict(frames=280, size=(256, 426), fps=28.0, audio=False),
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_clips_decode_fully(fixture_videos: Path, name: str) -> None:
    facts = FIXTURES[name]
    result = read_video(fixture_videos / name)
    info = result.info
    assert result.frames.dtype == torch.uint8
    assert tuple(result.frames.shape) == (facts["frames"], *facts["size"], 3)
    assert info.num_frames == facts["frames"]
    assert info.size == facts["size"] == (info.height, info.width)
    assert info.has_audio is facts["audio"]
    assert info.indices == tuple(range(facts["frames"]))
    if facts["fps"] is not None:
        assert info.fps == pytest.approx(facts["fps"], abs=0.01)
        assert info.duration == pytest.approx(facts["frames"] / facts["fps"], rel=1e-3)
    assert (result.frames[1:] != result.frames[:-1]).any()  # moving pictures, not one buffer

    probe = probe_video(fixture_videos / name)
    assert (probe.num_frames, probe.size, probe.has_audio) == (
        facts["frames"],
        facts["size"],
        facts["audio"],
    )
    assert probe.fps == pytest.approx(info.fps)
    assert probe.indices == ()


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_clips_sampled_and_resized(fixture_videos: Path, name: str) -> None:
    facts = FIXTURES[name]
    result = read_video(fixture_videos / name, num_frames=8, size=112)
    h, w = facts["size"]
    scale = 112 / min(h, w)
    assert tuple(result.frames.shape) == (8, round(h * scale), round(w * scale), 3)
    assert result.info.indices[0] == 0 and result.info.indices[-1] == facts["frames"] - 1
    full = read_video(fixture_videos / name, size=112).frames
    assert torch.equal(result.frames, full[list(result.info.indices)])


def test_fixture_mp4_seeking_equals_sequential(fixture_videos: Path) -> None:
    path = fixture_videos / "kinetics_arm_wrestling.mp4"
    for kwargs in ({"num_frames": 16}, {"num_frames": 8, "fps": 4.0}):
        seeking = read_video(path, seek=True, **kwargs)
        sequential = read_video(path, seek=False, **kwargs)
        assert seeking.info == sequential.info
        assert torch.equal(seeking.frames, sequential.frames)


# ---------------------------------------------------------------------------------------------
# Sampling, by content


def test_all_frames_in_order(counted_mp4: Path) -> None:
    result = read_video(counted_mp4)
    assert result.info.indices == tuple(range(50))
    assert result.info.num_frames == 50 and result.info.fps == pytest.approx(25)
    assert result.info.timestamps == pytest.approx([i / 25 for i in range(50)])
    assert_content_matches(result)


@pytest.mark.parametrize("n", [1, 2, 7, 16, 50])
@pytest.mark.parametrize("seek", [True, False])
def test_uniform_num_frames(counted_mp4: Path, n: int, seek: bool) -> None:
    result = read_video(counted_mp4, num_frames=n, seek=seek)
    indices = result.info.indices
    assert len(indices) == n == result.frames.shape[0]
    assert indices[0] == 0
    if n > 1:
        assert indices[-1] == 49
        assert all(b > a for a, b in itertools.pairwise(indices))
        for k, index in enumerate(indices):  # within half a frame of the ideal position
            assert abs(index - k * 49 / (n - 1)) <= 0.5 + 1e-9
    assert_content_matches(result)


@pytest.mark.parametrize("fps", [5.0, 12.5, 25.0, 50.0, 7.3])
def test_resample_to_fps(counted_mp4: Path, fps: float) -> None:
    result = read_video(counted_mp4, fps=fps)
    indices = result.info.indices
    assert len(indices) == math.ceil(2.0 * fps - 1e-6)  # the clip lasts 50 / 25 = 2 s
    for k, index in enumerate(indices):  # the frame shown nearest k / fps
        assert abs(index / 25 - k / fps) <= 0.5 / 25 + 1e-9
    assert_content_matches(result)


def test_clip_at_fps_and_short_policies(counted_mp4: Path) -> None:
    clip = read_video(counted_mp4, num_frames=8, fps=5)
    assert clip.info.indices == tuple(5 * k for k in range(8))
    assert_content_matches(clip)

    with pytest.raises(VideoDecodeError, match=r"50 frames.*give 10 frames at 5 fps.*12"):
        read_video(counted_mp4, num_frames=12, fps=5)
    with pytest.raises(VideoDecodeError, match=r"it has 50 frames.*64 were requested"):
        read_video(counted_mp4, num_frames=64)

    padded = read_video(counted_mp4, num_frames=64, on_short="pad")
    assert padded.info.indices == (*range(50), *[49] * 14)
    assert_content_matches(padded)
    looped = read_video(counted_mp4, num_frames=12, fps=5, on_short="loop")
    assert looped.info.indices == tuple(5 * (k % 10) for k in range(12))
    assert_content_matches(looped)


def test_resize_int_and_tuple(clip_dir: Path) -> None:
    wide = np.stack([np.kron(index_frame(i, 32), np.ones((1, 2, 1), np.uint8)) for i in range(6)])
    path = write_video(clip_dir / "wide.mp4", wide, 10)  # 32 x 64
    assert read_video(path).frames.shape == (6, 32, 64, 3)
    assert read_video(path, size=16).frames.shape == (6, 16, 32, 3)
    assert read_video(path, size=48).frames.shape == (6, 48, 96, 3)
    exact = read_video(path, size=(40, 24))
    assert exact.frames.shape == (6, 40, 24, 3)
    assert exact.info.size == (32, 64)  # info describes the file, not the output


def test_bad_arguments_are_value_errors(counted_mp4: Path) -> None:
    for kwargs in (
        {"num_frames": 0},
        {"fps": -1.0},
        {"fps": float("nan")},
        {"size": 0},
        {"size": (10,)},
        {"on_short": "wrap"},
    ):
        with pytest.raises(ValueError):
            read_video(counted_mp4, **kwargs)


# ---------------------------------------------------------------------------------------------
# Writing


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".gif", ".avi", ".mkv"])
def test_round_trip_formats(clip_dir: Path, suffix: str) -> None:
    frames = index_clip(12)
    path = write_video(clip_dir / f"round{suffix}", torch.from_numpy(frames), 25)
    assert path == clip_dir / f"round{suffix}" and path.is_file()
    result = read_video(path)
    assert result.frames.shape == frames.shape
    assert result.info.fps == pytest.approx(25)
    assert [read_index(f) for f in result.frames] == list(range(12))
    error = (result.frames.float() - torch.from_numpy(frames).float()).abs().mean()
    assert error < 8, f"mean abs error {error:.1f}"
    assert not list(clip_dir.glob(".round*"))  # no temporary file left behind


def test_default_quality_near_lossless_on_smooth_clip(clip_dir: Path) -> None:
    t, y, x = np.mgrid[0:16, 0:64, 0:64]
    grey = (128 + 60 * np.sin((x + 2 * t) / 7) * np.cos((y - t) / 9)).astype(np.uint8)
    frames = np.repeat(grey[..., None], 3, axis=3)
    result = read_video(write_video(clip_dir / "smooth.mp4", frames, 25))
    mse = ((result.frames.double() - torch.from_numpy(frames).double()) ** 2).mean().item()
    assert 10 * math.log10(255**2 / max(mse, 1e-12)) > 40


def test_odd_sizes_are_padded_by_edge_replication(clip_dir: Path) -> None:
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 256, (4, 1, 1, 1), dtype=np.uint8), 3, axis=3)
    frames = np.broadcast_to(frames, (4, 33, 47, 3)).copy()
    result = read_video(write_video(clip_dir / "odd.mp4", frames, 10))
    assert result.frames.shape == (4, 34, 48, 3)
    expected = frames[:, :1, :1].astype(int)
    assert np.abs(result.frames.numpy().astype(int) - expected).max() <= 3


def test_grey_frames_fraction_fps_and_overwrite(clip_dir: Path) -> None:
    path = clip_dir / "grey.mp4"
    write_video(path, np.zeros((3, 16, 16), np.uint8), 25)
    write_video(path, np.full((5, 16, 16), 200, np.uint8), Fraction(30000, 1001))
    result = read_video(path)
    assert result.frames.shape == (5, 16, 16, 3)
    assert result.info.fps == pytest.approx(29.97, abs=0.01)
    assert abs(int(result.frames.float().mean()) - 200) <= 2


def test_mpeg4_fallback_without_libx264(clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = hv._encoder_available
    monkeypatch.setattr(hv, "_encoder_available", lambda name: name != "libx264" and real(name))
    result = read_video(write_video(clip_dir / "fallback.mp4", index_clip(8), 25))
    assert result.info.codec == "mpeg4"
    assert [read_index(f) for f in result.frames] == list(range(8))


def test_write_rejects_bad_input_and_keeps_old_file(clip_dir: Path) -> None:
    path = clip_dir / "keep.mp4"
    write_video(path, index_clip(4), 25)
    before = path.read_bytes()
    bad_inputs = [
        (np.zeros((4, 16, 16, 3), np.float32), 25),
        (np.zeros((4, 16, 16, 4), np.uint8), 25),
        (np.zeros((0, 16, 16, 3), np.uint8), 25),
        (np.zeros((4, 16, 16, 3), np.uint8), 0),
        (np.zeros((4, 16, 16, 3), np.uint8), float("inf")),
    ]
    for frames, fps in bad_inputs:
        with pytest.raises(VideoEncodeError):
            write_video(path, frames, fps)
    with pytest.raises(VideoEncodeError, match="unknown suffix"):
        write_video(clip_dir / "x.txt", index_clip(2), 25)
    with pytest.raises(VideoEncodeError, match="no 'nope' encoder"):
        write_video(path, index_clip(2), 25, codec="nope")
    assert path.read_bytes() == before
    assert sorted(p.name for p in clip_dir.glob("*keep*")) == ["keep.mp4"]


# ---------------------------------------------------------------------------------------------
# Bad input


def make_audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000, layout="mono")
        for i in range(10):
            samples = np.zeros((1, 1024), dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def make_no_frames(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        container.start_encoding()  # header only, not one frame
    return path


def test_bad_files_raise_video_decode_error(tmp_path: Path, counted_mp4: Path) -> None:
    random_bytes = tmp_path / "random.mp4"
    random_bytes.write_bytes(np.random.default_rng(1).bytes(20_000))
    empty = tmp_path / "empty.mp4"
    empty.touch()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(counted_mp4.read_bytes()[: counted_mp4.stat().st_size // 2])
    text = tmp_path / "notes.avi"
    text.write_text("just some text, not a video\n" * 50)
    playlist = tmp_path / "list.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXTINF:2,\n{counted_mp4}\n#EXT-X-ENDLIST\n")
    cases = {
        tmp_path / "missing.mp4": "no such file",
        tmp_path: "is a directory",
        empty: "empty",
        random_bytes: "not a readable video",
        text: "not a readable video",
        truncated: "not a readable video",
        playlist: "not a readable video",
        make_audio_only(tmp_path / "audio.m4a"): "no video stream",
        make_no_frames(tmp_path / "noframes.avi"): "no frames",
        make_no_frames(tmp_path / "noframes.mp4"): "no video stream",
    }
    for path, reason in cases.items():
        for call in (read_video, probe_video):
            with pytest.raises(VideoDecodeError, match=reason) as caught:
                call(path)
            assert caught.value.path == str(path)
            assert str(path) in str(caught.value)


def test_truncated_avi_gives_fewer_frames_or_error(fixture_videos: Path, tmp_path: Path) -> None:
    data = (fixture_videos / "v_BaseballPitch_g01_c01.avi").read_bytes()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: int(len(data) * 0.6)])
    result = read_video(path)
    assert 0 < result.info.num_frames < 107
    assert result.frames.shape[0] == result.info.num_frames
    with pytest.raises(VideoDecodeError, match="too short"):
        read_video(path, num_frames=107)


def test_guards(counted_mp4: Path) -> None:
    with pytest.raises(VideoDecodeError, match="max_frames=20"):
        read_video(counted_mp4, num_frames=4, max_frames=20)
    with pytest.raises(VideoDecodeError, match="max_duration"):
        read_video(counted_mp4, num_frames=4, max_duration=1.0)
    with pytest.raises(VideoDecodeError, match="max_pixels"):
        read_video(counted_mp4, max_pixels=32 * 32)
    with pytest.raises(VideoDecodeError, match="max_pixels"):
        read_video(counted_mp4, size=512, max_pixels=300 * 300)
    with pytest.raises(VideoDecodeError, match="max_output_bytes"):
        read_video(counted_mp4, max_output_bytes=10 * 64 * 64 * 3)
    assert read_video(counted_mp4, num_frames=10, max_output_bytes=10 * 64 * 64 * 3)


@functools.cache
def small_mp4_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        return write_video(Path(folder) / "s.mp4", index_clip(6, 32), 25).read_bytes()


def check_only_decode_errors(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"case{suffix}"
        path.write_bytes(data)
        for call in (
            lambda: read_video(path, num_frames=4, on_short="pad"),
            lambda: probe_video(path),
        ):
            try:
                result = call()
            except VideoDecodeError:
                continue
            if isinstance(result, Video):
                assert result.frames.dtype == torch.uint8 and result.frames.shape[0] == 4
            else:
                assert isinstance(result, VideoInfo)


@settings(
    max_examples=40,
    deadline=3000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.binary(min_size=0, max_size=4096), suffix=st.sampled_from([".mp4", ".avi", ".gif"]))
def test_fuzz_random_bytes(data: bytes, suffix: str) -> None:
    check_only_decode_errors(data, suffix)


@settings(
    max_examples=40,
    deadline=3000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 7)), max_size=12),
)
def test_fuzz_truncated_and_bit_flipped_mp4(cut: float, flips: list[tuple[float, int]]) -> None:
    data = bytearray(small_mp4_bytes())
    for where, bit in flips:
        data[min(int(where * len(data)), len(data) - 1)] ^= 1 << bit
    check_only_decode_errors(bytes(data[: max(1, int(cut * len(data)) + 1)]), ".mp4")


# ---------------------------------------------------------------------------------------------
# Memory follows the output, not the file


@pytest.fixture(scope="module")
def long_mp4(clip_dir: Path) -> Path:
    """1500 frames of 64x64 at 25 fps (1 minute), keyframe every 50 frames."""
    return write_video(clip_dir / "long.mp4", index_clip(1500), 25, options={"g": "50"})


@pytest.mark.parametrize("seek", [True, False])
def test_sparse_sampling_converts_only_wanted_frames(
    long_mp4: Path, monkeypatch: pytest.MonkeyPatch, seek: bool
) -> None:
    converted: list[tuple[int, int]] = []
    real = hv._to_rgb

    def spy(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
        converted.append((width, height))
        return real(frame, width, height)

    monkeypatch.setattr(hv, "_to_rgb", spy)
    tracemalloc.start()
    try:
        result = read_video(long_mp4, num_frames=16, seek=seek)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(converted) == 16
    assert result.info.num_frames == 1500
    assert_content_matches(result)
    full_decode = 1500 * 64 * 64 * 3
    assert peak < full_decode / 10, f"peak {peak} bytes vs {full_decode} for all frames"


def test_seeking_skips_decoding(long_mp4: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With seeking, far fewer frames are decoded than the file holds (counted, not timed)."""
    decoded = {True: 0, False: 0}
    real = hv._Decoder._frames

    for seek in (True, False):

        def counting(self, container, stream, _seek=seek):
            for frame in real(self, container, stream):
                decoded[_seek] += 1
                yield frame

        monkeypatch.setattr(hv._Decoder, "_frames", counting)
        read_video(long_mp4, num_frames=4, seek=seek)
    assert decoded[False] == 1500
    assert decoded[True] < 500


# ---------------------------------------------------------------------------------------------
# When the index is wrong, variable frame rates, display geometry, streamed writing


@pytest.mark.parametrize("extra", [10, -10])
def test_index_disagreeing_with_the_decoder_is_corrected(
    counted_mp4: Path, monkeypatch: pytest.MonkeyPatch, extra: int
) -> None:
    """Packet counts can lie (packed AVI, damaged files): the decoder's count wins, exactly."""
    real = hv._scan

    def lying(*args, **kwargs):
        index = real(*args, **kwargs)
        seconds = (
            index.seconds[:extra]
            if extra < 0
            else index.seconds + [index.seconds[-1] + (k + 1) / 25 for k in range(extra)]
        )
        return hv._Index(None, [], seconds, seconds[-1] + 1 / 25, 25.0, False)

    monkeypatch.setattr(hv, "_scan", lying)
    result = read_video(counted_mp4, num_frames=6)
    assert result.info.num_frames == 50
    assert result.info.indices == (0, 10, 20, 29, 39, 49)  # round(k * 49 / 5)
    assert_content_matches(result)


def write_variable_rate(path: Path, times_ms: list[int]) -> Path:
    """Frames that show their index, presented at the given (irregular) times."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, ms in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(index_frame(i), format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_fps_resampling_follows_timestamps_of_a_variable_rate_file(clip_dir: Path) -> None:
    times = [0.0, 0.04, 0.08, 0.4, 0.44, 1.0]
    path = write_variable_rate(clip_dir / "vfr.mp4", [round(t * 1000) for t in times])
    full = read_video(path)
    assert full.info.timestamps == pytest.approx(times)
    assert_content_matches(full)
    result = read_video(path, fps=10)
    assert len(result.info.indices) == math.ceil(full.info.duration * 10 - 1e-6)
    for k, index in enumerate(result.info.indices):  # the frame shown nearest k / 10 s
        assert abs(times[index] - k / 10) == pytest.approx(min(abs(t - k / 10) for t in times))
    assert result.info.timestamps == pytest.approx([times[i] for i in result.info.indices])
    assert_content_matches(result)


def test_coded_size_on_request(fixture_videos: Path) -> None:
    path = fixture_videos / "kinetics_arm_wrestling.mp4"
    info = probe_video(path)
    assert (info.coded_height, info.coded_width) == (256, 340)  # stored anamorphic, SAR 64:51
    assert info.sample_aspect_ratio == Fraction(64, 51)
    assert int(info.coded_width * info.sample_aspect_ratio) == info.width == 426
    coded = read_video(path, num_frames=2, square_pixels=False)
    assert coded.frames.shape == (2, 256, 340, 3)


def test_write_streams_an_iterable_and_crops_odd_sizes(clip_dir: Path) -> None:
    produced: list[int] = []

    def frames():
        for i in range(5):
            produced.append(i)
            yield torch.from_numpy(index_frame(i)[:63, :61])  # odd height and width

    path = write_video(clip_dir / "streamed.mp4", frames(), 25, odd="crop")
    assert produced == list(range(5))
    result = read_video(path)
    assert result.frames.shape == (5, 62, 60, 3)
    assert [read_index(f) for f in result.frames] == list(range(5))


# --- explicit frame indices (clip samplers) --------------------------------------------------


def test_explicit_indices_return_exactly_those_frames(tmp_path):
    from hartutor.video import read_video, write_video

    frames = np.zeros((30, 32, 32, 3), dtype=np.uint8)
    for i in range(30):
        frames[i] = i * 8  # flat grey level 8*i identifies the frame
    path = write_video(tmp_path / "ramp.mp4", frames, fps=25)
    wanted = [3, 4, 5, 20, 20, 0]
    video = read_video(path, indices=wanted)
    assert list(video.info.indices) == wanted
    levels = video.frames.float().mean(dim=(1, 2, 3)) / 8
    assert [round(float(v)) for v in levels] == wanted


def test_explicit_indices_are_checked(tmp_path):
    from hartutor.errors import VideoDecodeError
    from hartutor.video import read_video, write_video

    path = write_video(tmp_path / "short.mp4", np.zeros((5, 16, 16, 3), np.uint8), fps=25)
    with pytest.raises(VideoDecodeError, match=r"past the end: it has 5 frames"):
        read_video(path, indices=[0, 7])
    with pytest.raises(ValueError, match="not both"):
        read_video(path, num_frames=2, indices=[0, 1])
    with pytest.raises(ValueError, match="non-empty"):
        read_video(path, indices=[])
    with pytest.raises(ValueError, match="non-empty"):
        read_video(path, indices=[-1])
