"""FOLDER mode: ``GET /api/files`` lists the folder's photos; ``POST /api/jobs/{job}/save`` writes a
result beside its input (the CLI's naming; never over an existing file)."""
from __future__ import annotations

from pathlib import PurePosixPath

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ...imaging.image_io import write_atomic
from ..context import ServerContext, context
from ..errors import Conflict
from .jobs import finished

router = APIRouter(prefix="/api", tags=["files"])
MAX_NAME_TRIES = 1000


@router.get("/files")
def list_files(ctx: ServerContext = Depends(context)):
    if ctx.folder is None:
        return JSONResponse({"folder": None, "files": [], "truncated": False})
    files, truncated = ctx.folder.photos()
    return JSONResponse({"folder": ctx.folder.root.name, "files": files, "truncated": truncated})


@router.post("/jobs/{job_id}/save", status_code=201)
def save(job_id: str, ctx: ServerContext = Depends(context)):
    """Write the result beside its input as ``photo.inpainted.jpg`` (``photo.inpainted-2.jpg`` when
    that exists: nothing is ever overwritten), atomically. Returns the path relative to FOLDER."""
    job = ctx.jobs.get(job_id)
    out = finished(job)
    source = job.info.get("source")
    if ctx.folder is None or not source:
        raise Conflict("only a photo opened from the served folder can be saved beside it: "
                       "download this one instead")
    parent = PurePosixPath(source).parent
    stem, dot, suffix = out.filename.rpartition(".")
    for n in range(1, MAX_NAME_TRIES + 1):
        name = out.filename if n == 1 else f"{stem}-{n}{dot}{suffix}"
        target = ctx.folder.resolve(str(parent / name), must_exist=False)
        if target.exists() or target.is_symlink():
            continue
        try:
            write_atomic(target, out.data, exclusive=True)
        except FileExistsError:
            continue
        return JSONResponse({"path": ctx.folder.relative(target), "bytes": len(out.data)}, status_code=201)
    raise Conflict(f"{out.filename}: {MAX_NAME_TRIES} files of that name exist already")
