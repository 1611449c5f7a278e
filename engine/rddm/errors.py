"""Errors a user can see: each one carries a one-line, readable message."""

from __future__ import annotations


class RddmError(Exception):
    """Base of every error rddm reports to a user (CLI line or HTTP JSON)."""


class InputError(RddmError):
    """A file given to rddm cannot be used (missing, not a file, unreadable)."""


class NotRawError(InputError):
    """The file is not a camera RAW that LibRaw recognises."""


class CorruptRawError(InputError):
    """The file looks like a RAW but its data is truncated or damaged."""


class UnsupportedSensorError(InputError):
    """The RAW is valid but its sensor layout is not a 2x2 Bayer (X-Trans, Foveon, ...)."""


class LinearRawError(UnsupportedSensorError):
    """The file is already demosaiced (a LinearRaw DNG or similar): there is no mosaic to restore."""


class OutputError(RddmError):
    """An output cannot be written (exists already, directory missing, not writable)."""
