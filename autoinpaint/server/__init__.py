"""``autoinpaint serve``: a local web app on the same pipeline as the CLI.

:func:`autoinpaint.server.app.create_app` builds the ASGI app from its components (folder, options,
token, limits); :mod:`.sessions` keeps the open images (a bounded LRU of
:class:`~autoinpaint.editor.Editor` sessions), :mod:`.jobs` runs edits in worker threads,
:mod:`.security` checks the token and keeps files inside the folder, :mod:`.routers` holds the
JSON API (documented in ``docs/server.md``) and ``static/`` the page (plain HTML/CSS/JS).
Importing this package imports nothing heavy; its modules import FastAPI.
"""
