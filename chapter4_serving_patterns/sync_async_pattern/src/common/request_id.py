"""Request ids and the access log: one id per request, in every log line and every response.

The id comes from the caller's `X-Request-ID` when it is safe to repeat (a bounded run of
token characters), otherwise a new one is made. It is held in a context variable that the JSON
log formatter and the error envelope read, and echoed in the `X-Request-ID` header of every
response this middleware sees. Pure ASGI, so streaming bodies pass through untouched.

Install it as the outermost middleware (add it last): its access line then covers the other
middleware, and errors answered inside it carry the header too.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID_LENGTH = 128
# Characters that cannot split a log line or a header, nor smuggle markup.
_SAFE_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:+/=-]{{1,{MAX_REQUEST_ID_LENGTH}}}")
_HEADER_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")

_current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
access_log = logging.getLogger("access")


def current_request_id() -> str | None:
    """The id of the request being handled, None outside a request."""
    return _current_request_id.get()


def accept_or_generate(candidate: str | None) -> str:
    """The caller's id when it is safe to echo, else a fresh one (32 hex characters)."""
    if candidate is not None:
        candidate = candidate.strip()
        if _SAFE_REQUEST_ID.fullmatch(candidate):
            return candidate
    return uuid.uuid4().hex


def with_request_id_header(message: Message, request_id: str) -> Message:
    """A response-start message whose headers hold exactly one X-Request-ID."""
    headers = [
        (key, value) for key, value in message.get("headers", []) if key.lower() != _HEADER_KEY
    ]
    headers.append((_HEADER_KEY, request_id.encode("latin-1")))
    return {**message, "headers": headers}


class RequestIdMiddleware:
    """Sets the request id, echoes it, and writes one access line per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accept_or_generate(Headers(scope=scope).get(REQUEST_ID_HEADER))
        # Not reset afterwards, on purpose: every request runs in a task (and context) of its
        # own, and Starlette's server-error handler runs outside this middleware after an
        # exception has left it; it still needs the id for the 500 envelope and header.
        _current_request_id.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client gets when an exception escapes before a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = with_request_id_header(message, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info(
                "%s %s %d",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                },
            )
