"""``autoinpaint models list|download|verify`` and ``autoinpaint cache info|clear``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import (EXIT_INPUT, EXIT_INTERRUPTED, EXIT_MODEL_MISSING, EXIT_OK, EXIT_UNEXPECTED, ModelMissingError,
                      exit_codes_help)
from ..models import checkpoints

_EPILOG = exit_codes_help({EXIT_MODEL_MISSING: "or corrupt"},
                          (EXIT_OK, EXIT_INPUT, EXIT_MODEL_MISSING, EXIT_INTERRUPTED, EXIT_UNEXPECTED))
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


@click.group(epilog=_EPILOG)
def models() -> None:
    """Known models (segmenters, inpainters, detectors, few-step LoRAs): list, download, verify."""


def _rows() -> list[dict]:
    """One JSON-friendly row per known model; file checkpoints add file, SHA-256 and URL."""
    from ..models.registry import known

    rows = []
    for m in known():
        scheme, _, ref = m.source.partition(":")
        row = {"name": m.name, "kind": m.kind, "family": m.family, "source": m.source, "size": m.size,
               "description": m.description, "path": m.location()}
        if scheme == "file":
            ckpt = checkpoints.known(ref)
            row.update(file=ckpt.filename, sha256=ckpt.sha256, url=ckpt.url)
        else:
            row["hub_id"] = ref
        row["present"] = row["path"] is not None
        rows.append(row)
    return rows


@models.command("list", epilog=_EPILOG)
@_json_option
def list_models(as_json: bool) -> None:
    """List the known models: kind, size, where they come from and whether they are present here."""
    rows = _rows()
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        where = r["path"] or "not present"
        origin = f"sha256 {r['sha256'][:16]}..." if "sha256" in r else f"hub {r['hub_id']}"
        click.echo(f"{r['name']:18} {r['kind']:9} {_mb(r['size']):>9}  {origin}\n"
                   f"{'':18} {r['description']}; {where}")


@models.command(epilog=_EPILOG)
@click.argument("name", metavar="NAME")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Target directory for checkpoint files (default: $AUTOINPAINT_HOME/checkpoints, else ./checkpoints).")
@click.option("--url", default=None, help="Download a checkpoint file from this mirror instead of the official URL.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@_json_option
def download(name: str, directory: str | None, url: str | None, quiet: bool,
             as_json: bool) -> None:
    """Download model NAME (see `models list`). Checkpoint files: resumable, SHA-256 verified, renamed into
    place when complete. Hub models: into the Hugging Face cache (safetensors and configs only)."""
    from ..errors import InputError
    from ..models.hub import download as hub_download
    from ..models.registry import known

    entry = next((m for m in known() if m.name == name), None)
    if entry is None:
        raise InputError(f"unknown model {name!r}: choose one of {', '.join(m.name for m in known())}")
    scheme, _, ref = entry.source.partition(":")
    if scheme == "file":
        path = checkpoints.download(ref, Path(directory) if directory else None, url=url,
                                    progress=not (quiet or as_json))
    else:
        path = hub_download(ref, progress=not (quiet or as_json))
    if as_json:
        click.echo(json.dumps({"name": name, "path": str(path), "verified": scheme == "file"}))
    else:
        click.echo(f"{name}: {path}" + (" (verified)" if scheme == "file" else ""))


@models.command(epilog=_EPILOG)
@click.argument("names", nargs=-1, metavar="[NAMES]...")
@_json_option
def verify(names: tuple[str, ...], as_json: bool) -> None:
    """Check size and SHA-256 of the installed checkpoints (NAMES, default all installed).
    Exit 3 when one asked for is missing or any checked one is corrupt."""
    rows = []
    for ckpt in (checkpoints.known(n) for n in names or checkpoints.KNOWN):  # checkpoint files
        path = checkpoints.find_checkpoint(ckpt.name)
        converted = checkpoints.find_weights(ckpt.name) if ckpt.converted else None
        if path is None and converted is not None:  # verified at download, converted, original removed
            rows.append({"name": ckpt.name, "path": str(converted), "ok": True, "problem": None,
                         "note": "safetensors conversion of the verified download; the original was removed"})
            continue
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
    from ..models.embedding_cache import EmbeddingCache

    record = EmbeddingCache().info()
    click.echo(json.dumps(record) if as_json else
               f"{record['directory']}: {record['entries']} entries, {_mb(record['bytes'])} "
               f"(bound {_mb(record['max_bytes'])}, $AUTOINPAINT_CACHE_MAX_MB)")


@cache.command(epilog=_EPILOG)
@_json_option
def clear(as_json: bool) -> None:
    """Delete every cached SAM embedding and checkpoint head."""
    from ..models.embedding_cache import EmbeddingCache

    store = EmbeddingCache()
    files, size = store.clear()
    click.echo(json.dumps({"directory": str(store.directory), "removed": files, "bytes": size})
               if as_json else f"removed {files} entries ({_mb(size)}) from {store.directory}")
