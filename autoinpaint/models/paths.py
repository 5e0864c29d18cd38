"""Where autoinpaint keeps files: ``$AUTOINPAINT_HOME`` (checkpoints, cache) and the cache folder."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The autoinpaint cache directory (not created): ``$AUTOINPAINT_CACHE``, else
    ``$AUTOINPAINT_HOME/cache``, else ``~/.cache/autoinpaint``."""
    if os.environ.get("AUTOINPAINT_CACHE"):
        return Path(os.environ["AUTOINPAINT_CACHE"]).expanduser()
    if os.environ.get("AUTOINPAINT_HOME"):
        return Path(os.environ["AUTOINPAINT_HOME"]).expanduser() / "cache"
    return Path.home() / ".cache" / "autoinpaint"
