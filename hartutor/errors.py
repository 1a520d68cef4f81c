"""Exceptions a hartutor user can meet, each naming the file or value and what to do."""

from __future__ import annotations


class HartutorError(Exception):
    """Base class of every error hartutor raises on purpose."""


class VideoDecodeError(HartutorError, ValueError):
    """A video could not be read as asked: missing, not a video, truncated, too short..."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read video {self.path!r}: {reason}")


class VideoEncodeError(HartutorError, RuntimeError):
    """Frames could not be written to a video file."""


class WeightsError(HartutorError, RuntimeError):
    """Pretrained weights are missing, corrupt, or do not fit the model."""


class DataError(HartutorError, RuntimeError):
    """A dataset is missing or laid out differently from what was expected."""


class ModelError(HartutorError, ValueError):
    """A model was built or called with a value it cannot use (shape, option, preset)."""


class ArgumentError(HartutorError, ValueError):
    """A value given to a function or the CLI is out of its accepted range."""


class OutputError(HartutorError, RuntimeError):
    """A file or folder cannot be written where the user asked (a folder, read-only, full)."""


class UnknownNameError(HartutorError, KeyError):
    """A name (model, weights entry) that hartutor does not know; the message lists the known."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""
