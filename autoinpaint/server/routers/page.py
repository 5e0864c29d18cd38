"""The page (``/``, ``/static/...``) and ``GET /api/info`` (what the server runs with)."""
from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, JSONResponse

from ..context import ServerContext, context

router = APIRouter(tags=["page"])
STATIC = files("autoinpaint.server") / "static"


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page():
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"),
                        headers={"cache-control": "no-store"})


@router.get("/api/info")
def info(ctx: ServerContext = Depends(context)):
    """Segmenter and inpainter in use (and a hint when they are the classical fallbacks), the
    inpainters and models a request may name, defaults, limits, and whether a folder is served."""
    return JSONResponse(ctx.info)
