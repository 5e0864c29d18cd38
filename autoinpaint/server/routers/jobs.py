"""``/api/jobs``: an edit's status and progress, its result, alpha and display copy, cancel."""
from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from ...imaging.display import png_gray8
from ..context import ServerContext, context
from ..errors import Conflict
from ..jobs import DONE, Job

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


def finished(job: Job):
    """The job's output; Conflict (409) until it is done (saying why when it failed)."""
    if job.status != DONE or job.result is None:
        why = f": {job.error}" if job.error else ""
        raise Conflict(f"job {job.id} is {job.status}{why}")
    return job.result


@router.get("/{job_id}")
def job_status(job_id: str, ctx: ServerContext = Depends(context)):
    return JSONResponse(ctx.jobs.get(job_id).to_dict())


@router.get("/{job_id}/result")
def job_result(job_id: str, ctx: ServerContext = Depends(context)):
    """The edited image, encoded like the input (format, quality, bit depth, ICC, EXIF)."""
    out = finished(ctx.jobs.get(job_id))
    disposition = f"attachment; filename*=UTF-8''{quote(out.filename)}"
    return Response(out.data, media_type=out.media_type, headers={"content-disposition": disposition})


@router.get("/{job_id}/alpha")
def job_alpha(job_id: str, ctx: ServerContext = Depends(context)):
    """The final alpha (what changed: 255 replaced, 0 kept bit-identical), full resolution."""
    return Response(png_gray8(finished(ctx.jobs.get(job_id)).alpha), media_type="image/png")


@router.get("/{job_id}/display")
def job_display(job_id: str, ctx: ServerContext = Depends(context)):
    """The result's display copy (like the image's), for the page's before/after toggle."""
    out = finished(ctx.jobs.get(job_id))
    return Response(out.display, media_type=out.display_type)


@router.get("/{job_id}/summary")
def job_summary(job_id: str, ctx: ServerContext = Depends(context)):
    """The ``--json`` record of the edit (mask pixels, bbox, segmenter, inpainter, timings, seed, ...)."""
    return JSONResponse(finished(ctx.jobs.get(job_id)).summary)


@router.delete("/{job_id}")
def job_cancel(job_id: str, ctx: ServerContext = Depends(context)):
    """Cancel: a queued job at once, a running one at its next model step."""
    return JSONResponse(ctx.jobs.cancel(job_id).to_dict())
