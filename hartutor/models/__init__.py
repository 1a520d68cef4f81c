"""The models of the HAR timeline; each family in its own module, builders in a registry."""

from __future__ import annotations

# Importing each family's module registers its builders.
from hartutor.models import c3d, frame, fusion, i3d, res3d, t3d, two_stream, xception  # noqa: F401
from hartutor.models.registry import build_model, get_model_builder, list_models, register_model

__all__ = ["build_model", "get_model_builder", "list_models", "register_model"]
