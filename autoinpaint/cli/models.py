"""``autoinpaint models list|download|verify`` and ``autoinpaint cache info|clear``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .. import checkpoints
from ..errors import ModelMissingError

_EPILOG = "Exit codes: 0 ok; 2 bad input or usage; 3 checkpoint missing or corrupt; 1 unexpected."
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


@click.group(epilog=_EPILOG)
def models() -> None:
    """Known SAM checkpoints: list, download, verify."""


@models.command("list", epilog=_EPILOG)
@_json_option
def list_models(as_json: bool) -> None:
    """List the known SAM checkpoints, their size, SHA-256 and where they are installed."""
    rows = checkpoints.status()
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        where = r["path"] or "not installed"
        click.echo(f"{r['name']:6} {r['file']:22} {_mb(r['size']):>9}  sha256 {r['sha256']}\n"
                   f"       {r['description']}; {where}")


@models.command(epilog=_EPILOG)
@click.argument("name", type=click.Choice(list(checkpoints.KNOWN)), metavar="NAME")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Target directory (default: $AUTOINPAINT_HOME/checkpoints, else ./checkpoints).")
@click.option("--url", default=None, help="Download from this mirror instead of the official URL.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@_json_option
def download(name: str, directory: str | None, url: str | None, quiet: bool,
             as_json: bool) -> None:
    """Download checkpoint NAME: resumable, SHA-256 verified, renamed into place when complete."""
    path = checkpoints.download(name, Path(directory) if directory else None, url=url,
                                progress=not (quiet or as_json))
    if as_json:
        click.echo(json.dumps({"name": name, "path": str(path), "verified": True}))
    else:
        click.echo(f"{name}: {path} (verified)")


@models.command(epilog=_EPILOG)
@click.argument("names", nargs=-1, type=click.Choice(list(checkpoints.KNOWN)), metavar="[NAMES]...")
@_json_option
def verify(names: tuple[str, ...], as_json: bool) -> None:
    """Check size and SHA-256 of the installed checkpoints (NAMES, default all installed).
    Exit 3 when one asked for is missing or any checked one is corrupt."""
    rows = []
    for ckpt in (checkpoints.known(n) for n in names or checkpoints.KNOWN):
        path = checkpoints.find_checkpoint(ckpt.name)
        if path is None and not names:
            continue
        problem = checkpoints.verify(path, ckpt) if path else "missing"
        rows.append({"name": ckpt.name, "path": str(path) if path else None, "ok": problem is None,
                     "problem": problem})
    if as_json:
        click.echo(json.dumps(rows))
    else:
        for r in rows:
            click.echo(f"{r['name']}: {'ok' if r['ok'] else r['problem']} "
                       f"({r['path'] or 'not installed'})")
        if not rows:
            click.echo("no SAM checkpoint installed; get one with: autoinpaint models download vit_b")
    bad = [r for r in rows if not r["ok"]]
    if bad:
        raise ModelMissingError(f"{bad[0]['name']}: {bad[0]['problem']}; fix it with: "
                                f"autoinpaint models download {bad[0]['name']}")


@click.group(epilog=_EPILOG)
def cache() -> None:
    """SAM embedding cache: info, clear (a repeat click on a photo skips the encoder)."""


@cache.command(epilog=_EPILOG)
@_json_option
def info(as_json: bool) -> None:
    """Where the cache is, how many entries and bytes it holds, and its bound."""
    from ..segment.embedding_cache import EmbeddingCache

    record = EmbeddingCache().info()
    click.echo(json.dumps(record) if as_json else
               f"{record['directory']}: {record['entries']} entries, {_mb(record['bytes'])} "
               f"(bound {_mb(record['max_bytes'])}, $AUTOINPAINT_CACHE_MAX_MB)")


@cache.command(epilog=_EPILOG)
@_json_option
def clear(as_json: bool) -> None:
    """Delete every cached SAM embedding and checkpoint head."""
    from ..segment.embedding_cache import EmbeddingCache

    store = EmbeddingCache()
    files, size = store.clear()
    click.echo(json.dumps({"directory": str(store.directory), "removed": files, "bytes": size})
               if as_json else f"removed {files} entries ({_mb(size)}) from {store.directory}")
