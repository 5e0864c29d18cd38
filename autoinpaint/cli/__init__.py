"""The ``autoinpaint`` command: a thin click layer over ``autoinpaint.api``.

Exit codes: :data:`autoinpaint.errors.EXIT_CODES`.
"""
from __future__ import annotations

import os
import sys

import click

from ..errors import (EXIT_INPUT, EXIT_INTERRUPTED, EXIT_MODEL_MISSING, EXIT_OK, EXIT_SKIPPED, EXIT_UNEXPECTED,
                      AutoinpaintError, exit_codes_help)

EXIT_CODES_HELP = exit_codes_help({EXIT_INPUT: "or a mask in doubt with --on-doubt fail",
                                   EXIT_MODEL_MISSING: "the message says how to get it",
                                   EXIT_SKIPPED: "--on-doubt skip", EXIT_INTERRUPTED: "Ctrl+C"})


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"],
                                                       "max_content_width": 100})
@click.version_option(package_name="autoinpaint")
def main() -> None:
    """Point at an object in a photo: it is gone (remove), or replaced by what you describe.

    \b
    autoinpaint remove photo.jpg --point 412,300 -o clean.jpg
    autoinpaint mask photo.jpg --point 412,300 --box 300,200,520,420 -o mask.png
    autoinpaint background shoe.jpg --point 410,300 --canvas square --margin 8 -o shoe.white.jpg
    """


# Each command lives in its own module; heavy libraries are imported inside the commands.
from .background import background  # noqa: E402
from .batch import batch  # noqa: E402
from .edit import mask, remove  # noqa: E402
from .models import cache, models  # noqa: E402
from .replace import fill, replace  # noqa: E402
from .serve import serve  # noqa: E402

for _command in (remove, replace, fill, mask, background, batch, models, cache, serve):
    main.add_command(_command)


def run(argv: list[str] | None = None) -> None:
    """Entry point: run ``main`` and turn every failure into one ``Error: ...`` line and an exit code."""
    try:
        code = main.main(args=argv, standalone_mode=False, prog_name="autoinpaint")
        if isinstance(code, int) and code:  # a command ended with click.exceptions.Exit(code): EXIT_SKIPPED
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # usage errors: bad option, missing argument, bad value
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(EXIT_INPUT if isinstance(exc, click.UsageError) or exc.exit_code == EXIT_INPUT else exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Error: aborted", err=True)
        sys.exit(EXIT_UNEXPECTED)
    except AutoinpaintError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        if os.environ.get("AUTOINPAINT_DEBUG"):
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        click.echo(f"Error: unexpected {type(exc).__name__}: {msg} (set AUTOINPAINT_DEBUG=1 for a traceback)",
                   err=True)
        sys.exit(EXIT_UNEXPECTED)
    sys.exit(EXIT_OK)
