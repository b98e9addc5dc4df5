"""User-facing errors.

A :class:`QuartetError` carries a message that names the thing that is wrong and what to do about it. The CLI prints
it without a traceback and exits with status 2; library callers can catch it like any other exception.
"""

from __future__ import annotations


class QuartetError(RuntimeError):
    """An error caused by the user's input or environment (bad config, missing file, corrupt data)."""


class SourceMissingError(QuartetError):
    """A data source (system package, npm package, file) is not installed; the message says how to install it."""


class DataCorruptError(QuartetError):
    """A data file exists but its content is invalid (truncated shard, bad checksum, NaN values)."""
