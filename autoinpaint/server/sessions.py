"""Open images: a bounded LRU of :class:`~autoinpaint.editor.Editor` sessions.

Each page that opens a photo gets a session with an unguessable id. At most ``max_sessions``
are kept, and at most ``max_bytes`` of arrays (pixels, masks, results, display copies, embeddings:
:func:`held_bytes`, checked when a photo is opened): opening one more closes the least recently
used (its pending embedding is cancelled), so memory does not grow with use. A session serialises
its own clicks (``lock``); a long edit runs on a fork of it (:meth:`Editor.fork`), so clicks go on
meanwhile.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..api import EditOptions
from ..editor import Editor
from .errors import NotFound


@dataclass
class Session:
    """One open photo. ``source``: its path relative to the served folder (None when uploaded);
    ``name``: the file name shown and used for downloads; ``last``: the key of the last selection
    (a repeated selection with other mask values re-runs only the mask stage)."""

    id: str
    editor: Editor
    name: str
    source: str | None = None
    display_max_side: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    last: Any = None
    used: float = field(default_factory=time.monotonic)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays this session holds (see :func:`held_bytes`)."""
        return held_bytes(self.editor)


def held_bytes(editor: Editor) -> int:
    """What an open photo costs in memory: the decoded image, the selection's mask and alpha, the
    segmentation before the mask stage, a result and its crop, the display copies and the
    segmenter's embeddings (a SAM embedding's tensors with what a decoder derived from them once per
    image; each array counted once: a classical segmenter's embedding is the image itself). A 3000×2000
    RGB photo after a click holds about 60 MB, 3.5× its pixels."""
    state = editor.state
    if state is None:
        return 0
    arrays = [state.image, state.mask, state.alpha, state.inpainted, state.result,
              getattr(editor, "_object", None)]
    arrays += [copy for _, copy in getattr(editor, "_display", {}).values()]
    for held in state.embeddings.values():
        if hasattr(held, "arrays"):  # a SAM embedding (Embedding.arrays: with what was derived from it)
            arrays += held.arrays()
        elif hasattr(held, "nbytes") or hasattr(held, "element_size"):
            arrays.append(held)
    seen, total = set(), 0
    for a in arrays:
        if a is None or id(a) in seen:
            continue
        seen.add(id(a))
        if hasattr(a, "nbytes"):
            total += int(a.nbytes)
        elif hasattr(a, "element_size"):  # a torch tensor
            total += int(a.element_size() * a.nelement())
    return total


class SessionStore:
    """The LRU of sessions.

    Args:
        options: every session's defaults (the server's EditOptions).
        max_sessions: how many images stay open.
        max_bytes: bound on the arrays all open images hold (the newest is always kept).
        display_max_side: longest side of the display copy (px).
        store: the model store every session's Editor loads into (the server's; None: the process default).
    """

    def __init__(self, options: EditOptions, max_sessions: int = 8, max_bytes: int = 2 << 30,
                 display_max_side: int | None = 2048, store=None):
        self.options = options
        self.store = store
        self.max_sessions = max(1, max_sessions)
        self.max_bytes = max_bytes
        self.display_max_side = display_max_side
        self._items: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, image, name: str, source: str | None = None) -> Session:
        """Decode ``image`` (bytes or a path), make its display copy, start its embedding in the
        background and keep it. Raises InputError / TooLargeError for a bad or over-large image."""
        editor = Editor(self.options, self.store).open(image, embed=False)
        editor.display(self.display_max_side)  # the page asks for it next
        editor.start_embedding()
        session = Session(secrets.token_urlsafe(12), editor, name, source, self.display_max_side)
        evicted = []
        with self._lock:
            self._items[session.id] = session
            while len(self._items) > self.max_sessions or (
                    len(self._items) > 1 and sum(s.nbytes for s in self._items.values()) > self.max_bytes):
                evicted.append(self._items.popitem(last=False)[1])
        for old in evicted:
            old.editor.close()
        return session

    def get(self, session_id: str) -> Session:
        """The session ``session_id`` (now the most recently used); NotFound (404) otherwise."""
        with self._lock:
            session = self._items.get(session_id)
            if session is None:
                raise NotFound(f"no open image {session_id!r} (it may have been closed to free memory: "
                               "open it again)")
            self._items.move_to_end(session_id)
            session.used = time.monotonic()
            return session

    def close(self, session_id: str) -> None:
        with self._lock:
            session = self._items.pop(session_id, None)
        if session is None:
            raise NotFound(f"no open image {session_id!r}")
        session.editor.close()

    def clear(self) -> None:
        with self._lock:
            items, self._items = list(self._items.values()), OrderedDict()
        for session in items:
            session.editor.close()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._items

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(s.nbytes for s in self._items.values())
