"""How a DeepMind I3D TensorFlow checkpoint maps onto hartutor's I3D, variable by variable.

:func:`match_tf_checkpoint` reads only a checkpoint's ``.index`` (names, dtypes, shapes) with
:func:`~hartutor.weights.tf_checkpoint.read_tf_checkpoint_index` and applies I3D's name rules
(:func:`hartutor.models.i3d.tf_variable_name_to_key`): notebook 05 shows that the mapping is
one to one before any weight is loaded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hartutor.weights.tf_checkpoint import read_tf_checkpoint_index

__all__ = ["CheckpointMatch", "VariableMatch", "match_tf_checkpoint"]


@dataclass(frozen=True)
class VariableMatch:
    """One TF checkpoint variable and the model tensor it fills."""

    tf_name: str
    tf_shape: tuple[int, ...]
    key: str | None  # None: no rule maps it
    shape: tuple[int, ...] | None  # the model tensor's shape (PyTorch layout)

    @property
    def fits(self) -> bool:
        """Same number of elements in the same arrangement (TF conv kernels are
        (T, H, W, C_in, C_out), PyTorch's (C_out, C_in, T, H, W))."""
        if self.key is None or self.shape is None:
            return False
        shape = self.tf_shape
        if self.key.endswith("conv3d.weight") and len(shape) == 5:
            shape = (shape[4], shape[3], shape[0], shape[1], shape[2])
        return tuple(shape) == tuple(self.shape)


@dataclass(frozen=True)
class CheckpointMatch:
    """How the variables of a DeepMind I3D TF checkpoint map onto an :class:`InceptionI3d`."""

    rows: tuple[VariableMatch, ...]
    unmapped: tuple[str, ...]  # TF variables no rule maps (bookkeeping ones excluded)
    duplicates: tuple[str, ...]  # model keys filled by more than one TF variable
    uncovered: tuple[str, ...]  # model tensors no TF variable fills (frozen BN scales aside)
    tf_trained_elements: int  # elements of the TF variables that training updates
    model_trainable: int  # trainable parameters of the model

    @property
    def one_to_one(self) -> bool:
        return (
            not self.unmapped
            and not self.duplicates
            and not self.uncovered
            and all(r.fits for r in self.rows)
            and self.tf_trained_elements == self.model_trainable
        )


def match_tf_checkpoint(index_path: str | Path, model: nn.Module | None = None) -> CheckpointMatch:
    """Map every variable of a DeepMind I3D checkpoint index onto ``model``'s tensors.

    Reads only the ``.index`` file (names, dtypes, shapes; no weights). ``model`` defaults
    to the paper I3D with the index's number of classes and input channels, built on
    ``meta``. Moving averages (``moving_mean``/``moving_variance``) fill BatchNorm buffers;
    every other variable is trained, and their total must equal the model's trainable
    parameters.
    """
    from hartutor.models.i3d import InceptionI3d, is_non_model_tf_variable, tf_variable_name_to_key

    entries = read_tf_checkpoint_index(index_path)
    if model is None:
        logits = next(
            (e for n, e in entries.items() if n.endswith("Logits/Conv3d_0c_1x1/conv_3d/b")), None
        )
        stem = next((e for n, e in entries.items() if n.endswith("Conv3d_1a_7x7/conv_3d/w")), None)
        if logits is None or stem is None:
            from hartutor.params import TableError  # the error this function always raised

            raise TableError(f"{index_path} is not a DeepMind I3D checkpoint (no logits/stem)")
        with torch.device("meta"):
            model = InceptionI3d(num_classes=logits.shape[0], in_channels=stem.shape[3])
    state = model.state_dict()
    rows, unmapped, filled = [], [], Counter()
    trained = 0
    for name in sorted(entries):
        entry = entries[name]
        key = tf_variable_name_to_key(name)
        if key is None:
            if not is_non_model_tf_variable(name):
                unmapped.append(name)
            continue
        filled[key] += 1
        rows.append(
            VariableMatch(
                name,
                tuple(entry.shape),
                key,
                tuple(state[key].shape) if key in state else None,
            )
        )
        if "moving_" not in name:
            trained += entry.num_elements
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    uncovered = sorted(
        k
        for k in state
        if k not in filled
        and not k.endswith("num_batches_tracked")
        and (k in trainable or not k.endswith("bn.weight"))
    )
    return CheckpointMatch(
        tuple(rows),
        tuple(unmapped),
        tuple(sorted(k for k, n in filled.items() if n > 1)),
        tuple(uncovered),
        trained,
        sum(p.numel() for p in model.parameters() if p.requires_grad),
    )
