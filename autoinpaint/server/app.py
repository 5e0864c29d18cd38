"""``create_app``: the ASGI app of ``autoinpaint serve``, built from its components (no globals).

>>> app = create_app("samples/", EditOptions(segmenter="classical"))   # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8765)                       # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading

from ..api import DEFAULT_MODEL, EditOptions
from ..log import notice
from .config import Limits
from .context import ServerContext
from .editing import Offered
from .jobs import JobManager
from .security import BodyLimit, Folder, Guard
from .sessions import SessionStore

log = logging.getLogger("autoinpaint.server")
FALLBACK_HINT = "autoinpaint models download vit_b"


def create_app(folder: str | os.PathLike | None = None, options: EditOptions | None = None,
               token: str | None = None, limits: Limits | None = None, preload: bool = True, store=None):
    """The FastAPI app.

    Args:
        folder: serve this folder's photos (``GET /api/files``, open by path, save beside the
            input); None: uploads only.
        options: defaults of every edit (segmenter, inpainter, model, mask values, device, ...);
            ``auto`` segmenter/inpainter are resolved once, here.
        token: required on every request when given (see :mod:`.security`); without one only
            loopback ``Host`` headers are served.
        limits: bounds on uploads, pixels, open images and jobs (:class:`.config.Limits`).
        preload: load the segmenter in the background at startup, so the first click does not
            pay for it.
        store: the :class:`~autoinpaint.models.store.ModelStore` the server's models load into; None:
            a new one, bounded by ``limits.model_memory``. The context owns it.
    """
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles

    from .errors import install as install_error_handlers
    from .routers.files import router as files_router
    from .routers.images import router as images_router
    from .routers.jobs import router as jobs_router
    from .routers.page import router as page_router

    limits = limits or Limits()
    options, info = resolve_models(options or EditOptions(), limits)
    from ..models.store import ModelStore

    store = store if store is not None else ModelStore(limits.model_memory)
    ctx = ServerContext(
        options=options, limits=limits,
        sessions=SessionStore(options, limits.max_sessions, limits.max_session_bytes, limits.display_max_side,
                              store),
        jobs=JobManager(limits.workers, limits.client_timeout, limits.result_ttl, limits.max_jobs),
        offered=Offered(options), store=store,
        folder=Folder(folder, limits.max_files) if folder is not None else None, token=token or None)
    info.update(folder=ctx.folder.root.name if ctx.folder else None, token_required=bool(ctx.token),
                inpainters=ctx.offered.inpainters, models=ctx.offered.models,
                defaults={k: getattr(options, k) for k in ("dilate", "feather", "erode", "blur", "sam_select",
                                                            "fast")},
                limits={"max_upload_bytes": limits.max_upload_bytes, "max_pixels": options.max_pixels,
                        "display_max_side": limits.display_max_side})
    ctx.info = info

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if preload:
            threading.Thread(target=warm_up, args=(ctx,), name="autoinpaint-preload", daemon=True).start()
        yield
        ctx.jobs.shutdown(grace=limits.shutdown_grace)
        ctx.sessions.clear()
        ctx.store.clear()

    app = FastAPI(title="autoinpaint", version=_version(), lifespan=lifespan,
                  description="Point at an object in a photo: it is gone, or replaced by what you describe. "
                              "See docs/server.md.")
    app.state.context = ctx
    install_error_handlers(app)
    for router in (page_router, images_router, jobs_router, files_router):
        app.include_router(router)
    app.mount("/static", StaticFiles(packages=[("autoinpaint.server", "static")]), name="static")
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes)
    app.add_middleware(Guard, token=ctx.token)  # outermost: nothing runs before the token check
    return app


def resolve_models(options: EditOptions, limits: Limits) -> tuple[EditOptions, dict]:
    """Resolve ``auto`` once (:func:`autoinpaint.models.registry.resolve_auto`; a server should not re-decide per
    request: an edit that asks for ``auto`` gets this choice, :func:`.editing.check_edit`) and describe it.
    The detector is only named here: it loads on the first phrase."""
    from ..models.registry import CLASSICAL_INPAINTERS, resolve_auto

    changes: dict = {}
    if limits.max_pixels is not None:
        changes["max_pixels"] = limits.max_pixels
    for kind in ("segmenter", "inpainter", "detector"):  # EditOptions names each kind's field after it
        if getattr(options, kind) in (None, "", "auto"):
            changes[kind], why = resolve_auto(kind, options.device)
            notice(f"{kind} auto -> {why}")
    options = options.replace(**changes) if changes else options
    seg, inp = options.segmenter, options.inpainter
    classical_seg = seg in ("classical", "grabcut")
    info = {
        "segmenter": "classical" if classical_seg else None,  # the loaded model's name, once loaded
        "segmenter_spec": seg if classical_seg or "/" not in str(seg) else os.path.basename(str(seg)),
        "segmenter_classical": classical_seg,
        "inpainter": inp,
        "inpainter_classical": inp in CLASSICAL_INPAINTERS,
        "model": options.model or DEFAULT_MODEL,
        "detector": options.detector if "/" not in str(options.detector) else os.path.basename(str(options.detector)),
        "hint": (f"Masks come from the classical OpenCV segmenter. For Segment Anything masks run: "
                 f"{FALLBACK_HINT}") if classical_seg else None,
        "version": _version(),
    }
    return options, info


def warm_up(ctx: ServerContext) -> None:
    """Load the segmenter now, with its ONNX Runtime decoder for a click (the first click then pays
    only for its embedding)."""
    from ..api import selection_steps

    try:
        segmenter = selection_steps(ctx.options, ctx.store)[-1].segmenter
        decoder = getattr(segmenter, "decoder", None)
        if decoder is not None:
            decoder.warm()
        ctx.info["segmenter"] = segmenter.name
    except Exception as exc:  # noqa: BLE001 - reported by the first click that needs it
        ctx.info["segmenter_error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.warning("could not load the segmenter: %s", ctx.info["segmenter_error"])


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("autoinpaint")
    except PackageNotFoundError:
        return "0+unknown"
