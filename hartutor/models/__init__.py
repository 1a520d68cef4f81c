"""The models of the HAR timeline; each family in its own module, builders in a registry."""

from __future__ import annotations

# Importing each family's module registers its builders.
from hartutor.models import (  # noqa: F401
    c3d,
    conv_fusion,
    frame,
    fusion,
    i3d,
    karpathy,
    res3d,
    t3d,
    tsn,
    two_stream,
    xception,
)
from hartutor.models.registry import build_model, get_model_builder, list_models, register_model

__all__ = ["build_model", "get_model_builder", "list_models", "register_model"]
