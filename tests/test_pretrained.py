"""Every weights entry of the registry loads end to end into the model it names.

No real checkpoint can be downloaded here, so each test writes weights generated from a
randomised hartutor model in the entry's own on-disk format (piergiaj's old PyTorch pickle,
DeepMind's TF checkpoint, timm's state dict), then loads them through ``load_pretrained`` with the
registry entry, exactly as a user with the real file would, and checks every tensor arrived.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from hartutor.models import build_model
from hartutor.models.i3d import i3d_state_dict_to_tf, tf_variable_name_to_key
from hartutor.standins import randomised
from hartutor.weights import RemoteFile, get_weights, list_weights, load_pretrained
from hartutor.weights.tf_checkpoint import read_tf_checkpoint_index, write_tf_checkpoint


def _without_hashes(entry):
    """The entry with the real files' hashes removed: our generated files differ from them."""
    files = tuple(RemoteFile(f.url, f.filename, subdir=f.subdir) for f in entry.files)
    return dataclasses.replace(entry, files=files)


def _entries(fmt: str) -> list[str]:
    return [name for name in list_weights() if get_weights(name).format == fmt]


def _assert_same_weights(loaded: torch.nn.Module, source: torch.nn.Module) -> None:
    got = loaded.state_dict()
    for key, value in source.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        assert torch.equal(got[key], value), key


@pytest.mark.parametrize("name", _entries("torch_state_dict"))
def test_piergiaj_entries_load_old_pytorch_files(name: str, tmp_path: Path):
    entry = get_weights(name)
    source = randomised(build_model(entry.model, **entry.model_kwargs), seed=1)
    old_style = {
        k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")
    }
    path = tmp_path / entry.files[0].filename
    torch.save(old_style, path, _use_new_zipfile_serialization=False)  # as PyTorch 0.3 did
    loaded = load_pretrained(_without_hashes(entry), path=path)
    _assert_same_weights(loaded, source)
    assert not loaded.training


@pytest.mark.parametrize("name", _entries("tf_checkpoint"))
def test_deepmind_entries_load_tf_checkpoints(name: str, tmp_path: Path):
    entry = get_weights(name)
    source = randomised(build_model(entry.model, **entry.model_kwargs), seed=2)
    scope = entry.tf_scope if entry.tf_scope is not None else ""
    variables = i3d_state_dict_to_tf(source.state_dict(), scope=scope)
    variables[f"{scope}global_step"] = np.array(123, dtype=np.int64)
    prefix = write_tf_checkpoint(tmp_path / "model.ckpt", variables)
    loaded = load_pretrained(_without_hashes(entry), path=prefix)
    _assert_same_weights(loaded, source)
    if entry.num_params is not None:  # the TF checkpoint's trainable count, from the entry
        trainable = sum(
            v.size for k, v in variables.items() if "moving" not in k and "step" not in k
        )
        assert trainable == entry.num_params


def test_exported_names_are_deepminds_real_names(fixtures_dir: Path):
    real = read_tf_checkpoint_index(fixtures_dir / "checkpoints" / "rgb_imagenet.index")
    model = build_model("i3d", preset="paper", num_classes=400, in_channels=3)
    exported = i3d_state_dict_to_tf(model.state_dict(), scope="RGB/inception_i3d/")
    assert set(exported) == set(real)
    for name, entry in real.items():
        assert exported[name].shape == tuple(entry.shape), name
        assert tf_variable_name_to_key(name) is not None


def test_export_refuses_a_batchnorm_scale_tf_cannot_hold():
    model = build_model("i3d", preset="tiny", num_classes=5)
    with torch.no_grad():
        model.state_dict()["Conv3d_1a_7x7.bn.weight"].fill_(2.0)
    with pytest.raises(Exception, match="BatchNorm scale"):
        i3d_state_dict_to_tf(model.state_dict())


@pytest.mark.parametrize("name", _entries("timm_state_dict"))
def test_timm_entries_load_into_the_frame_stream(name: str, tmp_path: Path):
    import timm

    entry = get_weights(name)
    source = randomised(
        timm.create_model(
            entry.meta.get("timm_model", "legacy_xception"),
            pretrained=False,
            num_classes=entry.num_classes,
        ),
        3,
    )
    path = tmp_path / entry.files[0].filename
    torch.save(source.state_dict(), path)
    loaded = load_pretrained(_without_hashes(entry), path=path)  # builds hartutor's stream
    flat = {k.split("backbone.", 1)[-1]: v for k, v in loaded.state_dict().items()}
    for key, value in source.state_dict().items():
        assert torch.equal(flat[key], value), key
    frame = torch.rand(1, 3, 71, 71)
    torch.testing.assert_close(loaded.backbone(frame), source.eval()(frame))
    assert loaded(frame[:, :, None].expand(1, 3, 2, 71, 71)).shape == (1, entry.num_classes)
