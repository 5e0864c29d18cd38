"""``autoinpaint serve``: the local web app. FastAPI and uvicorn are imported only when it runs."""
from __future__ import annotations

import click

from ..errors import EXIT_INPUT, EXIT_MODEL_MISSING, EXIT_OK, EXIT_UNEXPECTED, exit_codes_help
from .options import (detector_options, diffusion_options, mask_options, model_option, model_options, options_from,
                      schema_option)

DEFAULT_PORT = 8765


@click.command(epilog=exit_codes_help({EXIT_OK: "stopped, also by SIGTERM", EXIT_INPUT: "e.g. the port is taken"},
                                      (EXIT_OK, EXIT_INPUT, EXIT_MODEL_MISSING, EXIT_UNEXPECTED)))
@click.argument("folder", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Any address but a loopback one needs a token (generated "
                   "and printed unless --token is given).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port (0 = any free port).")
@click.option("--open/--no-open", "open_browser", default=True, show_default=True,
              help="Open the page in a web browser (only where a desktop session is found).")
@click.option("--token", default=None, metavar="TOKEN",
              help="Require this access token (default: none on 127.0.0.1, a generated one elsewhere).")
@click.option("--max-sessions", type=click.IntRange(min=1), default=8, show_default=True, metavar="N",
              help="Open photos kept; opening one more closes the least recently used (its page is told "
                   "to open it again).")
@click.option("--session-memory", type=click.IntRange(min=1), default=2048, show_default=True, metavar="MB",
              help="Bound on what all open photos hold (pixels, masks, results, display copies), in MiB "
                   "(least recently used closed first).")
@click.option("--model-memory", type=click.IntRange(min=0), default=None, metavar="MB",
              help="Bound on the loaded models the server keeps, in MiB (least recently used dropped first; "
                   "the newest is always kept). Default: $AUTOINPAINT_MODEL_MEMORY, else half the memory.")
@click.option("--max-jobs", type=click.IntRange(min=1), default=32, show_default=True, metavar="N",
              help="Edit jobs kept (queued, running or finished); past it a new edit gets 429 with Retry-After.")
@click.option("--edit-workers", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Edits run at once (the rest wait in the queue); clicks are not limited by it.")
@model_options
@detector_options
@mask_options
@model_option
@diffusion_options
@schema_option("quiet", "-q", "--quiet")
def serve(folder: str | None, host: str, port: int, open_browser: bool, token: str | None, max_sessions: int,
          session_memory: int, model_memory: int | None, max_jobs: int, edit_workers: int, **kw) -> None:
    """Open the point-and-click page: click the object, watch the mask, remove or replace it.

    With FOLDER the page lists its photos and saves results beside them (photo.inpainted.jpg,
    never over an existing file); without, photos are uploaded. Model options set the defaults;
    the page shows which segmenter and inpainter are in use. SIGTERM or Ctrl+C stops it cleanly:
    running edits get a few seconds to finish, then are cancelled; exit code 0.

    \b
    autoinpaint serve samples/
    autoinpaint serve ~/Pictures --host 0.0.0.0 --port 8080   # prints a URL with ?token=...
    """
    from ..log import configure
    from ..server.security import generate_token, is_loopback

    options = options_from(kw)
    configure(quiet=options.quiet)
    if token is None and not is_loopback(host):
        token = generate_token()
    sock = _bind(host, port)
    actual = sock.getsockname()[1]
    from ..server.app import create_app  # imports FastAPI
    from ..server.config import Limits

    limits = Limits(max_sessions=max_sessions, max_session_bytes=session_memory * 2**20, max_jobs=max_jobs,
                    workers=edit_workers, model_memory=None if model_memory is None else model_memory * 2**20)
    app = create_app(folder, options, token=token, limits=limits)
    name = f"[{host}]" if ":" in host else host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else name
    url = f"http://{shown}:{actual}/" + (f"?token={token}" if token else "")
    click.echo(f"autoinpaint serve: {url}", err=True)
    if token and not is_loopback(host):
        click.echo(f"  listening on {host}: every request needs the token; open the URL above "
                   f"(it sets a cookie) or send 'Authorization: Bearer {token}'", err=True)
    info = app.state.context.info
    click.echo(f"  segmenter: {info['segmenter_spec']}  inpainter: {info['inpainter']}"
               f"  replace/fill model: {info['model']}" + (f"  folder: {folder}" if folder else ""), err=True)
    if info.get("hint"):
        click.echo(f"  {info['hint']}", err=True)
    click.echo("  press Ctrl+C to stop", err=True)
    if open_browser:
        _open_later(url)
    _run(app, sock, options.quiet)


def _bind(host: str, port: int):
    """A listening socket (so a taken port is a clear error before anything loads)."""
    import socket

    from ..errors import InputError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: without it every response waits ~40 ms for a delayed ACK
    # (Nagle), measured 48 ms vs 1.5 ms per request here; uvicorn sets it only on sockets it binds
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                         f"(pick another with --port, or --port 0 for any free one)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _run(app, sock, quiet: bool) -> None:
    """Serve until SIGINT / SIGTERM. Uploads spill (over 1 MB) into a private temporary folder that is
    removed at exit; SIGTERM is a normal stop (exit 0), not re-raised as uvicorn does by default."""
    import shutil
    import signal
    import tempfile

    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            super().handle_exit(sig, frame)
            if sig == signal.SIGTERM and sig in self._captured_signals:
                self._captured_signals.remove(sig)  # an orderly stop: no re-raise after shutdown

    config = uvicorn.Config(app, log_level="error" if quiet else "warning", access_log=False,
                            timeout_graceful_shutdown=3)
    private = tempfile.mkdtemp(prefix="autoinpaint-serve-")
    tempfile.tempdir = private  # starlette's upload spool files land here
    try:
        Server(config).run(sockets=[sock])
    finally:
        tempfile.tempdir = None
        shutil.rmtree(private, ignore_errors=True)


def _open_later(url: str) -> None:
    """Open ``url`` in a browser once the server answers, where a desktop browser can be found
    (never a text browser in this terminal)."""
    import os
    import sys
    import threading
    import time
    import urllib.request
    import webbrowser

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return

    def wait_and_open():
        for _ in range(50):
            try:
                urllib.request.urlopen(url.split("?")[0] + "api/info", timeout=1)
                break
            except OSError as exc:
                if getattr(exc, "code", None) in (401, 403):
                    break
                time.sleep(0.1)
        try:
            webbrowser.open(url)
        except Exception:  # noqa: BLE001 - no browser: the URL is printed anyway
            pass

    threading.Thread(target=wait_and_open, daemon=True).start()
