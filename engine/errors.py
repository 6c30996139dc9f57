"""Domain exceptions: each message names the file or setting and what a user can do about it."""

from __future__ import annotations


class CmdsrError(Exception):
    """Base class for every error CMDSR Studio reports to a user."""


class CheckpointError(CmdsrError):
    """A model file cannot be used (unreadable, not a CMDSR network, unsafe, wrong shapes)."""


class ImageReadError(CmdsrError):
    """An image file cannot be decoded (missing, empty, truncated, mislabelled, too large)."""


class ImageWriteError(CmdsrError):
    """An output image cannot be written (exists, disk full, unsupported format)."""


class SupportRegionError(CmdsrError):
    """A user-chosen support region cannot provide patches (too small, outside the image)."""


class ConfigError(CmdsrError, ValueError):
    """A configuration value or file is invalid."""


class CancelledError(CmdsrError):
    """Long work was stopped because the user asked for it."""
