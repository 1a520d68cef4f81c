"""Decode speed and peak memory of hartutor.video.read_video beside pytorchvideo's PyAV decoder.

Each measurement runs in a fresh Python process, so its peak RSS (``ru_maxrss``) is its own.
Inputs: the real clips in ../shared/fixtures/videos (when present) and a generated 1080p clip
(60 s at 30 fps by default, H.264, a keyframe every 2 s) sampled to 16 frames.

    python benchmarks/bench_video.py                  # prints a markdown table
    python benchmarks/bench_video.py --seconds 20 --pv-seconds 1

pytorchvideo's ``EncodedVideo.get_clip`` decodes every frame of the span into a float tensor
before any subsampling, so on the long 1080p clip it is run on the first ``--pv-seconds`` only
(all 60 s would need tens of GB); the table says so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Run in a child process; prints one JSON line. {path}, {n}, {mode}, {span} are filled in.
CHILD = r"""
import json, resource, time
import hartutor
import torch
from hartutor.video import read_video, probe_video
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
path, n, mode, span = {path!r}, {n!r}, {mode!r}, {span!r}
info = probe_video(path)
if not mode.startswith("hartutor"):  # import outside the timed part
    from pytorchvideo.data.encoded_video import EncodedVideo
    from pytorchvideo.transforms import UniformTemporalSubsample
t = time.perf_counter()
if mode.startswith("hartutor"):
    video = read_video(path, num_frames=n, seek=(mode != "hartutor-noseek"))
    frames, spanned = video.frames, info.num_frames
else:
    end = info.duration if span is None else min(span, info.duration)
    clip = EncodedVideo.from_path(path, decoder="pyav", decode_audio=False).get_clip(0, end)
    frames = clip["video"]  # (C, T, H, W) float32
    spanned = frames.shape[1]
    if n is not None:
        frames = UniformTemporalSubsample(n)(frames)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(seconds=seconds, spanned=int(spanned), returned=int(
    frames.shape[0] if mode.startswith("hartutor") else frames.shape[1]),
    peak_mb=peak / 1024, extra_mb=(peak - base) / 1024)))
"""


def measure(path: Path, n: int | None, mode: str, span: float | None) -> dict:
    code = CHILD.format(path=str(path), n=n, mode=mode, span=span)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


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


def main(argv: list[str] | None = None) -> int:
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

    cases: list[tuple[str, Path, int | None, str, float | None]] = []
    if args.fixtures.is_dir():
        for clip in sorted(args.fixtures.iterdir()):
            for n in (None, 16):
                cases.append((clip.name, clip, n, "hartutor", None))
                cases.append((clip.name, clip, n, "pytorchvideo", None))
    else:
        print(f"(fixtures absent: {args.fixtures})", file=sys.stderr)
    if not args.skip_long:
        args.workdir.mkdir(parents=True, exist_ok=True)
        long = make_long_clip(args.workdir / f"long_1080p_{args.seconds:g}s.mp4", args.seconds)
        name = f"1080p {args.seconds:g} s (generated)"
        cases.append((name, long, 16, "hartutor", None))
        cases.append((name, long, 16, "hartutor-noseek", None))
        cases.append((name, long, 16, "pytorchvideo", args.pv_seconds))

    print(
        "| clip | frames asked | decoder | s | source frames | source frames/s | peak RSS MB "
        "| RSS over imports MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, path, n, mode, span in cases:
        result = measure(path, n, mode, span)
        label = mode if span is None else f"{mode} (first {span:g} s only)"
        asked = "all" if n is None else str(n)
        if "error" in result:
            print(f"| {name} | {asked} | {label} | error: {result['error']} | | | | |")
            continue
        rate = result["spanned"] / result["seconds"]
        print(
            f"| {name} | {asked} | {label} | {result['seconds']:.3f} | {result['spanned']} "
            f"| {rate:.0f} | {result['peak_mb']:.0f} | {result['extra_mb']:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
