"""Decode speed and peak memory of hartutor.video.read_video beside pytorchvideo's PyAV decoder.

Each measurement runs in a fresh Python process, so its peak RSS (``ru_maxrss``) is its own.
Inputs: the real clips in ../shared/fixtures/videos (when present) and a generated 1080p clip
(60 s at 30 fps by default, H.264, a keyframe every 2 s) sampled to 16 frames.

    python -m benchmarks.bench_video                  # prints a markdown table
    python -m benchmarks.bench_video --seconds 20 --pv-seconds 1

pytorchvideo's ``EncodedVideo.get_clip`` decodes every frame of the span into a float tensor
before any subsampling, so on the long 1080p clip it is run on the first ``--pv-seconds`` only
(all 60 s would need tens of GB); the table says so.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import markdown_table, peak_rss_mb, run_worker, serve_worker

REPO = Path(__file__).resolve().parents[1]


def _worker(payload: dict[str, Any]) -> dict[str, Any]:
    """Decode one clip with one decoder in this fresh process: time and peak memory."""
    import hartutor  # noqa: F401
    from hartutor.video import probe_video, read_video

    path, n, mode, span = payload["path"], payload["n"], payload["mode"], payload["span"]
    base = peak_rss_mb()
    info = probe_video(path)
    if not mode.startswith("hartutor"):  # import outside the timed part
        from pytorchvideo.data.encoded_video import EncodedVideo
        from pytorchvideo.transforms import UniformTemporalSubsample
    start = time.perf_counter()
    if mode.startswith("hartutor"):
        video = read_video(path, num_frames=n, seek=(mode != "hartutor-noseek"))
        spanned, returned = info.num_frames, video.frames.shape[0]
    else:
        end = info.duration if span is None else min(span, info.duration)
        clip = EncodedVideo.from_path(path, decoder="pyav", decode_audio=False).get_clip(0, end)
        frames = clip["video"]  # (C, T, H, W) float32
        spanned = frames.shape[1]
        if n is not None:
            frames = UniformTemporalSubsample(n)(frames)
        returned = frames.shape[1]
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    return {
        "seconds": seconds,
        "spanned": int(spanned),
        "returned": int(returned),
        "peak_mb": peak,
        "extra_mb": peak - base,
    }


def measure(path: Path, n: int | None, mode: str, span: float | None) -> dict:
    """Decode ``path`` (``n`` frames or all) with ``mode`` in a fresh process."""
    payload = {"path": str(path), "n": n, "mode": mode, "span": span}
    return run_worker("benchmarks.bench_video", payload)


def make_long_clip(path: Path, seconds: float, fps: int = 30) -> Path:
    """A 1920x1080 H.264 clip of a moving pattern, written frame by frame (bounded memory)."""
    import av
    import numpy as np

    if path.exists():
        return path
    y, x = np.mgrid[0:1080, 0:1920]
    base = np.stack([(x // 8) % 256, (y // 8) % 256, ((x + y) // 16) % 256], -1).astype(np.uint8)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream(
            "libx264", rate=fps, options={"preset": "ultrafast", "crf": "23", "g": str(2 * fps)}
        )
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = np.roll(base, (3 * i, 5 * i), axis=(0, 1))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    tmp.replace(path)
    return path


Case = tuple[str, Path, int | None, str, float | None]


def cases(
    fixtures: Path | None,
    *,
    seconds: float | None,
    pv_seconds: float,
    workdir: Path,
) -> list[Case]:
    """(name, path, frames asked, decoder, span) for the fixture clips and a generated
    1080p clip of ``seconds`` (None: no generated clip)."""
    found: list[Case] = []
    if fixtures is not None and fixtures.is_dir():
        for clip in sorted(fixtures.iterdir()):
            for n in (None, 16):
                found.append((clip.name, clip, n, "hartutor", None))
                found.append((clip.name, clip, n, "pytorchvideo", None))
    if seconds:
        workdir.mkdir(parents=True, exist_ok=True)
        long = make_long_clip(workdir / f"long_1080p_{seconds:g}s.mp4", seconds)
        name = f"1080p {seconds:g} s (generated)"
        found.append((name, long, 16, "hartutor", None))
        found.append((name, long, 16, "hartutor-noseek", None))
        found.append((name, long, 16, "pytorchvideo", pv_seconds))
    return found


def measure_all(
    found: Sequence[Case], progress: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """Each case in its own process; one dict per case (``error`` on failure)."""
    rows = []
    for name, path, n, mode, span in found:
        result = measure(path, n, mode, span)
        rows.append({"clip": name, "n": n, "mode": mode, "span": span, **result})
        if progress:
            progress(table(rows[-1:]).splitlines()[-1])
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: decode time, source frames decoded per second and peak memory."""
    header = (
        "clip",
        "frames asked",
        "decoder",
        "s",
        "source frames",
        "source frames/s",
        "peak RSS MB",
        "RSS over imports MB",
    )
    body = []
    for row in rows:
        label = (
            row["mode"] if row["span"] is None else f"{row['mode']} (first {row['span']:g} s only)"
        )
        asked = "all" if row["n"] is None else str(row["n"])
        if "error" in row:
            body.append([row["clip"], asked, label, f"error: {row['error']}", "", "", "", ""])
            continue
        body.append(
            [
                row["clip"],
                asked,
                label,
                f"{row['seconds']:.3f}",
                row["spanned"],
                f"{row['spanned'] / row['seconds']:.0f}",
                f"{row['peak_mb']:.0f}",
                f"{row['extra_mb']:.0f}",
            ]
        )
    return markdown_table(header, body)


def main(argv: list[str] | None = None) -> int:
    if serve_worker(argv, _worker):
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=REPO.parent / "shared/fixtures/videos")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the 1080p clip")
    parser.add_argument(
        "--pv-seconds", type=float, default=2.0, help="pytorchvideo span, long clip"
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "hartutor-bench"
    )
    parser.add_argument("--skip-long", action="store_true", help="fixtures only")
    args = parser.parse_args(argv)
    if not args.fixtures.is_dir():
        print(f"(fixtures absent: {args.fixtures})", file=sys.stderr)
    found = cases(
        args.fixtures,
        seconds=None if args.skip_long else args.seconds,
        pv_seconds=args.pv_seconds,
        workdir=args.workdir,
    )
    print(table(measure_all(found)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
