"""Notices on stderr through ``logging`` (logger ``autoinpaint``).

Stages call :func:`notice` ("segmenter auto -> classical ..."); whoever runs them decides whether
they are shown. The CLI calls :func:`configure` (``-q`` / ``--json`` set ``quiet``); a library user
configures the ``autoinpaint`` logger like any other (nothing is printed by default).
"""
from __future__ import annotations

import logging
import sys

logger = logging.getLogger("autoinpaint")


class _StderrHandler(logging.Handler):
    """Writes ``autoinpaint: MESSAGE`` to the *current* ``sys.stderr`` (so capture and redirection work)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(f"autoinpaint: {record.getMessage()}", file=sys.stderr)
        except Exception:  # noqa: BLE001 - a notice must never break an edit
            self.handleError(record)


def configure(quiet: bool = False) -> None:
    """Show notices on stderr (INFO and up), or only errors when ``quiet``; idempotent."""
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.ERROR if quiet else logging.INFO)
    logger.propagate = False


def notice(message: str) -> None:
    """A one-line note for the user (model choice, fallbacks, downloads)."""
    logger.info(message)


def warning(message: str) -> None:
    """Something the user should look at (shown unless quiet)."""
    logger.warning(message)
