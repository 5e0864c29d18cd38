"""The JSON API, one router per resource: ``images`` (open, display, mask, edit), ``jobs`` (status,
result, cancel), ``files`` (FOLDER mode: list, save) and ``page`` (the page, ``/api/info``)."""
