"""``/api/images``: open a photo (upload or FOLDER path), its display copy, a click's mask, an edit."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ...errors import InputError
from ...imaging.display import alpha_png, display_size, encode_display
from ..context import ServerContext, context
from ..editing import check_edit, detect, edit_work, mask
from ..errors import HTTPError
from ..schemas import DetectRequest, EditRequest, MaskRequest, OpenRequest
from ..sessions import Session

router = APIRouter(prefix="/api/images", tags=["images"])


def describe(session: Session) -> dict:
    ed = session.editor
    w, h = ed.size
    dw, dh = display_size(w, h, session.display_max_side)
    return {"id": session.id, "width": w, "height": h, "format": ed.state.info.format, "name": session.name,
            "path": session.source, "channels": int(ed.image.shape[2]), "bit_depth": ed.image.dtype.itemsize * 8,
            "display": {"url": f"/api/images/{session.id}/display", "width": dw, "height": dh,
                        "scale": dw / w},
            "embedding": "ready" if ed.embedding_ready() else "running"}


@router.post("", status_code=201)
async def open_image(request: Request, ctx: ServerContext = Depends(context)):
    """Multipart field ``file`` (an upload), or JSON ``{"path": "relative/in/FOLDER"}``."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=8)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InputError("no file: send the photo as the multipart field 'file'")
        data = await upload.read()
        name = (upload.filename or "upload.png").replace("\\", "/").rsplit("/", 1)[-1] or "upload.png"
        session = await run_in_threadpool(ctx.sessions.open, data, name)
    elif kind == "application/json":
        req = OpenRequest.model_validate_json(await request.body())
        if ctx.folder is None:
            raise HTTPError("this server has no folder: upload the photo (multipart field 'file')")
        path = ctx.folder.resolve(req.path)
        rel = ctx.folder.relative(path)
        session = await run_in_threadpool(ctx.sessions.open, path, rel.rsplit("/", 1)[-1], rel)
    else:
        raise InputError("send multipart/form-data with a field 'file', or JSON {\"path\": ...}")
    return JSONResponse(describe(session), status_code=201)


@router.get("/{image_id}")
def image_info(image_id: str, ctx: ServerContext = Depends(context)):
    return JSONResponse(describe(ctx.sessions.get(image_id)))


@router.get("/{image_id}/display")
def display(image_id: str, ctx: ServerContext = Depends(context)):
    """The display copy: EXIF-oriented 8-bit sRGB, at most ``display_max_side`` px (JPEG; PNG with alpha)."""
    session = ctx.sessions.get(image_id)
    data, media = encode_display(session.editor.display(session.display_max_side))
    return Response(data, media_type=media, headers={"cache-control": "private, max-age=3600"})


@router.post("/{image_id}/mask")
def image_mask(image_id: str, req: MaskRequest, ctx: ServerContext = Depends(context)):
    return JSONResponse(mask(ctx.sessions.get(image_id), req, ctx.options))


@router.post("/{image_id}/detect")
def image_detect(image_id: str, req: DetectRequest, ctx: ServerContext = Depends(context)):
    """Boxes proposed for ``texts`` (the page shows them to keep or drop); selects nothing."""
    return JSONResponse(detect(ctx.sessions.get(image_id), req))


@router.get("/{image_id}/alpha")
def image_alpha(image_id: str, ctx: ServerContext = Depends(context)):
    """The final alpha of the last ``/mask``, full resolution, 8-bit grey PNG."""
    session = ctx.sessions.get(image_id)
    with session.lock:
        alpha = session.editor.state.alpha if session.editor.state is not None else None
    if alpha is None:
        raise InputError("nothing selected yet: POST /mask first")
    return Response(alpha_png(alpha), media_type="image/png")


@router.post("/{image_id}/edit", status_code=202)
def image_edit(image_id: str, req: EditRequest, ctx: ServerContext = Depends(context)):
    session = ctx.sessions.get(image_id)
    options = check_edit(req, ctx.options, session.editor.size, ctx.offered)
    job = ctx.jobs.submit(edit_work(session, req, options), kind=req.action, image=session.id,
                          source=session.source)
    return JSONResponse(job.to_dict(), status_code=202)


@router.delete("/{image_id}")
def close_image(image_id: str, ctx: ServerContext = Depends(context)):
    ctx.sessions.close(image_id)
    return JSONResponse({"id": image_id, "closed": True})

