"""The ``autoinpaint`` command: a thin click layer over ``autoinpaint.api``.

Exit codes: 0 ok; 2 bad input or usage (or --on-doubt fail); 3 a model or checkpoint is missing; 4 skipped
because the mask was in doubt (--on-doubt skip); 1 anything unexpected.
"""
from __future__ import annotations

import os
import sys

import click

EXIT_CODES_HELP = ("Exit codes: 0 ok; 2 bad input or usage (or a mask in doubt with --on-doubt fail); 3 a model "
                   "or checkpoint is missing (the message says how to get it); 4 skipped: the mask was in doubt "
                   "(--on-doubt skip); 1 anything unexpected.")


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
    from ..errors import AutoinpaintError

    try:
        code = main.main(args=argv, standalone_mode=False, prog_name="autoinpaint")
        if isinstance(code, int) and code:  # a command ended with click.exceptions.Exit(code), e.g. 4
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # usage errors: bad option, missing argument, bad value
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(2 if isinstance(exc, click.UsageError) or exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Error: aborted", err=True)
        sys.exit(1)
    except AutoinpaintError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Error: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        if os.environ.get("AUTOINPAINT_DEBUG"):
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        click.echo(f"Error: unexpected {type(exc).__name__}: {msg} (set AUTOINPAINT_DEBUG=1 for a traceback)",
                   err=True)
        sys.exit(1)
    sys.exit(0)
