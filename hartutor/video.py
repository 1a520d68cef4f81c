"""Video files in and out, on PyAV (FFmpeg): sampled, resized, bounded reads and atomic writes.

Reading
    :func:`read_video` decodes MP4/H.264, AVI/Xvid, MKV/WebM and GIF (any container in
    :data:`ALLOWED_FORMATS`) and returns a :class:`Video`: ``frames``, a ``uint8`` tensor
    ``(T, H, W, 3)`` in RGB, and ``info``, a frozen :class:`VideoInfo`. It keeps ``num_frames``
    frames spread uniformly over the clip, or resamples the clip to a target ``fps`` by
    presentation timestamps (variable frame rates included), and resizes on the fly (libswscale
    converts the colours and resizes in one step). :func:`probe_video` returns the metadata only,
    without decoding a frame.

Memory and time follow what is returned, not the file:

1. a first pass *demuxes* the video stream (reads packets, decodes nothing) to count the frames
   and learn their timestamps; headers are not trusted for either (AVI and GIF headers are often
   missing or wrong);
2. the wanted frame indices are chosen from that index (:func:`sample_indices`);
3. a second pass decodes sequentially and converts only the wanted frames, each straight into a
   preallocated output array. Where the index shows that the sampling is sparse (a long file, a
   few frames), it instead seeks to the keyframe before each wanted frame and checks every
   decoded frame's timestamp against the index; any surprise falls back to the sequential pass.

If the decoder's frame count disagrees with the index (a truncated or odd file), the choice is
made again with the true count and the file decoded once more, so the result is exact. Data that
stops decoding part-way (a truncated MP4 whose index promises more) ends the video at the last
frame that decodes: that count is the one sampled from and the one every message gives.

Hostile or broken files raise :class:`~hartutor.errors.VideoDecodeError`, never a hang or an
unbounded allocation: the limits :data:`MAX_FRAMES`, :data:`MAX_DURATION_S`, :data:`MAX_PIXELS`
and :data:`MAX_OUTPUT_BYTES` apply to every call; override them per call (``max_frames=`` ...)
or for the process (assign the module attribute). Only local regular files are opened, and only
with the demuxers in :data:`ALLOWED_FORMATS`, so that a playlist or concat script posing as a
video cannot make FFmpeg read other files or URLs.

Writing
    :func:`write_video` writes ``(T, H, W, 3)`` (or grey ``(T, H, W)``) ``uint8`` frames (a
    tensor, an array, or an iterable of frames) to H.264 MP4 (libx264, yuv420p; MPEG-4 Part 2
    where libx264 is missing), VP9 WebM, MPEG-4 AVI or GIF, chosen by the file suffix, atomically
    (a temporary file beside the target, then ``os.replace``).

Not handled: rotation metadata (frames come as stored), interlacing (frames come as decoded),
streams other than the first video stream.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import stat
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from hartutor._fileio import atomic_path
from hartutor.errors import VideoDecodeError, VideoEncodeError

__all__ = [
    "ALLOWED_FORMATS",
    "DEFAULT_CRF",
    "MAX_DURATION_S",
    "MAX_FRAMES",
    "MAX_OUTPUT_BYTES",
    "MAX_PIXELS",
    "Video",
    "VideoInfo",
    "probe_video",
    "read_video",
    "sample_indices",
    "write_video",
]

# --- limits (module defaults, read at call time; every reader takes keywords to override) -----

#: Most frames a file may hold (counted while demuxing) or a call may decode.
#: 200,000 frames are 55 minutes at 60 fps, or 2.2 hours at 25 fps.
MAX_FRAMES = 200_000
#: Longest video accepted, in seconds (the header's claim or the timestamps' span).
MAX_DURATION_S = 4 * 3600.0
#: Largest frame accepted, in pixels, for the file's frames and for the requested size: 8K UHD.
MAX_PIXELS = 7680 * 4320
#: Largest tensor one call may return (T * H * W * 3 bytes).
MAX_OUTPUT_BYTES = 4 * 1024**3

#: FFmpeg demuxers read_video accepts. Multi-name demuxers such as "mov,mp4,m4a,3gp,3g2,mj2"
#: and "matroska,webm" are accepted when any of their names is listed.
ALLOWED_FORMATS: tuple[str, ...] = (
    "mov",
    "mp4",
    "avi",
    "matroska",
    "webm",
    "gif",
    "mpeg",
    "mpegts",
    "flv",
    "asf",
    "ogg",
    "m4v",
    "h264",
    "hevc",
)
# Containers whose packet timestamps are presentation timestamps that decoded frames carry
# unchanged, so that a seek can be checked frame by frame against the index. (AVI is not one:
# with packed B-frames its frames come out with shuffled timestamps.)
_SEEKABLE_FORMATS = frozenset({"mov", "mp4", "matroska", "webm"})
#: Default quality of :func:`write_video`: x264's CRF (0-51) and VP9's (0-63). 15 is visually
#: near-lossless on 64x64 synthetic clips (about 47 dB PSNR on smooth grey content; what error
#: remains on coloured clips is yuv420p's half-resolution colour at sharp edges).
DEFAULT_CRF = 15
# Decoding work, in frames, that one seek is assumed to cost (flush, restart, decoder latency).
_SEEK_COST_FRAMES = 8
_EPS = 1e-6

OnShort = Literal["error", "pad", "loop"]
Size = int | tuple[int, int]


# --- public types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a video file and, from :func:`read_video`, about the frames returned.

    ``width`` and ``height`` are the *display* size, in square pixels: the coded size with the
    sample aspect ratio applied (the Kinetics fixture is coded 340x256 with SAR 64:51 and shown,
    and returned, as 426x256). ``coded_width``/``coded_height`` are as stored.
    ``num_frames`` is counted from the file's packets (and confirmed where a read decoded the
    whole stream), never taken from the header. ``duration`` runs from the first frame's
    timestamp to the end of the last frame; ``fps`` is the mean frame rate over the frames.
    ``indices`` (0-based, in presentation order) and ``timestamps`` (seconds from the first
    frame) describe the returned frames; both are empty from :func:`probe_video`.
    """

    path: str
    container: str  # FFmpeg demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "avi", "gif"
    codec: str  # FFmpeg decoder name, e.g. "h264", "mpeg4", "gif", "vp9"
    width: int
    height: int
    fps: float
    duration: float
    num_frames: int
    coded_width: int
    coded_height: int
    sample_aspect_ratio: Fraction
    has_audio: bool
    indices: tuple[int, ...] = ()
    timestamps: tuple[float, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        """Display ``(height, width)``."""
        return (self.height, self.width)


class Video(NamedTuple):
    """What :func:`read_video` returns; unpacks as ``frames, info = read_video(...)``.

    ``frames`` is ``uint8 (T, H, W, 3)`` RGB on the CPU; ``frames[t]`` is frame
    ``info.indices[t]`` of the file, shown at ``info.timestamps[t]`` seconds.
    """

    frames: torch.Tensor
    info: VideoInfo


# --- sampling (pure) ------------------------------------------------------------------------


class _TooShort(ValueError):
    """Fewer frames than requested and ``on_short="error"``."""


def sample_indices(
    num_available: int,
    num_frames: int | None = None,
    fps: float | None = None,
    *,
    timestamps: list[float] | None = None,
    duration: float | None = None,
    on_short: OnShort = "error",
) -> list[int]:
    """The indices of the frames :func:`read_video` returns out of ``num_available``.

    - Neither ``num_frames`` nor ``fps``: every frame.
    - ``num_frames``: uniform, ``round(k * (n - 1) / (num_frames - 1))`` for
      ``k = 0 .. num_frames - 1``: first and last frames included, as pytorchvideo's
      ``UniformTemporalSubsample`` (which truncates where this rounds); one frame: the first.
    - ``fps``: the clip resampled to ``fps``: output frame ``k`` is the frame whose timestamp is
      nearest to ``k / fps`` seconds, for every ``k / fps < duration``. ``timestamps`` are
      seconds from the first frame, sorted (evenly spread over ``duration`` when not given).
    - Both: the first ``num_frames`` of the ``fps`` grid (a clip of ``num_frames / fps`` s).

    With fewer frames than ``num_frames``, ``on_short`` decides: ``"error"`` raises
    ``ValueError`` saying how many exist; ``"pad"`` repeats the last frame; ``"loop"`` starts
    again from the first.
    """
    if num_available < 1:
        raise ValueError("the video has no frames")
    if on_short not in ("error", "pad", "loop"):
        raise ValueError(f"on_short must be 'error', 'pad' or 'loop', got {on_short!r}")
    if fps is None:
        if num_frames is None:
            return list(range(num_available))
        if num_frames <= num_available:
            if num_frames == 1:
                return [0]
            step = (num_available - 1) / (num_frames - 1)
            return [min(num_available - 1, math.floor(k * step + 0.5)) for k in range(num_frames)]
        base = list(range(num_available))
        have = f"it has {num_available} frames"
    else:
        if timestamps is None:
            if duration is None:
                raise ValueError("resampling to an fps needs timestamps or a duration")
            timestamps = [i * duration / num_available for i in range(num_available)]
        if duration is None:
            span = timestamps[-1] - timestamps[0]
            duration = timestamps[-1] + span / max(1, num_available - 1)
        count = max(1, math.ceil(duration * fps - _EPS))
        if num_frames is not None:
            count = min(count, num_frames)
        base = [_nearest(timestamps, k / fps) for k in range(count)]
        if num_frames is None or len(base) >= num_frames:
            return base
        have = f"it has {num_available} frames, which give {len(base)} frames at {fps:g} fps"
    assert num_frames is not None
    if on_short == "pad":
        return base + [base[-1]] * (num_frames - len(base))
    if on_short == "loop":
        return [base[k % len(base)] for k in range(num_frames)]
    raise _TooShort(
        f"the video is too short: {have}; {num_frames} were requested "
        "(on_short='pad' or 'loop' accepts short videos)"
    )


def _nearest(timestamps: list[float], t: float) -> int:
    """Index of the timestamp nearest to ``t`` (the earlier one on a tie)."""
    i = bisect.bisect_left(timestamps, t)
    if i == 0:
        return 0
    if i == len(timestamps):
        return i - 1
    return i - 1 if t - timestamps[i - 1] <= timestamps[i] - t + _EPS else i


# --- opening and indexing -------------------------------------------------------------------


@dataclass
class _Index:
    """What the demux pass learnt, per frame in presentation order."""

    pts: list[int] | None  # sorted packet timestamps (stream time base); None when unusable
    keyframes: list[int]  # presentation indices of keyframes (empty when pts is None)
    seconds: list[float]  # seconds from the first frame
    duration: float
    fps: float
    unique_pts: bool

    @property
    def num_frames(self) -> int:
        return len(self.seconds)


@dataclass(frozen=True)
class _Limits:
    frames: int
    duration: float
    pixels: int
    output_bytes: int


def _limits(
    frames: int | None, duration: float | None, pixels: int | None, output_bytes: int | None
) -> _Limits:
    return _Limits(
        MAX_FRAMES if frames is None else frames,
        MAX_DURATION_S if duration is None else duration,
        MAX_PIXELS if pixels is None else pixels,
        MAX_OUTPUT_BYTES if output_bytes is None else output_bytes,
    )


def _check_path(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise VideoDecodeError(path, "no such file") from None
    except PermissionError:
        raise VideoDecodeError(path, "permission denied") from None
    except OSError as err:
        raise VideoDecodeError(path, f"cannot access the file: {err.strerror or err}") from None
    if stat.S_ISDIR(st.st_mode):
        raise VideoDecodeError(path, "it is a directory, not a video file")
    if not stat.S_ISREG(st.st_mode):
        raise VideoDecodeError(path, "it is not a regular file (a device, pipe or socket)")
    if st.st_size == 0:
        raise VideoDecodeError(path, "the file is empty (0 bytes)")


def _open_container(path: Path) -> Any:
    options = {"format_whitelist": ",".join(ALLOWED_FORMATS), "protocol_whitelist": "file"}
    try:
        return av.open(str(path), mode="r", options=options)
    except av.FFmpegError as err:
        if getattr(err, "errno", None) == 22:  # EINVAL: the demuxer is not on the whitelist
            reason = (
                "FFmpeg reads it with a demuxer outside ALLOWED_FORMATS "
                f"({', '.join(ALLOWED_FORMATS)})"
            )
        else:
            reason = f"truncated, corrupt or not a video ({getattr(err, 'strerror', '') or err})"
        raise VideoDecodeError(path, f"not a readable video: {reason}") from err
    except (OSError, ValueError, RuntimeError, UnicodeError) as err:
        raise VideoDecodeError(path, f"not a readable video: {err}") from err


def _fraction(value: Any) -> Fraction | None:
    try:
        frac = Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return frac if frac > 0 else None


def _pick_stream(path: Path, container: Any) -> Any:
    attached = int(av.stream.Disposition.attached_pic)
    for stream in container.streams.video:
        if int(stream.disposition) & attached:
            continue  # the cover art of an audio file, not a video
        if stream.codec_context is None:
            raise VideoDecodeError(path, "FFmpeg has no decoder for its video stream")
        return stream
    kinds = [
        f"{s.type} ({s.codec_context.name if s.codec_context else '?'})" for s in container.streams
    ]
    raise VideoDecodeError(
        path, f"it has no video stream (streams: {', '.join(kinds) if kinds else 'none'})"
    )


def _header_fields(path: Path, container: Any, stream: Any, limits: _Limits) -> dict[str, Any]:
    ctx = stream.codec_context
    coded_w, coded_h = int(ctx.width or 0), int(ctx.height or 0)
    if coded_w <= 0 or coded_h <= 0:
        raise VideoDecodeError(path, "its video stream has no frame size (broken header)")
    sar = _fraction(stream.sample_aspect_ratio) or _fraction(ctx.sample_aspect_ratio)
    if sar is None or not Fraction(1, 16) <= sar <= 16:
        sar = Fraction(1)
    width = max(1, int(coded_w * sar))  # truncated, as FFmpeg's scale=iw*sar:ih
    if max(coded_w, width) * coded_h > limits.pixels:
        raise VideoDecodeError(
            path,
            f"its frames of {coded_w}x{coded_h} exceed the limit of {limits.pixels} pixels "
            f"(max_pixels={limits.pixels})",
        )
    return {
        "container": container.format.name,
        "codec": ctx.name,
        "width": width,
        "height": coded_h,
        "coded_width": coded_w,
        "coded_height": coded_h,
        "sample_aspect_ratio": sar,
        "has_audio": len(container.streams.audio) > 0,
    }


def _header_seconds(container: Any, stream: Any, time_base: Fraction) -> float:
    seconds = 0.0
    if container.duration and container.duration > 0:
        seconds = container.duration / av.time_base
    if stream.duration and stream.duration > 0:
        seconds = max(seconds, float(stream.duration * time_base))
    return seconds


def _header_rate(stream: Any) -> Fraction | None:
    for name in ("average_rate", "guessed_rate", "base_rate"):
        rate = _fraction(getattr(stream, name, None))
        if rate is not None and rate < 10_000:
            return rate
    return None


def _scan(path: Path, container: Any, stream: Any, time_base: Fraction, limits: _Limits) -> _Index:
    """Demux the video stream (decoding nothing) and index its frames."""
    raw: list[tuple[int | None, bool, int | None]] = []
    try:
        for packet in container.demux(stream):
            if not packet.size or getattr(packet, "is_discard", False):
                continue  # the final flush packet, or a frame that an edit list cuts
            pts = packet.pts if packet.pts is not None else packet.dts
            raw.append((pts, bool(packet.is_keyframe), packet.duration))
            if len(raw) > limits.frames:
                raise VideoDecodeError(
                    path,
                    f"it has more than {limits.frames} frames (max_frames={limits.frames})",
                )
    except av.FFmpegError as err:
        if not raw:
            reason = f"not a readable video: no packet could be read ({err})"
            raise VideoDecodeError(path, reason) from err
        # a damaged tail: keep what was read; decoding tells how much of it is usable
    n = len(raw)
    rate = _header_rate(stream)
    if n and all(p is not None for p, _, _ in raw):
        order = sorted(range(n), key=lambda i: raw[i][0])  # type: ignore[arg-type,return-value]
        pts: list[int] = [raw[i][0] for i in order]  # type: ignore[misc]
        keyframes = [rank for rank, i in enumerate(order) if raw[i][1]]
        seconds = [float((p - pts[0]) * time_base) for p in pts]
        last = raw[order[-1]][2]
        if last and last > 0:
            last_seconds = float(last * time_base)
        elif n > 1:
            steps = sorted(b - a for a, b in itertools.pairwise(seconds))
            last_seconds = steps[len(steps) // 2]
        else:
            last_seconds = float(1 / rate) if rate else 0.0
        fps = (n - 1) / seconds[-1] if n > 1 and seconds[-1] > 0 else float(rate or 0)
        unique = len(set(pts)) == n
        return _Index(pts, keyframes, seconds, seconds[-1] + last_seconds, fps, unique)
    # no usable timestamps: assume the header's constant rate
    fps = float(rate) if rate else 25.0
    return _Index(None, [], [i / fps for i in range(n)], n / fps, fps if n else 0.0, False)


def _probe(path: Path, limits: _Limits) -> tuple[VideoInfo, _Index, Fraction]:
    """Check the file, open it, pick the video stream, check the limits and index the frames."""
    _check_path(path)
    container = _open_container(path)
    try:
        stream = _pick_stream(path, container)
        time_base = _fraction(stream.time_base) or Fraction(1, av.time_base)
        fields = _header_fields(path, container, stream, limits)
        claimed = _header_seconds(container, stream, time_base)
        if claimed > limits.duration:
            raise VideoDecodeError(
                path,
                f"its header says it lasts {claimed:.1f} s, above the limit of "
                f"{limits.duration:g} s (max_duration={limits.duration:g})",
            )
        index = _scan(path, container, stream, time_base, limits)
    finally:
        container.close()
    if index.num_frames == 0:
        raise VideoDecodeError(path, "its video stream has no frames")
    if index.duration > limits.duration:
        raise VideoDecodeError(
            path,
            f"its timestamps span {index.duration:.1f} s, above the limit of "
            f"{limits.duration:g} s (max_duration={limits.duration:g})",
        )
    info = VideoInfo(
        path=str(path),
        fps=index.fps,
        duration=index.duration,
        num_frames=index.num_frames,
        **fields,
    )
    return info, index, time_base


def _guarded(path: str | os.PathLike[str], action: Any) -> Any:
    """Run ``action``; whatever FFmpeg or PyAV raises on a bad file becomes a VideoDecodeError."""
    try:
        return action()
    except VideoDecodeError:
        raise
    except MemoryError as err:
        raise VideoDecodeError(path, "out of memory while decoding") from err
    except (av.FFmpegError, OSError, ValueError, RuntimeError, EOFError, TypeError) as err:
        raise VideoDecodeError(path, f"decoding failed: {type(err).__name__}: {err}") from err


def probe_video(
    path: str | os.PathLike[str],
    *,
    max_frames: int | None = None,
    max_duration: float | None = None,
    max_pixels: int | None = None,
) -> VideoInfo:
    """Metadata of a video without decoding it: sizes, codec, container, fps, duration, frames.

    Reads the video stream's packets once (cheap next to decoding) so that the frame count,
    duration and fps come from the file's timestamps rather than from its header. Raises
    :class:`VideoDecodeError` wherever :func:`read_video` would refuse the file.
    """
    limits = _limits(max_frames, max_duration, max_pixels, None)
    info, _, _ = _guarded(path, lambda: _probe(Path(path), limits))
    return info


def check_opens(path: str | os.PathLike[str]) -> None:
    """Raise :class:`VideoDecodeError` unless ``path`` opens as a video and its first frame
    decodes: a quick check of many files (``hartutor ucf101 check``), cheaper than a probe."""

    def first_frame() -> None:
        file = Path(path)
        _check_path(file)
        with _open_container(file) as container:
            stream = _pick_stream(file, container)
            for packet in itertools.islice(container.demux(stream), 256):
                for _ in packet.decode():
                    return
            raise VideoDecodeError(path, "no frame decodes from its first 256 packets")

    _guarded(path, first_frame)


# --- decoding -------------------------------------------------------------------------------


_local = threading.local()


def _to_rgb(frame: Any, width: int, height: int) -> np.ndarray:
    """One decoded frame as ``uint8 (height, width, 3)`` RGB; libswscale converts and resizes.

    One reformatter per thread keeps libswscale's context between frames (``frame.to_ndarray``
    builds a new one per frame, which costs more than converting a 64x64 frame).
    """
    reformatter = getattr(_local, "reformatter", None)
    if reformatter is None:
        reformatter = _local.reformatter = VideoReformatter()
    return reformatter.reformat(frame, width=width, height=height, format="rgb24").to_ndarray()


def _output_size(info: VideoInfo, size: Size | None, square_pixels: bool) -> tuple[int, int]:
    h, w = (info.height, info.width) if square_pixels else (info.coded_height, info.coded_width)
    if size is None:
        return h, w
    if isinstance(size, int):
        if h <= w:
            return size, max(1, math.floor(w * size / h + 0.5))
        return max(1, math.floor(h * size / w + 0.5)), size
    return int(size[0]), int(size[1])


class _Sink:
    """The preallocated output and which decoded frame fills which output slots."""

    def __init__(self, indices: list[int], height: int, width: int):
        self.slots: dict[int, list[int]] = {}
        for slot, index in enumerate(indices):
            self.slots.setdefault(index, []).append(slot)
        self.out = np.empty((len(indices), height, width, 3), dtype=np.uint8)
        self.height, self.width = height, width
        self.filled: set[int] = set()
        self.last = max(self.slots)

    def offer(self, index: int, frame: Any) -> None:
        slots = self.slots.get(index)
        if slots is None or index in self.filled:
            return
        rgb = _to_rgb(frame, self.width, self.height)
        for slot in slots:
            self.out[slot] = rgb
        self.filled.add(index)

    @property
    def complete(self) -> bool:
        return len(self.filled) == len(self.slots)


class _SeekFailed(Exception):
    """The file did not behave as its index promised: decode sequentially instead."""


@dataclass
class _Group:
    key: int  # presentation index of the keyframe to seek to
    targets: list[int]


def _seek_plan(index: _Index, wanted: list[int]) -> tuple[list[_Group], int] | None:
    """Wanted frames grouped by the keyframe to decode each group from, and the frames decoded."""
    if index.pts is None or not index.unique_pts or not index.keyframes:
        return None
    if index.keyframes[0] != 0:
        return None
    groups: list[_Group] = []
    for target in sorted(set(wanted)):
        key = index.keyframes[bisect.bisect_right(index.keyframes, target) - 1]
        if groups and key - groups[-1].targets[-1] <= _SEEK_COST_FRAMES:
            groups[-1].targets.append(target)  # decoding on is cheaper than seeking
        else:
            groups.append(_Group(key, [target]))
    cost = sum(g.targets[-1] - g.key + 1 + _SEEK_COST_FRAMES for g in groups)
    return groups, cost


class _Decoder:
    """Decodes one file into a :class:`_Sink`, sequentially or by seeking, within the limits."""

    def __init__(self, path: Path, limits: _Limits, threads: int | None):
        self.path, self.limits, self.threads = path, limits, threads
        self.decoded = 0
        self.cut: str | None = None

    def _open(self) -> tuple[Any, Any]:
        container = _open_container(self.path)
        try:
            stream = _pick_stream(self.path, container)
            ctx = stream.codec_context
            threads = self.threads
            if threads is None:  # thread start-up costs more than it saves on tiny frames
                threads = 1 if (ctx.width or 0) * (ctx.height or 0) <= 320 * 240 else 0
            ctx.thread_count = threads
            ctx.thread_type = "NONE" if threads == 1 else "AUTO"
        except BaseException:
            container.close()
            raise
        return container, stream

    def _frames(self, container: Any, stream: Any) -> Iterator[Any]:
        """Decoded frames from the container's current position, counted against the limits."""
        for frame in container.decode(stream):
            self.decoded += 1
            if self.decoded > self.limits.frames:
                raise VideoDecodeError(
                    self.path,
                    f"more than {self.limits.frames} frames decoded "
                    f"(max_frames={self.limits.frames})",
                )
            if frame.width * frame.height > self.limits.pixels:
                raise VideoDecodeError(
                    self.path,
                    f"a frame of {frame.width}x{frame.height} exceeds "
                    f"max_pixels={self.limits.pixels}",
                )
            yield frame

    def sequential(self, sink: _Sink, stop_early: bool) -> list[int | None]:
        """Decode from the start, offering every frame to ``sink``; returns the frames' pts.

        With ``stop_early``, stops after the last wanted frame. Data that stops decoding after
        some frames (a truncated file) ends the video there: the frames that decode are the
        video, and ``self.cut`` says why it ended. None decoding is an error.
        """
        container, stream = self._open()
        pts: list[int | None] = []
        self.cut = None
        try:
            for frame in self._frames(container, stream):
                sink.offer(len(pts), frame)
                pts.append(frame.pts)
                if stop_early and len(pts) > sink.last:
                    break
        except av.FFmpegError as err:
            if not pts:
                raise VideoDecodeError(
                    self.path, f"corrupt or truncated: no frame decodes ({err})"
                ) from err
            self.cut = f"{type(err).__name__} after {len(pts)} frames"
        finally:
            container.close()
        return pts

    def count(self, height: int, width: int) -> list[int | None]:
        """The pts of every frame that decodes (the true frame count), keeping none."""
        return self.sequential(_Sink([0], height, width), stop_early=False)

    def seeking(self, sink: _Sink, index: _Index, groups: list[_Group]) -> None:
        """Seek to each group's keyframe and decode up to its last target, checking timestamps."""
        assert index.pts is not None
        where = {p: i for i, p in enumerate(index.pts)}
        container, stream = self._open()
        try:
            for group in groups:
                key_pts = index.pts[group.key]
                last_pts = index.pts[group.targets[-1]]
                wanted = set(group.targets)
                container.seek(key_pts, stream=stream, backward=True, any_frame=False)
                for frame in self._frames(container, stream):
                    if frame.pts is None:
                        raise _SeekFailed
                    if frame.pts < key_pts:
                        continue  # leading frames of an open GOP: another group's business
                    i = where.get(frame.pts)
                    if i is None:
                        raise _SeekFailed  # a timestamp the index does not know
                    if i in wanted:
                        sink.offer(i, frame)
                    if frame.pts >= last_pts:
                        break
                if not wanted <= sink.filled:
                    raise _SeekFailed
        except av.FFmpegError as err:
            raise _SeekFailed from err
        finally:
            container.close()


def _decoded_seconds(pts: list[int | None], time_base: Fraction, fps: float) -> list[float]:
    if pts and all(p is not None for p in pts) and len(set(pts)) == len(pts):
        ordered: list[int] = sorted(pts)  # type: ignore[arg-type]
        return [float((p - ordered[0]) * time_base) for p in ordered]
    rate = fps if fps > 0 else 25.0
    return [i / rate for i in range(len(pts))]


def _check_read_args(
    num_frames: int | None, fps: float | None, size: Size | None, on_short: str
) -> None:
    def positive_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value > 0

    if num_frames is not None and not positive_int(num_frames):
        raise ValueError(f"num_frames must be a positive int, got {num_frames!r}")
    if fps is not None and (
        isinstance(fps, bool)
        or not isinstance(fps, int | float | Fraction)
        or not math.isfinite(fps)
        or fps <= 0
    ):
        raise ValueError(f"fps must be a positive finite number, got {fps!r}")
    if size is not None and not (
        positive_int(size)
        or (isinstance(size, tuple | list) and len(size) == 2 and all(map(positive_int, size)))
    ):
        raise ValueError(f"size must be a positive int or a (height, width) pair, got {size!r}")
    if on_short not in ("error", "pad", "loop"):
        raise ValueError(f"on_short must be 'error', 'pad' or 'loop', got {on_short!r}")


def read_video(
    path: str | os.PathLike[str],
    num_frames: int | None = None,
    fps: float | None = None,
    size: Size | None = None,
    *,
    indices: Sequence[int] | None = None,
    on_short: OnShort = "error",
    square_pixels: bool = True,
    seek: bool | None = None,
    threads: int | None = None,
    max_frames: int | None = None,
    max_duration: float | None = None,
    max_pixels: int | None = None,
    max_output_bytes: int | None = None,
) -> Video:
    """Decode a video file into ``uint8 (T, H, W, 3)`` RGB frames plus its :class:`VideoInfo`.

    Args:
        path: a local video file (MP4, AVI, MKV/WebM, GIF...; see :data:`ALLOWED_FORMATS`).
        num_frames: keep this many frames spread uniformly over the clip, first and last
            included (see :func:`sample_indices`). With ``fps``: the first ``num_frames``
            frames of the resampled clip.
        fps: resample to this frame rate by timestamps: output frame ``k`` is the frame whose
            timestamp is nearest to ``k / fps`` s (frames are dropped or repeated; variable
            frame rates are handled).
        size: resize while converting: an ``int`` is the short side (aspect kept, long side
            rounded), a ``(height, width)`` pair is exact. Default: the display size.
        indices: exactly these frames (0-based, presentation order, repeats allowed), e.g. a
            window picked by a clip sampler; excludes ``num_frames`` and ``fps``. An index past
            the last frame raises :class:`VideoDecodeError` saying how many frames exist.
        on_short: when the clip has fewer frames than ``num_frames``: ``"error"`` (default)
            raises :class:`VideoDecodeError` saying how many frames exist; ``"pad"`` repeats
            the last frame up to ``num_frames``; ``"loop"`` starts again from the first frame.
        square_pixels: apply the sample aspect ratio (default), as players do; ``False`` keeps
            the coded size.
        seek: ``None`` (default) seeks to keyframes where the index shows this decodes at most
            half the frames of a sequential pass; ``False`` never seeks; ``True`` seeks whenever
            the container allows it (MP4/MOV, MKV/WebM). The frames are the same either way.
        threads: decoder threads (``0``: FFmpeg's choice; default: 1 for frames up to 320x240,
            else FFmpeg's choice).
        max_frames, max_duration, max_pixels, max_output_bytes: per-call limits (defaults:
            :data:`MAX_FRAMES`, :data:`MAX_DURATION_S`, :data:`MAX_PIXELS`,
            :data:`MAX_OUTPUT_BYTES`).

    Raises:
        VideoDecodeError: naming the file and the reason: missing, a directory, empty, not a
            video, audio-only, truncated or corrupt, no frames, fewer frames than asked for
            (``on_short="error"``), or over a limit. Bad arguments raise ``ValueError``.
    """
    _check_read_args(num_frames, fps, size, on_short)
    explicit = _check_indices(indices, num_frames, fps)
    limits = _limits(max_frames, max_duration, max_pixels, max_output_bytes)
    request = (num_frames, fps, size, on_short, square_pixels, seek, threads)
    return _guarded(path, lambda: _read(Path(path), *request, limits, explicit))


def _check_indices(
    indices: Sequence[int] | None, num_frames: int | None, fps: float | None
) -> tuple[int, ...] | None:
    if indices is None:
        return None
    if num_frames is not None or fps is not None:
        raise ValueError("give either indices= or num_frames=/fps=, not both")
    chosen = tuple(int(i) for i in indices)
    if (
        not chosen
        or any(i < 0 for i in chosen)
        or any(isinstance(i, bool) or int(i) != i for i in indices)
    ):
        raise ValueError(f"indices must be a non-empty list of frame numbers >= 0, got {indices!r}")
    return chosen


def _read(
    path: Path,
    num_frames: int | None,
    fps: float | None,
    size: Size | None,
    on_short: OnShort,
    square_pixels: bool,
    seek: bool | None,
    threads: int | None,
    limits: _Limits,
    explicit: tuple[int, ...] | None = None,
) -> Video:
    info, index, time_base = _probe(path, limits)
    height, width = _output_size(info, size, square_pixels)
    if height * width > limits.pixels:
        raise VideoDecodeError(
            path, f"the requested size {height}x{width} exceeds max_pixels={limits.pixels}"
        )

    def choose(n: int, seconds: list[float], duration: float, *, counted: bool = True) -> list[int]:
        """The frames to keep of ``n``; ``counted=False`` (``n`` from the index, not from
        decoding) raises ``_TooShort`` when too few, so the frames can be counted first."""
        if explicit is not None:
            beyond = sorted({i for i in explicit if i >= n})
            if beyond:
                if not counted:
                    raise _TooShort("past the end")
                raise VideoDecodeError(
                    path, f"frame indices {beyond[:5]} are past the end: it has {n} frames"
                )
            chosen = list(explicit)
        else:
            try:
                chosen = sample_indices(
                    n, num_frames, fps, timestamps=seconds, duration=duration, on_short=on_short
                )
            except _TooShort as err:
                if not counted:
                    raise
                raise VideoDecodeError(path, str(err)) from None
        nbytes = len(chosen) * height * width * 3
        if nbytes > limits.output_bytes:
            raise VideoDecodeError(
                path,
                f"{len(chosen)} frames of {height}x{width} need {nbytes / 2**20:.1f} MiB, above "
                f"max_output_bytes={limits.output_bytes}; ask for fewer frames (num_frames=, "
                "fps=) or a smaller size=",
            )
        return chosen

    seconds = index.seconds
    decoder = _Decoder(path, limits, threads)
    try:
        indices = choose(index.num_frames, index.seconds, index.duration, counted=False)
    except _TooShort:
        # Too few frames by the index: say so with the count of frames that truly decode
        # (a truncated file's index may promise more), or go on if more decode than it said.
        pts = decoder.count(height, width)
        seconds = _decoded_seconds(pts, time_base, index.fps)
        step = seconds[-1] / (len(seconds) - 1) if len(seconds) > 1 else 1 / index.fps
        indices = choose(len(pts), seconds, seconds[-1] + step)
    sink = _Sink(indices, height, width)

    done = False
    seekable = any(name in _SEEKABLE_FORMATS for name in info.container.split(","))
    plan = _seek_plan(index, indices) if seek is not False and seekable else None
    if plan is not None and (seek or 2 * plan[1] <= sink.last + 1):
        try:
            decoder.seeking(sink, index, plan[0])
            done = sink.complete
        except _SeekFailed:
            done = False
        if not done:
            sink = _Sink(indices, height, width)

    if not done:
        # Decode past the index's end only where the choice depends on the true frame count.
        stop_early = sink.last < index.num_frames - 2
        pts = decoder.sequential(sink, stop_early)
        if not pts:
            raise VideoDecodeError(path, "no frame could be decoded (truncated or corrupt)")
        if not sink.complete or (not stop_early and len(pts) != index.num_frames) or decoder.cut:
            # The decoder disagrees with the index: choose again from what it decoded.
            seconds = _decoded_seconds(pts, time_base, index.fps)
            step = seconds[-1] / (len(seconds) - 1) if len(seconds) > 1 else 1 / index.fps
            duration = seconds[-1] + step
            indices = choose(len(pts), seconds, duration)
            sink = _Sink(indices, height, width)
            again = decoder.sequential(sink, stop_early=True)
            if not sink.complete:
                raise VideoDecodeError(
                    path, f"decoding is not repeatable ({len(pts)} then {len(again)} frames)"
                )
            fps_seen = (len(seconds) - 1) / seconds[-1] if seconds[-1] > 0 else info.fps
            info = replace(info, num_frames=len(pts), duration=duration, fps=fps_seen)
    info = replace(info, indices=tuple(indices), timestamps=tuple(seconds[i] for i in indices))
    return Video(torch.from_numpy(sink.out), info)


# --- writing --------------------------------------------------------------------------------

_SUFFIX_CODECS: dict[str, tuple[str, ...]] = {
    ".mp4": ("libx264", "mpeg4"),
    ".m4v": ("libx264", "mpeg4"),
    ".mov": ("libx264", "mpeg4"),
    ".mkv": ("libx264", "mpeg4"),
    ".avi": ("mpeg4",),
    ".webm": ("libvpx-vp9", "libvpx"),
    ".gif": ("gif",),
}
# yuv420p encoders that need an even width and height
_EVEN_SIZE_CODECS = frozenset({"libx264", "mpeg4", "libopenh264", "h264_nvenc"})


@cache
def _encoder_available(name: str) -> bool:
    """Whether this FFmpeg build has the encoder ``name``."""
    try:
        av.codec.Codec(name, "w")
    except (av.FFmpegError, ValueError, KeyError):
        return False
    return True


def _pick_codec(path: Path, codec: str | None) -> str:
    if codec is not None:
        if not _encoder_available(codec):
            raise VideoEncodeError(
                f"cannot write {str(path)!r}: this FFmpeg has no {codec!r} encoder"
            )
        return codec
    choices = _SUFFIX_CODECS.get(path.suffix.lower())
    if choices is None:
        raise VideoEncodeError(
            f"cannot write {str(path)!r}: unknown suffix {path.suffix!r} "
            f"(use one of {', '.join(sorted(_SUFFIX_CODECS))})"
        )
    for name in choices:
        if _encoder_available(name):
            return name
    raise VideoEncodeError(
        f"cannot write {str(path)!r}: none of the encoders {', '.join(choices)} is available"
    )


def _as_array(frame: Any) -> np.ndarray:
    if isinstance(frame, torch.Tensor):
        return frame.detach().cpu().numpy()
    return np.asarray(frame)


def _frames_of(path: Path, frames: Any) -> Iterator[np.ndarray]:
    if isinstance(frames, torch.Tensor | np.ndarray):
        array = _as_array(frames)
        if array.ndim not in (3, 4):
            raise VideoEncodeError(
                f"cannot write {str(path)!r}: frames must be (T, H, W, 3) or (T, H, W), got "
                f"shape {tuple(array.shape)}"
            )
        yield from array
        return
    if not isinstance(frames, Iterable):
        raise VideoEncodeError(
            f"cannot write {str(path)!r}: frames must be a tensor, an array or an iterable of "
            f"frames, got {type(frames).__name__}"
        )
    for frame in frames:
        yield _as_array(frame)


def _rgb_frame(path: Path, t: int, frame: np.ndarray) -> np.ndarray:
    if frame.dtype != np.uint8:
        raise VideoEncodeError(
            f"cannot write {str(path)!r}: frames must be uint8 (0-255), got {frame.dtype}; "
            "convert floats in [0, 1] with (x * 255).round().clip(0, 255).astype('uint8')"
        )
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) < 1:
        raise VideoEncodeError(
            f"cannot write {str(path)!r}: frame {t} must be (H, W, 3) RGB or (H, W) grey, got "
            f"shape {frame.shape}"
        )
    return frame


def _even(frame: np.ndarray, odd: str) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    if odd == "crop":
        return frame[: h - h % 2, : w - w % 2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _gif_frame(frame: np.ndarray) -> Any:
    """An RGB frame as pal8 with its own 256-colour palette (exact for up to 256 colours)."""
    from PIL import Image

    image = Image.fromarray(frame, "RGB").quantize(
        256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    palette = np.zeros(768, dtype=np.uint8)
    values = (image.getpalette() or [])[:768]
    palette[: len(values)] = values
    argb = np.concatenate([np.full((256, 1), 255, np.uint8), palette.reshape(256, 3)], axis=1)
    return av.VideoFrame.from_ndarray((np.asarray(image), argb), format="pal8")


def write_video(
    path: str | os.PathLike[str],
    frames: torch.Tensor | np.ndarray | Iterable[Any],
    fps: float | Fraction,
    *,
    codec: str | None = None,
    crf: int = DEFAULT_CRF,
    odd: Literal["pad", "crop"] = "pad",
    options: Mapping[str, str] | None = None,
    fourcc: str | None = None,
) -> Path:
    """Write ``uint8`` RGB ``(T, H, W, 3)`` or grey ``(T, H, W)`` frames to a video file.

    The suffix picks the format: ``.mp4``/``.mov``/``.mkv``/``.m4v``: H.264 (libx264, yuv420p,
    preset "medium"), or MPEG-4 Part 2 where this FFmpeg has no libx264; ``.avi``: MPEG-4 Part 2
    (as UCF101's Xvid); ``.webm``: VP9; ``.gif``: a 256-colour palette per frame (exact for
    frames of at most 256 colours; GIF stores delays in 1/100 s, so an fps that does not divide
    100 comes back approximately). ``codec=`` forces an FFmpeg encoder. ``crf`` is the quality
    on the encoder's own scale (x264 0-51, VP9 0-63; MPEG-4 maps it to a quantiser); the default
    :data:`DEFAULT_CRF` is visually near-lossless on the 64x64 synthetic clips. ``options`` are
    passed to the encoder last (e.g. ``{"g": "10"}`` for a keyframe every 10 frames,
    ``{"preset": "ultrafast"}``). ``fourcc`` sets the stream's four-character code (``"XVID"``
    labels MPEG-4 Part 2 in an AVI as UCF101's files are labelled; FFmpeg's default is FMP4).

    yuv420p keeps colour at half resolution, so H.264 and MPEG-4 need an even width and height:
    an odd size is padded by repeating the last row/column (``odd="pad"``, the default: nothing
    is lost and the file is one pixel larger) or cropped by one (``odd="crop"``). VP9 and GIF
    keep odd sizes.

    ``frames`` may be a tensor, an array, or any iterable of frames (streamed: a long video need
    not fit in memory). The file appears complete or not at all: it is written to a temporary
    file beside ``path`` and renamed over it. Returns ``Path(path)``.

    Raises:
        VideoEncodeError: bad frames (not uint8, wrong shape, none), a bad fps, an unknown
            suffix or encoder, or an FFmpeg failure; an existing file at ``path`` is untouched.
    """
    target = Path(path)
    rate = None if isinstance(fps, bool) else _fraction(fps)
    if rate is None or not math.isfinite(float(rate)) or rate > 1000:
        raise VideoEncodeError(
            f"cannot write {str(target)!r}: fps must be a positive number up to 1000, got {fps!r}"
        )
    rate = rate.limit_denominator(1001)
    if odd not in ("pad", "crop"):
        raise ValueError(f"odd must be 'pad' or 'crop', got {odd!r}")
    if not 0 <= crf <= 63:
        raise ValueError(f"crf must be within 0..63, got {crf}")
    if fourcc is not None and (len(fourcc) != 4 or not fourcc.isascii()):
        raise ValueError(f"fourcc must be four ASCII characters, got {fourcc!r}")
    name = _pick_codec(target, codec)
    source = _frames_of(target, frames)
    first_raw = next(source, None)
    if first_raw is None:
        raise VideoEncodeError(f"cannot write {str(target)!r}: no frames given")
    first = _rgb_frame(target, 0, first_raw)
    try:
        with atomic_path(target) as tmp, av.open(str(tmp), mode="w") as container:
            stream = _add_stream(container, name, rate, first, crf, odd, options)
            if fourcc is not None:
                stream.codec_context.codec_tag = fourcc
            time_base = 1 / rate
            for t, raw in enumerate(_chain(first_raw, source)):
                frame = _rgb_frame(target, t, raw)
                if frame.shape != first.shape:
                    raise VideoEncodeError(
                        f"cannot write {str(target)!r}: frame {t} is {frame.shape}, the first "
                        f"frame was {first.shape}"
                    )
                video_frame = _encodable(frame, name, odd)
                video_frame.pts, video_frame.time_base = t, time_base
                container.mux(stream.encode(video_frame))
            container.mux(stream.encode(None))
    except VideoEncodeError:
        raise
    except (av.FFmpegError, OSError, ValueError, RuntimeError, TypeError) as err:
        raise VideoEncodeError(f"cannot write {str(target)!r} with {name}: {err}") from err
    return target


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _add_stream(
    container: Any,
    name: str,
    rate: Fraction,
    first: np.ndarray,
    crf: int,
    odd: str,
    options: Mapping[str, str] | None,
) -> Any:
    stream = container.add_stream(name, rate=rate)
    shaped = _even(first, odd) if name in _EVEN_SIZE_CODECS else first
    stream.height, stream.width = shaped.shape[:2]
    ctx = stream.codec_context
    if stream.width * stream.height <= 320 * 240:
        ctx.thread_count = 1  # thread start-up dominates on tiny clips (docs/benchmarks.md)
    chosen: dict[str, str] = {}
    if name == "gif":
        stream.pix_fmt = "pal8"
    elif name == "libx264":
        stream.pix_fmt = "yuv420p"
        chosen = {"crf": str(min(crf, 51)), "preset": "medium"}
    elif name in ("libvpx-vp9", "libvpx"):
        stream.pix_fmt = "yuv420p"
        chosen = {"crf": str(crf), "b": "0", "row-mt": "1"}
    else:  # MPEG-4 Part 2 and other quantiser-driven encoders; qscale 2 is near-lossless
        stream.pix_fmt = "yuv420p"
        ctx.qscale = max(2, min(31, round(crf / 7)))
    chosen.update({str(k): str(v) for k, v in (options or {}).items()})
    if chosen:
        stream.options = chosen
    return stream


def _encodable(frame: np.ndarray, name: str, odd: str) -> Any:
    if name == "gif":
        return _gif_frame(np.ascontiguousarray(frame))
    if name in _EVEN_SIZE_CODECS:
        frame = _even(frame, odd)
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
