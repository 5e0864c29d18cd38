"""Errors with the exit code the CLI maps them to.

Exit codes: 0 ok; 2 bad input or usage; 3 a model or checkpoint is missing; 1 anything unexpected.
"""
from __future__ import annotations


class AutoinpaintError(Exception):
    """Base class: an expected failure with a one-line message and an exit code."""

    exit_code = 1


class InputError(AutoinpaintError, ValueError):
    """Bad input or usage: unreadable image, coordinates outside the image, empty mask, ..."""

    exit_code = 2


class TooLargeError(InputError):
    """Bad input because it is too big: too many bytes or pixels (a decompression bomb). HTTP 413."""


class NotFoundError(InputError):
    """A text prompt (``--text``) matched nothing in the image: an answer, not a crash (exit 2; a
    batch row gets the status ``not_found``). The message names the phrases and the best score."""


class ModelMissingError(AutoinpaintError):
    """A model or checkpoint is missing or unusable; the message says how to get it."""

    exit_code = 3


class ModelRuntimeError(AutoinpaintError):
    """A model failed while running (e.g. out of memory); the message says what to do."""

    exit_code = 1


class StorageError(AutoinpaintError):
    """A file store or object store failed (network, service error); the message names the file."""

    exit_code = 1
