"""Who may talk to the server, and which files it may touch.

* **Token.** Bound to a loopback address the server needs none (unless given one); bound to any
  other address it always needs one (generated like Jupyter's when not given). A request carries it
  as ``Authorization: Bearer TOKEN``, or as a cookie that the page gets by opening
  ``/?token=TOKEN`` once (then redirected to the bare URL, so the token leaves the address bar).
* **Host check.** Without a token, only ``Host: localhost|127.0.0.1|[::1]`` is served, so a web page
  elsewhere cannot reach the server through DNS rebinding.
* **Folder confinement.** :func:`resolve_in_folder` accepts only relative paths that stay inside
  the folder after every ``..`` and symlink is resolved.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, urlencode

from ..imaging.image_io import FORMAT_BY_SUFFIX
from .errors import Forbidden, HTTPError, NotFound

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
IMAGE_SUFFIXES = tuple(dict.fromkeys((*FORMAT_BY_SUFFIX, ".heic", ".heif")))


def generate_token() -> str:
    """48 hex digits from the OS's random source, like Jupyter's."""
    return secrets.token_hex(24)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_name(token: str) -> str:
    """One cookie per token (cookies are shared by every port of a host)."""
    return "autoinpaint-" + hashlib.sha256(token.encode()).hexdigest()[:12]


class Guard:
    """ASGI middleware: the token and host checks of the module docstring, before any route runs.

    Args:
        app: the ASGI app to guard.
        token: the token every request must carry, or None (then only loopback Host headers).
    """

    def __init__(self, app, token: str | None):
        self.app = app
        self.token = token or None
        self.cookie = cookie_name(token) if token else None

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        if self.token is None:
            host = headers.get("host", "").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in LOOPBACK_NAMES:
                return await _reply(send, 403, f"host {host!r} is not served: open http://127.0.0.1:PORT/")
            return await self.app(scope, receive, send)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if "token" in query and self._valid(query["token"]):
            if scope.get("method") == "GET" and scope["path"] == "/":
                rest = urlencode({k: v for k, v in query.items() if k != "token"})
                return await _redirect(send, "/" + (f"?{rest}" if rest else ""), self._set_cookie())
            return await self.app(scope, receive, send)
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and self._valid(auth[7:].strip()):
            return await self.app(scope, receive, send)
        if self._valid(_cookies(headers.get("cookie", "")).get(self.cookie, "")):
            return await self.app(scope, receive, send)
        return await _reply(send, 401, "this server needs its access token: open the URL that "
                                       "'autoinpaint serve' printed (…/?token=…), or send "
                                       "'Authorization: Bearer TOKEN'",
                            html="text/html" in headers.get("accept", ""))

    def _valid(self, candidate: str) -> bool:
        return bool(candidate) and hmac.compare_digest(candidate.encode(), self.token.encode())

    def _set_cookie(self) -> str:
        return f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"


def _cookies(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out[name] = value
    return out


async def _reply(send, status: int, message: str, html: bool = False) -> None:
    if html:
        body = (f"<!doctype html><meta charset=utf-8><title>autoinpaint</title>"
                f"<p>{message.replace('<', '&lt;')}</p>").encode()
        kind = b"text/html; charset=utf-8"
    else:
        body, kind = json.dumps({"error": message}).encode(), b"application/json"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="autoinpaint"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send, location: str, cookie: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode()),
                            (b"content-length", b"0"), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": b""})


class BodyLimit:
    """ASGI middleware: refuse a request body over ``max_bytes`` with 413, by its Content-Length or,
    for a chunked upload, as soon as the bytes read pass the limit."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for key, value in scope.get("headers", ()):
            if key == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                return await _reply(send, 413, self.message())
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise TooManyBytes(self.message())
            return message

        return await self.app(scope, limited, send)

    def message(self) -> str:
        return f"the upload is over the limit of {self.max_bytes:,} bytes"


class TooManyBytes(HTTPError):
    status = 413


# ------------------------------------------------------------------------------------------ folder
class Folder:
    """The folder ``autoinpaint serve FOLDER`` serves: listing and confined paths."""

    def __init__(self, root: str | os.PathLike, max_files: int = 10_000):
        self.root = Path(root).resolve(strict=True)
        if not self.root.is_dir():
            raise NotADirectoryError(str(root))
        self.max_files = max_files

    def resolve(self, relative: str, must_exist: bool = True) -> Path:
        """See :func:`resolve_in_folder`."""
        return resolve_in_folder(self.root, relative, must_exist)

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    def photos(self) -> tuple[list[dict], bool]:
        """The folder's photos (relative POSIX paths, sorted; hidden files and folders skipped,
        symlinks only when they stay inside) and whether the list was cut at ``max_files``."""
        found: list[dict] = []
        for top, dirs, files in os.walk(self.root, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                    continue
                path = Path(top, name)
                try:
                    real = path.resolve(strict=True)
                    if not real.is_relative_to(self.root) or not real.is_file():
                        continue
                    size = real.stat().st_size
                except OSError:
                    continue
                found.append({"path": path.relative_to(self.root).as_posix(), "size": size})
                if len(found) >= self.max_files:
                    return found, True
        return found, False


def resolve_in_folder(root: Path, relative: str, must_exist: bool = True) -> Path:
    """``root / relative`` with every symlink resolved, refused unless it stays inside ``root``.

    ``relative`` must be a relative POSIX path without ``..``, NUL or a drive letter (400); one
    that resolves outside ``root`` (through a symlink) is 403; a missing file is 404. The path is
    taken as it is: percent-escapes such as ``%2e%2e`` are characters of a file name, not ``..``.
    """
    if not relative or "\x00" in relative or "\\" in relative:
        raise HTTPError(f"bad path {relative!r}: give a path relative to the served folder, with '/'")
    parts = PurePosixPath(relative)
    if parts.is_absolute() or (len(relative) > 1 and relative[1] == ":") or ".." in parts.parts:
        raise HTTPError(f"bad path {relative!r}: it must be relative to the served folder, without '..'")
    path = root.joinpath(*parts.parts)
    real = path.resolve(strict=False)
    if not real.is_relative_to(root):
        raise Forbidden(f"{relative}: points outside the served folder")
    if must_exist and not real.is_file():
        raise NotFound(f"{relative}: no such photo in the served folder")
    return real
