"""One mapping from our errors to HTTP: JSON ``{"error": "..."}`` with the right status, never a
stack trace.

``exit_code`` 2 (bad input) → 400, or 413 for too many bytes or pixels, or 422 when a text prompt
matched nothing (the request was fine; the photo has no such thing); 3 (a model is missing) →
503; anything else → 500. Errors of the server itself say their own status (404, 403, 409, 429 with
``Retry-After`` when too many jobs are queued).
"""
from __future__ import annotations

import logging

from ..errors import EXIT_INPUT, EXIT_MODEL_MISSING, EXIT_UNEXPECTED, AutoinpaintError, NotFoundError, TooLargeError

log = logging.getLogger("autoinpaint.server")


class HTTPError(AutoinpaintError):
    """An error of the web API with its own status."""

    status = 400
    exit_code = EXIT_INPUT
    retry_after: int | None = None  # seconds, sent as the ``Retry-After`` header when set


class NotFound(HTTPError):
    status = 404


class Forbidden(HTTPError):
    status = 403


class Conflict(HTTPError):
    status = 409


class Busy(HTTPError):
    """Too many jobs queued or running: 429 with ``Retry-After`` (seconds)."""

    status = 429
    exit_code = EXIT_UNEXPECTED

    def __init__(self, message: str, retry_after: int = 5):
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


def status_of(exc: AutoinpaintError) -> int:
    """The HTTP status of one of our errors."""
    if isinstance(exc, HTTPError):
        return exc.status
    if isinstance(exc, TooLargeError):
        return 413
    if isinstance(exc, NotFoundError):
        return 422
    return {EXIT_INPUT: 400, EXIT_MODEL_MISSING: 503}.get(exc.exit_code, 500)


def error_body(message: str) -> dict:
    return {"error": message}


def install(app) -> None:
    """Register the exception handlers on a FastAPI ``app``."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    async def ours(request, exc: AutoinpaintError):
        retry = getattr(exc, "retry_after", None)
        headers = {"retry-after": str(retry)} if retry else None
        return JSONResponse(error_body(str(exc)), status_code=status_of(exc), headers=headers)

    async def http(request, exc: StarletteHTTPException):
        message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return JSONResponse(error_body(message), status_code=exc.status_code, headers=exc.headers)

    async def invalid(request, exc: RequestValidationError):
        return JSONResponse(error_body(validation_message(exc.errors())), status_code=400)

    async def unexpected(request, exc: Exception):
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        return JSONResponse(error_body(f"unexpected {type(exc).__name__}: {first}"), status_code=500)

    app.add_exception_handler(AutoinpaintError, ours)
    app.add_exception_handler(StarletteHTTPException, http)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, unexpected)


def validation_message(errors) -> str:
    """pydantic's errors as one line: ``unknown field 'dilatation'``, ``points.0: ...``."""
    parts = []
    for err in list(errors)[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        where = ".".join(loc)
        kind = err.get("type", "")
        if kind == "extra_forbidden":
            parts.append(f"unknown field {where!r}")
        elif kind == "json_invalid":
            parts.append(f"malformed JSON: {err.get('ctx', {}).get('error', err.get('msg', ''))}")
        elif kind == "missing":
            parts.append(f"missing field {where!r}")
        else:
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")  # an options parser's own words
            parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts) or "invalid request"
