"""CPU speed for hartutor's models, applied by one explicit call: :func:`optimize`.

The model files of :mod:`hartutor.models` hold the architecture alone, as the papers draw it
(plus the TF SAME padding the checkpoints need). Everything that makes them fast on a CPU
lives here, in the spirit of pytorchvideo's ``accelerator/``: ``optimize(model)`` swaps each
layer it knows for a faster twin that computes the same function (:mod:`.modules`, built on
the tensor shortcuts of :mod:`.ops`):

- channels-last activations (and, for per-frame 2D backbones, weights) on a CPU;
- 3D convolutions kept on oneDNN for batch-1 clips, SAME padding without a padded copy;
- TF SAME max-pools without a padded copy, stride-1 ones one axis at a time in inference;
- eval-mode BatchNorm folded into the preceding convolution in I3D's units.

::

    model = hartutor.accel.optimize(build_model("i3d"))  # in place; returns the model

Outputs equal the plain model's up to float rounding, in eval and in training, gradients
included (``tests/test_accel.py`` checks every registered model). Parameters, buffers,
state-dict keys, hooks and the model's ``repr`` stay as they are, so checkpoints load either
way. ``optimize`` is idempotent, leaves modules it does not know as they are (a model added
later works, only not faster), and :func:`restore` undoes it. ``torch.compile``,
``torch.export`` and TorchScript tracing work on both: while a graph is traced the
shortcuts stand aside and the graph holds PyTorch's portable ops.

Callers opt in where speed matters: the CLI (``demo``, ``evaluate``, ``train``), training
(:func:`hartutor.train.fit`), the widgets, the demo, feature extraction
(:func:`hartutor.features.extract_features`), the benchmarks and notebook 09. Measured
effects of each shortcut: ``docs/benchmarks.md``.
"""

from __future__ import annotations

from torch import nn

from hartutor.accel import modules, ops
from hartutor.models import c3d, frame, i3d, karpathy, layers

__all__ = ["is_optimized", "modules", "ops", "optimize", "plain_class", "restore"]

ops.register_flop_formulas()

#: Plain hartutor class -> its faster twin (same parameters, same function).
FASTER: dict[type[nn.Module], type[nn.Module]] = {
    layers.SamePadConv3d: modules.SamePadConv3d,
    layers.SameMaxPool3d: modules.SameMaxPool3d,
    layers.Unit3D: modules.Unit3D,
    i3d.InceptionModule: modules.InceptionModule,
    frame.FrameClassifier: modules.FrameClassifier,
    frame.LRCN: modules.LRCN,
}

#: Models whose plain ``nn.Conv3d`` children become :class:`.modules.Conv3d`. Only these:
#: another library's model (torchvision's r3d_18, the benchmarks' rival) stays its own.
CONV3D_OWNERS: tuple[type[nn.Module], ...] = (c3d.C3D, karpathy.KarpathyConv)

_PLAIN: dict[type[nn.Module], type[nn.Module]] = {fast: plain for plain, fast in FASTER.items()} | {
    modules.Conv3d: nn.Conv3d
}


def optimize(model: nn.Module) -> nn.Module:
    """Make ``model`` (any hartutor model, a fusion, one of its streams) fast on a CPU, in place.

    Returns ``model`` itself, so ``model = optimize(build_model(...))`` reads naturally.
    Every submodule of a class in :data:`FASTER` becomes its twin, and the ``nn.Conv3d``
    children of the models in :data:`CONV3D_OWNERS` become :class:`.modules.Conv3d`; other
    modules are left as they are. Calling it twice changes nothing more.
    """
    for module in model.modules():
        fast = FASTER.get(type(module))
        if fast is not None:
            module.__class__ = fast
        if isinstance(module, CONV3D_OWNERS):
            for child in module.children():
                if type(child) is nn.Conv3d:
                    child.__class__ = modules.Conv3d
    return model


def restore(model: nn.Module) -> nn.Module:
    """Undo :func:`optimize` on ``model`` in place (and return it): every twin becomes its
    plain class again and weights stored channels-last go back to PyTorch's default layout."""
    for module in model.modules():
        plain = _PLAIN.get(type(module))
        if plain is None:
            continue
        if isinstance(module, frame.FrameClassifier | frame.LRCN):
            ops.match_weight_layout(module, channels_last=False)
        module.__class__ = plain
    return model


def plain_class(module: nn.Module) -> type[nn.Module]:
    """The class ``module`` has without :func:`optimize` (its own class if it has no twin):
    what names its architecture, e.g. in a cache key."""
    return _PLAIN.get(type(module), type(module))


def is_optimized(model: nn.Module) -> bool:
    """Whether any part of ``model`` runs :mod:`hartutor.accel`'s faster layers."""
    return any(type(module) in _PLAIN for module in model.modules())
