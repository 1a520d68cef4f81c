"""The notebook cells' pretrained path, exercised on stand-in weights served as a mirror.

Real weights cannot be downloaded here; ``hartutor.standins`` writes files in their real
formats (random values) and ``HARTUTOR_MIRROR`` points ``hartutor weights download`` at them.
Random weights say nothing about accuracy, so this checks shapes and the flow only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hartutor  # noqa: F401  (compatibility shim first)
from hartutor import standins
from hartutor.errors import WeightsError
from hartutor.pretrained_explain import (
    PRETRAINED_STREAMS,
    explain_pretrained,
    how_to_get,
    missing_weights,
)
from hartutor.weights import mirror as mirror_module

ROOT = Path(__file__).resolve().parents[1]
_CLI = (sys.executable, "-m", "hartutor")


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    from hartutor.synth import render_clip
    from hartutor.video import write_video

    frames = render_clip("raise_arms", 0, num_frames=24, size=(120, 160)).frames
    return write_video(tmp_path / "clip.avi", frames, 25)


def test_missing_weights_say_how_to_get_them(clip: Path):
    assert missing_weights() == list(PRETRAINED_STREAMS.values())
    with pytest.raises(WeightsError, match="hartutor weights download"):
        explain_pretrained(clip)
    assert how_to_get().split()[:3] == ["hartutor", "weights", "download"]


def test_binder_postbuild_downloads_the_weights_the_cells_use():
    post = (ROOT / "binder" / "postBuild").read_text()
    line = next(x for x in post.splitlines() if x.startswith("hartutor weights download"))
    assert line.split()[3:] == [*PRETRAINED_STREAMS.values(), "--quiet"]


def test_pretrained_streams_on_standins_give_top5_and_attributions(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    mirror = standins.write_mirror(tmp_path / "mirror", weights=PRETRAINED_STREAMS.values())
    with standins.serve(mirror) as server:
        env = {
            **os.environ,
            "HARTUTOR_MIRROR": server.url,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        done = subprocess.run(
            [*_CLI, "weights", "download", *PRETRAINED_STREAMS.values(), "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert done.returncode == 0, done.stderr
    monkeypatch.delenv(mirror_module.MIRROR_VARIABLE, raising=False)
    mirror_module.clear_cache()
    assert missing_weights() == []
    inputs = {"i3d": (8, 64), "xception": (1, 96)}
    result = explain_pretrained(clip, inputs=inputs, top=5)
    assert result.standins == {"i3d": True, "xception": True}
    assert [len(v) for v in result.top.values()] == [5, 5]
    for stream, (frames, side) in inputs.items():
        a = result.attributions[stream]
        assert tuple(a.maps["video"].shape) == (3, frames, side, side)
        assert np.isfinite(a.reduced()).all() and a.reduced().sum() > 0
        probabilities = [p for _, p in result.top[stream]]
        assert probabilities == sorted(probabilities, reverse=True)
        assert a.target == _label_index(result.weights[stream], result.top[stream][0][0])
    assert "stand-in weights" in result.markdown()


def _label_index(name: str, label: str) -> int:
    from hartutor.weights import get_weights

    return get_weights(name).categories().index(label)
