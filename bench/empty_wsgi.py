"""The webhook bench's baseline: a WSGI app that answers every request with an empty 200, served by
the same gunicorn settings as the gateway (``bench/webhook_http.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Read the body (as the gateway must), answer an empty TwiML-sized 200."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    body = b"<Response/>"
    start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
    return [body]
