"""What every route needs, built once by :func:`autoinpaint.server.app.create_app` (no globals):
the options, the folder, the sessions, the jobs, the model store, what the server offers and reports."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from ..api import EditOptions
from ..models.store import ModelStore
from .config import Limits
from .editing import Offered
from .jobs import JobManager
from .security import Folder
from .sessions import SessionStore


@dataclass
class ServerContext:
    options: EditOptions
    limits: Limits
    sessions: SessionStore
    jobs: JobManager
    offered: Offered
    store: ModelStore  # every model the server loads (its sessions' Editors load into it)
    folder: Folder | None = None
    token: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


async def context(request: Request) -> ServerContext:
    """FastAPI dependency: the app's context (async: read on the event loop, no worker thread)."""
    return request.app.state.context
