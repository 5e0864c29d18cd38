"""Errors with the exit code the CLI maps them to, and the table of every exit code.

:data:`EXIT_CODES` is the one table (README "Exit codes" shows the same codes, in this order); every
``sys.exit`` and every ``exit_code`` of the package uses these names.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_INPUT = 2
EXIT_MODEL_MISSING = 3
EXIT_SKIPPED = 4
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "ok",
    EXIT_INPUT: "bad input or usage",
    EXIT_MODEL_MISSING: "a model or checkpoint is missing",
    EXIT_SKIPPED: "skipped: the mask is in doubt",
    EXIT_INTERRUPTED: "interrupted",
    EXIT_UNEXPECTED: "anything unexpected",
}


def exit_codes_help(notes: dict[int, str] | None = None, codes: tuple[int, ...] | None = None) -> str:
    """A command's help epilog: ``Exit codes: 0 ok; 2 bad input or usage (NOTE); ...`` for ``codes``
    (default: all, in table order), each followed by its note from ``notes`` in brackets."""
    notes = notes or {}
    return "Exit codes: " + "; ".join(f"{code} {EXIT_CODES[code]}" + (f" ({notes[code]})" if code in notes else "")
                                      for code in (codes or EXIT_CODES)) + "."


class AutoinpaintError(Exception):
    """Base class: an expected failure with a one-line message and an exit code."""

    exit_code = EXIT_UNEXPECTED


class InputError(AutoinpaintError, ValueError):
    """Bad input or usage: unreadable image, coordinates outside the image, empty mask, ..."""

    exit_code = EXIT_INPUT


class TooLargeError(InputError):
    """Bad input because it is too big: too many bytes or pixels (a decompression bomb). HTTP 413."""


class NotFoundError(InputError):
    """A text prompt (``--text``) matched nothing in the image: an answer, not a crash (exit 2; a
    batch row gets the status ``not_found``). The message names the phrases and the best score."""


class ModelMissingError(AutoinpaintError):
    """A model or checkpoint is missing or unusable; the message says how to get it."""

    exit_code = EXIT_MODEL_MISSING


class ModelRuntimeError(AutoinpaintError):
    """A model failed while running (e.g. out of memory); the message says what to do."""


class StorageError(AutoinpaintError):
    """A file store or object store failed (network, service error); the message names the file."""
